#include "autoconf.h"

#include "api/handlers.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "api/market.h"
#include "core/config.h"
#include "core/log.h"
#include "http/json.h"
#include "http/response.h"
#include "http/validate.h"
#include "services/charges.h"
#include "services/connect.h"
#include "services/payouts.h"
#include "services/webhooks.h"

/* The money actions take no fields: a client can never set an amount or a
 * status this way. Returns the path's id, or NULL after answering. */
static const char *action_id(struct request *req)
{
	const char *id = market_path_id(req);
	if (id == NULL)
		return NULL;
	static const char *const none[] = { NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, none);
	return v.failed ? NULL : id;
}

void api_event_services_pay(struct request *req)
{
	const char *id = action_id(req);
	if (id == NULL)
		return;
	cJSON *payment = NULL;
	const char *secret;
	struct refusal why = { 0 };
	enum gala_error e = charges_pay(&req->cx, id, &payment, &secret, &why);
	if (e != GE_OK) {
		market_respond_error(req, e, &why);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "payment", payment);
	cJSON_AddStringToObject(o, "client_secret", secret);
	response_json(req, 200, o);
}

void api_event_services_release(struct request *req)
{
	const char *id = action_id(req);
	if (id == NULL)
		return;
	cJSON *payment = NULL;
	bool already;
	struct refusal why = { 0 };
	enum gala_error e = payouts_release(&req->cx, id, &payment, &already, &why);
	if (e != GE_OK) {
		market_respond_error(req, e, &why);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "status", "released");
	cJSON_AddItemToObject(o, "payment", payment);
	cJSON_AddBoolToObject(o, "already_released", already);
	response_json(req, 200, o);
}

void api_event_services_refund(struct request *req)
{
	const char *id = action_id(req);
	if (id == NULL)
		return;
	cJSON *booking = NULL;
	struct refusal why = { 0 };
	enum gala_error e = charges_refund(&req->cx, id, &booking, &why);
	market_respond(req, e, booking, &why);
}

void api_providers_stripe_onboarding(struct request *req)
{
	const char *id = action_id(req);
	if (id == NULL)
		return;
	const char *url, *acct;
	struct refusal why = { 0 };
	enum gala_error e = connect_onboard(&req->cx, id, &url, &acct, &why);
	if (e != GE_OK) {
		market_respond_error(req, e, &why);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "url", url);
	cJSON_AddStringToObject(o, "stripe_account_id", acct);
	response_json(req, 200, o);
}

/* The route has ROUTE_RAW_BODY: req->body is exactly the bytes Stripe
 * signed, and nothing has parsed them yet. */
void api_webhooks_stripe(struct request *req)
{
	const struct config *cfg = gala_config;
	const char *body = req->body ? req->body : "";
	switch (webhook_authenticate(cfg->environment, cfg->stripe_webhook_unsigned_insecure_allow,
	    cfg->stripe_webhook_secret, request_header(req, "Stripe-Signature"), body,
	    req->body_len, (long long)time(NULL))) {
	case WEBHOOK_DENY:
		if (cfg->stripe_webhook_secret == NULL)
			http_respond_error(req, GE_INVALID_SIGNATURE, NULL, "webhooks are refused: "
			    "STRIPE_WEBHOOK_SECRET is not configured");
		else
			http_respond_error(req, GE_INVALID_SIGNATURE, NULL, NULL);
		return;
	case WEBHOOK_UNVERIFIED:
		log_warn("gala.webhooks", "webhook accepted WITHOUT signature verification "
		    "(STRIPE_WEBHOOK_UNSIGNED_INSECURE_ALLOW, %s)",
		    config_environment_name(cfg->environment));
		break;
	case WEBHOOK_VERIFIED:
		break;
	}
	cJSON *event = NULL;
	if (utf8_valid(body, req->body_len))
		event = cJSON_ParseWithLength(body, req->body_len);
	json_defer(req->arena, event);
	if (!cJSON_IsObject(event)) {
		http_respond_error(req, GE_INVALID_WEBHOOK_PAYLOAD, NULL, NULL);
		return;
	}
	struct webhook_outcome out;
	enum gala_error e = webhooks_process(&req->cx, event, &out);
	if (e == GE_INVALID_WEBHOOK_PAYLOAD) {
		http_respond_error(req, e, NULL, "the webhook payload is not a Stripe event "
		    "(an object with string id and type, and data.object for the types Gala handles)");
		return;
	}
	if (e != GE_OK) {
		http_respond_error(req, e, NULL, NULL);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "received", 1);
	if (out.duplicate)
		cJSON_AddBoolToObject(o, "duplicate", 1);
	response_json(req, 200, o);
}
