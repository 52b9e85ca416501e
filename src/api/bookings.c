#include "autoconf.h"

#include "api/handlers.h"
#include "api/market.h"
#include "core/money.h"
#include "http/response.h"
#include "http/validate.h"
#include "services/bookings.h"
#include "services/charges.h"

void api_event_services_create(struct request *req)
{
	const char *event_id = market_path_id(req);
	if (event_id == NULL)
		return;
	static const char *const fields[] = { "service_provider_id", "description", "amount_cents",
		NULL };
	struct validator v;
	struct booking_new in = { 0 };
	v_init(&v, req);
	v_only(&v, fields);
	in.service_provider_id = v_uuid(&v, "service_provider_id", true);
	in.description = v_string(&v, "description", true, 1, 2000, false);
	in.amount_cents = v_int(&v, "amount_cents", true, 1, MONEY_MAX_AMOUNT_CENTS, NULL);
	if (v.failed)
		return;
	cJSON *out = NULL;
	struct refusal why = { 0 };
	enum gala_error e = bookings_create(&req->cx, event_id, &in, &out, &why);
	if (e != GE_OK) {
		market_respond_error(req, e, &why);
		return;
	}
	market_respond_created(req, arena_printf(req->arena, "/api/event-services/%s",
	    cJSON_GetObjectItem(out, "id")->valuestring), out);
}

void api_event_services_list(struct request *req)
{
	const char *event_id = market_path_id(req);
	if (event_id == NULL)
		return;
	struct validator v;
	int limit, offset;
	v_init(&v, req);
	v_page(&v, 20, &limit, &offset);
	if (v.failed)
		return;
	cJSON *out = NULL;
	enum gala_error e = bookings_list(&req->cx, event_id, limit, offset, &out);
	market_respond(req, e, out, NULL);
}

void api_event_services_get(struct request *req)
{
	market_get(req, bookings_get);
}

/* The actions take no fields: anything in the body is refused, so that no
 * client believes it set a status or an amount this way. */
static void act(struct request *req, enum booking_action action)
{
	const char *id = market_path_id(req);
	if (id == NULL)
		return;
	static const char *const none[] = { NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, none);
	if (v.failed)
		return;
	cJSON *out = NULL;
	struct refusal why = { 0 };
	bool refund;
	enum gala_error e = bookings_act(&req->cx, id, action, &out, &why, &refund);
	if (e == GE_OK && refund)
		e = charges_cancel_paid(&req->cx, id, &out, &why);
	market_respond(req, e, out, &why);
}

void api_event_services_accept(struct request *req)
{
	act(req, BOOKING_ACCEPT);
}

void api_event_services_decline(struct request *req)
{
	act(req, BOOKING_DECLINE);
}

void api_event_services_complete(struct request *req)
{
	act(req, BOOKING_COMPLETE);
}

void api_event_services_cancel(struct request *req)
{
	act(req, BOOKING_CANCEL);
}
