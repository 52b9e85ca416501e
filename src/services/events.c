#include "autoconf.h"

#include "services/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "core/json.h"
#include "services/bookings.h"
#include "services/event_access.h"
#include "services/list.h"

/* Read in binary format (db_exec_binary): the list's rows are the busiest
 * result of all, and in binary Postgres converts none of their values. */
#define EVENT_COLUMNS \
	"e.id, e.owner_id, e.title, e.description, e.city, e.venue, e.starts_at, e.ends_at, " \
	"e.budget_cents, e.currency, e.status, e.created_at, e.updated_at"
/* Newest first; the id breaks ties within a microsecond. */
#define EVENT_ORDER "e.created_at DESC, e.id DESC"

enum {
	EV_ID, EV_OWNER_ID, EV_TITLE, EV_DESCRIPTION, EV_CITY, EV_VENUE, EV_STARTS_AT, EV_ENDS_AT,
	EV_BUDGET_CENTS, EV_CURRENCY, EV_STATUS, EV_CREATED_AT, EV_UPDATED_AT
};

/* The event of a row of EVENT_COLUMNS. The busiest tree of all (a page
 * has twenty): the names are not copied, nor are the texts of res, which
 * lives as long as the request's arena. */
static cJSON *event_json(const PGresult *res, int row)
{
	static const char *const names[] = { "id", "owner_id", "title", "description", "city",
		"venue", "starts_at", "ends_at", "budget_cents", "currency", "status", "created_at",
		"updated_at" };
	cJSON *o = cJSON_CreateObject();
	for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
		char text[DB_TIME_LEN > DB_UUID_LEN ? DB_TIME_LEN : DB_UUID_LEN];
		cJSON *item;
		if (db_value(res, row, i) == NULL) {
			item = cJSON_CreateNull();
		} else if (i == EV_ID || i == EV_OWNER_ID) {
			item = cJSON_CreateString(db_uuid(res, row, i, text));
		} else if (i == EV_STARTS_AT || i == EV_ENDS_AT || i == EV_CREATED_AT ||
		    i == EV_UPDATED_AT) {
			item = cJSON_CreateString(db_time(res, row, i, text));
		} else if (i == EV_BUDGET_CENTS) {
			snprintf(text, sizeof text, "%lld", db_int(res, row, i));
			item = cJSON_CreateRaw(text);
		} else {
			item = cJSON_CreateStringReference(db_value(res, row, i));
		}
		cJSON_AddItemToObjectCS(o, names[i], item);
	}
	return o;
}

enum gala_error events_create(struct svc_ctx *cx, const struct event_fields *f, cJSON **out)
{
	char budget[24];
	snprintf(budget, sizeof budget, "%lld", f->budget_cents);
	const char *p[] = { cx->caller->id, f->title, f->description, f->city, f->venue,
		f->starts_at, f->ends_at, f->has_budget ? budget : NULL,
		f->currency ? f->currency : "usd" };
	PGresult *res;
	enum db_status st = db_exec_binary(cx->arena, &res,
	    "INSERT INTO events AS e (owner_id, title, description, city, venue, starts_at, ends_at, "
	    "budget_cents, currency) VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7::timestamptz, "
	    "$8::bigint, $9) RETURNING " EVENT_COLUMNS, 9, p);
	if (st != DB_OK)
		return db_error(st);
	*out = event_json(res, 0);
	return GE_OK;
}

enum gala_error events_list(struct svc_ctx *cx, const char *owner_id, int limit, int offset,
    cJSON **out)
{
	if (!session_is_admin(cx->caller)) {
		if (owner_id != NULL && strcmp(owner_id, cx->caller->id) != 0)
			return GE_FORBIDDEN;
		owner_id = cx->caller->id;
	}
	static const char *const page_sql[2][2] = {
		{ SQL_PAGE(EVENT_COLUMNS, "events e", EVENT_ORDER, "$1", "$2"),
		  SQL_PAGE_TOTAL("events e") },
		/* The owner's total is kept in users.event_count
		 * (schema/0019_event_count.sql): one row, not a count. */
		{ "SELECT " EVENT_COLUMNS ", (SELECT u.event_count FROM users u WHERE u.id = $1) "
		  "FROM events e WHERE e.owner_id = $1 ORDER BY " EVENT_ORDER
		  " LIMIT $2::int OFFSET $3::int",
		  "SELECT COALESCE((SELECT u.event_count FROM users u WHERE u.id = $1), 0)" },
	};
	int scoped = owner_id != NULL;
	const struct list_query q = { page_sql[scoped][0], page_sql[scoped][1], scoped, &owner_id,
		true };
	return list_page(cx->arena, &q, limit, offset, event_json, out);
}

