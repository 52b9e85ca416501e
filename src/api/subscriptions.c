#include "autoconf.h"

#include "api/handlers.h"

#include "http/response.h"
#include "http/validate.h"
#include "services/subscriptions.h"

static void respond(struct request *req, enum gala_error e, int status, cJSON *body)
{
	if (e != GE_OK) {
		cJSON_Delete(body);
		http_respond_error(req, e, NULL, NULL);
		return;
	}
	response_json(req, status, body);
}

void api_subscription_plans(struct request *req)
{
	response_json(req, 200, subscriptions_plans_json());
}

void api_subscription_start(struct request *req)
{
	static const char *const fields[] = { "price_id", NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	const char *price = v_string(&v, "price_id", true, 1, 255, true);
	if (!v.failed && !subscriptions_price_allowed(price))
		v_fail(&v, "price_id", "price_id is not one of the plans (GET /api/subscriptions/plans)");
	if (v.failed)
		return;
	cJSON *sub = NULL;
	const char *secret = NULL;
	enum gala_error e = subscriptions_start(&req->cx, price, &sub, &secret);
	cJSON *o = NULL;
	if (e == GE_OK) {
		o = cJSON_CreateObject();
		cJSON_AddItemToObject(o, "subscription", sub);
		if (secret != NULL)
			cJSON_AddStringToObject(o, "client_secret", secret);
		else
			cJSON_AddNullToObject(o, "client_secret");
	}
	respond(req, e, 201, o);
}

void api_subscription_list(struct request *req)
{
	struct validator v;
	v_init(&v, req);
	int limit, offset;
	v_page(&v, 20, &limit, &offset);
	if (v.failed)
		return;
	cJSON *o = NULL;
	enum gala_error e = subscriptions_list(&req->cx, limit, offset, &o);
	respond(req, e, 200, o);
}

void api_subscription_cancel(struct request *req)
{
	static const char *const fields[] = { "at_period_end", NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	bool at_period_end = v_bool(&v, "at_period_end", true);
	if (v.failed)
		return;
	cJSON *sub = NULL;
	enum gala_error e = subscriptions_cancel(&req->cx, req->path_params[0], at_period_end, &sub);
	respond(req, e, 200, sub);
}

void api_subscription_sync(struct request *req)
{
	/* Sync takes no fields, like the booking actions. */
	static const char *const none[] = { NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, none);
	if (v.failed)
		return;
	cJSON *sub = NULL;
	enum gala_error e = subscriptions_sync(&req->cx, req->path_params[0], &sub);
	respond(req, e, 200, sub);
}
