#include "autoconf.h"

#include <string.h>
#include <time.h>

#include "api/handlers.h"
#include "api/market.h"
#include "core/money.h"
#include "http/response.h"
#include "http/validate.h"
#include "services/events.h"

/* An RFC 3339 time member that names a real instant; *epoch set. */
static const char *v_time(struct validator *v, const char *name, bool required,
    long long *epoch)
{
	const char *s = v_timestamp(v, name, required, false);
	if (s != NULL && rfc3339_to_unix(s, epoch) != 0) {
		v_fail(v, name, "%s is not a valid date and time", name);
		return NULL;
	}
	return s;
}

/* The body of a create (title and starts_at required) or a PATCH
 * (everything optional; null clears an optional field). */
static void read_fields(struct validator *v, bool create, struct event_fields *f)
{
	static const char *const fields[] = { "title", "description", "city", "venue",
		"starts_at", "ends_at", "budget_cents", "currency", NULL };
	static const char *const patch_fields[] = { "title", "description", "city", "venue",
		"starts_at", "ends_at", "budget_cents", "currency", "status", NULL };
	static const char *const not_null[] = { "title", "starts_at", "currency", "status", NULL };
	static const char *const publish[] = { "published", NULL };
	struct request *req = v->req;
	v_only(v, create ? fields : patch_fields);
	if (!create) {
		for (const char *const *n = not_null; *n != NULL; n++)
			if (market_field_null(req, *n))
				v_fail(v, *n, "%s cannot be null", *n);
		f->clear_description = market_field_null(req, "description");
		f->clear_city = market_field_null(req, "city");
		f->clear_venue = market_field_null(req, "venue");
		f->clear_ends_at = market_field_null(req, "ends_at");
		f->clear_budget = market_field_null(req, "budget_cents");
	}
	f->title = v_string(v, "title", create, 1, 200, true);
	f->description = v_string(v, "description", false, 1, 5000, false);
	f->city = v_string(v, "city", false, 1, 100, true);
	f->venue = v_string(v, "venue", false, 1, 200, true);
	long long starts = 0, ends = 0;
	f->starts_at = v_time(v, "starts_at", create, &starts);
	if (f->starts_at != NULL && starts <= (long long)time(NULL))
		v_fail(v, "starts_at", "starts_at must be in the future");
	f->ends_at = v_time(v, "ends_at", false, &ends);
	if (f->ends_at != NULL && f->starts_at != NULL && ends <= starts)
		v_fail(v, "ends_at", "ends_at must be after starts_at");
	f->budget_cents = v_int(v, "budget_cents", false, 0, 9007199254740991LL, &f->has_budget);
	f->currency = v_string(v, "currency", false, 3, 3, false);
	if (f->currency != NULL && !money_currency_valid(f->currency))
		v_fail(v, "currency", "currency must be a lowercase ISO 4217 code such as usd");
	if (!create)
		f->publish = v_enum(v, "status", false, publish) != NULL;
}

void api_events_create(struct request *req)
{
	struct validator v;
	struct event_fields f = { 0 };
	v_init(&v, req);
	read_fields(&v, true, &f);
	if (v.failed)
		return;
	cJSON *out = NULL;
	enum gala_error e = events_create(&req->cx, &f, &out);
	if (e != GE_OK) {
		market_respond_error(req, e, NULL);
		return;
	}
	market_respond_created(req, arena_printf(req->arena, "/api/events/%s",
	    cJSON_GetObjectItem(out, "id")->valuestring), out);
}

void api_events_list(struct request *req)
{
	struct validator v;
	int limit, offset;
	v_init(&v, req);
	v_page(&v, 20, &limit, &offset);
	const char *owner_id = v_query_uuid(&v, "owner_id");
	if (v.failed)
		return;
	cJSON *out = NULL;
	enum gala_error e = events_list(&req->cx, owner_id, limit, offset, &out);
	if (e == GE_FORBIDDEN) {
		http_respond_error(req, e, "owner_id", "only admins may list other users' events");
		return;
	}
	market_respond(req, e, out, NULL);
}

void api_events_get(struct request *req)
{
	market_get(req, events_get);
}

void api_events_update(struct request *req)
{
	const char *id = market_path_id(req);
	if (id == NULL)
		return;
	struct validator v;
	struct event_fields f = { 0 };
	v_init(&v, req);
	read_fields(&v, false, &f);
	if (v.failed)
		return;
	cJSON *out = NULL;
	struct refusal why = { 0 };
	enum gala_error e = events_update(&req->cx, id, &f, &out, &why);
	market_respond(req, e, out, &why);
}

void api_events_delete(struct request *req)
{
	const char *id = market_path_id(req);
	if (id == NULL)
		return;
	struct validator v;
	static const char *const none[] = { NULL };
	v_init(&v, req);
	v_only(&v, none);
	if (v.failed)
		return;
	struct refusal why = { 0 };
	enum gala_error e = events_cancel(&req->cx, id, &why);
	if (e != GE_OK) {
		market_respond_error(req, e, &why);
		return;
	}
	response_empty(req, 204);
}