enum gala_error events_get(struct svc_ctx *cx, const char *id, cJSON **out)
{
	const char *p[] = { id };
	PGresult *res;
	enum db_status st = db_exec_binary(cx->arena, &res, "SELECT " EVENT_COLUMNS
	    " FROM events e WHERE e.id = $1", 1, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1)
		return GE_NOT_FOUND;
	unsigned access;
	char owner[DB_UUID_LEN];
	enum gala_error e = event_access(cx->arena, id, db_uuid(res, 0, EV_OWNER_ID, owner),
	    cx->caller, &access);
	if (e != GE_OK)
		return e;
	if (access == 0)
		return GE_NOT_FOUND;
	*out = event_json(res, 0);
	return GE_OK;
}

/* Owner-only changes: loads and locks the event, 404 / 403 / 409 as API.md
 * says. */
static enum gala_error owner_lock(struct svc_ctx *cx, const char *id, struct event_ref *ev,
    struct refusal *why)
{
	enum gala_error e = event_ref_load(cx->arena, id, cx->caller, EVENT_LOCK_UPDATE, ev);
	if (e != GE_OK)
		return e;
	if (!(ev->access & EVENT_ACCESS_OWNER)) {
		why->message = "only the event's owner may change it";
		return GE_FORBIDDEN;
	}
	return GE_OK;
}

enum gala_error events_update(struct svc_ctx *cx, const char *id, const struct event_fields *f,
    cJSON **out, struct refusal *why)
{
	arena_t *a = cx->arena;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	struct event_ref ev;
	enum gala_error e = owner_lock(cx, id, &ev, why);
	if (e != GE_OK)
		return db_fail(e);
	if (strcmp(ev.status, "cancelled") == 0) {
		why->message = "the event is cancelled: it can no longer be changed";
		return db_fail(GE_INVALID_STATE);
	}
	char budget[24];
	snprintf(budget, sizeof budget, "%lld", f->budget_cents);
	const char *t = "true", *no = "false";
	const char *p[] = { id, f->title,
		f->description || f->clear_description ? t : no, f->description,
		f->city || f->clear_city ? t : no, f->city,
		f->venue || f->clear_venue ? t : no, f->venue,
		f->starts_at,
		f->ends_at || f->clear_ends_at ? t : no, f->ends_at,
		f->has_budget || f->clear_budget ? t : no, f->has_budget ? budget : NULL,
		f->currency, f->publish ? "published" : NULL };
	PGresult *res;
	st = db_exec_binary(a, &res, "UPDATE events e SET "
	    "title = COALESCE($2, title), "
	    "description = CASE WHEN $3::boolean THEN $4 ELSE description END, "
	    "city = CASE WHEN $5::boolean THEN $6 ELSE city END, "
	    "venue = CASE WHEN $7::boolean THEN $8 ELSE venue END, "
	    "starts_at = COALESCE($9::timestamptz, starts_at), "
	    "ends_at = CASE WHEN $10::boolean THEN $11::timestamptz ELSE ends_at END, "
	    "budget_cents = CASE WHEN $12::boolean THEN $13::bigint ELSE budget_cents END, "
	    "currency = COALESCE($14, currency), "
	    "status = COALESCE($15, status), updated_at = now() "
	    "WHERE e.id = $1 RETURNING " EVENT_COLUMNS, 15, p);
	if (st == DB_ERROR && strcmp(db_sqlstate(res), "23514") == 0) {
		const char *c = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
		if (c != NULL && strcmp(c, "events_time_order") == 0) {
			why->param = f->ends_at ? "ends_at" : "starts_at";
			why->message = "ends_at must be after starts_at";
			return db_fail(GE_VALIDATION);
		}
	}
	if (st != DB_OK)
		return db_fail(db_error(st));
	if ((st = db_commit(a)) != DB_OK)
		return db_error(st);
	*out = event_json(res, 0);
	return GE_OK;
}

enum gala_error events_cancel(struct svc_ctx *cx, const char *id, struct refusal *why)
{
	arena_t *a = cx->arena;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	struct event_ref ev;
	enum gala_error e = owner_lock(cx, id, &ev, why);
	if (e != GE_OK)
		return db_fail(e);
	if (strcmp(ev.status, "cancelled") == 0) {
		db_rollback();
		return GE_OK;
	}
	if ((e = bookings_cancel_for_event(cx, a, id, why)) != GE_OK)
		return db_fail(e);
	const char *p[] = { id };
	PGresult *res;
	if ((st = db_exec(a, &res, "UPDATE events SET status = 'cancelled', updated_at = now() "
	    "WHERE id = $1", 1, p)) != DB_OK || (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	return GE_OK;
}
