#include "autoconf.h"

#include "services/bookings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/audit.h"
#include "core/config.h"
#include "core/money.h"
#include "db/db.h"
#include "core/json.h"
#include "services/event_access.h"
#include "services/list.h"

static const char *const status_names[BOOKING__STATUS_COUNT] = {
	[BOOKING_REQUESTED] = "requested",
	[BOOKING_ACCEPTED] = "accepted",
	[BOOKING_DECLINED] = "declined",
	[BOOKING_CANCELLED] = "cancelled",
	[BOOKING_PAYMENT_PENDING] = "payment_pending",
	[BOOKING_PAID] = "paid",
	[BOOKING_COMPLETED] = "completed",
	[BOOKING_RELEASED] = "released",
	[BOOKING_REFUNDED] = "refunded",
};

static const char *const action_names[BOOKING__ACTION_COUNT] = {
	[BOOKING_ACCEPT] = "accept",
	[BOOKING_DECLINE] = "decline",
	[BOOKING_CANCEL] = "cancel",
	[BOOKING_PAY] = "pay",
	[BOOKING_PAYMENT_SUCCEEDED] = "payment_succeeded",
	[BOOKING_PAYMENT_FAILED] = "payment_failed",
	[BOOKING_COMPLETE] = "complete",
	[BOOKING_RELEASE] = "release",
	[BOOKING_REFUND] = "refund",
	[BOOKING_CHARGE_REFUNDED] = "charge_refunded",
};

#define OWNER BOOKING_ACTOR_OWNER
#define PROVIDER BOOKING_ACTOR_PROVIDER
#define ADMIN BOOKING_ACTOR_ADMIN
#define SYSTEM BOOKING_ACTOR_SYSTEM

/* The machine of API.md: every allowed change, and who may make it. A
 * pair (action, from) that is not here is 409 for a caller who may take
 * the action at all; a row with no actors is 403 for everyone (cancelling
 * a completed or released booking means a refund, which is admin only and
 * goes through the refund route). */
static const struct transition {
	enum booking_action action;
	enum booking_status from;
	enum booking_status to;
	unsigned actors;
} machine[] = {
	{ BOOKING_ACCEPT, BOOKING_REQUESTED, BOOKING_ACCEPTED, PROVIDER },
	{ BOOKING_DECLINE, BOOKING_REQUESTED, BOOKING_DECLINED, PROVIDER },
	{ BOOKING_CANCEL, BOOKING_REQUESTED, BOOKING_CANCELLED, OWNER | PROVIDER },
	{ BOOKING_CANCEL, BOOKING_ACCEPTED, BOOKING_CANCELLED, OWNER | PROVIDER },
	{ BOOKING_CANCEL, BOOKING_PAYMENT_PENDING, BOOKING_CANCELLED, OWNER | PROVIDER },
	{ BOOKING_CANCEL, BOOKING_PAID, BOOKING_REFUNDED, OWNER | PROVIDER },
	{ BOOKING_CANCEL, BOOKING_COMPLETED, BOOKING_REFUNDED, 0 },
	{ BOOKING_CANCEL, BOOKING_RELEASED, BOOKING_REFUNDED, 0 },
	{ BOOKING_PAY, BOOKING_ACCEPTED, BOOKING_PAYMENT_PENDING, OWNER },
	{ BOOKING_PAYMENT_SUCCEEDED, BOOKING_PAYMENT_PENDING, BOOKING_PAID, SYSTEM },
	/* Money code: a PaymentIntent that failed once (booking back to
	 * accepted) and then succeeded with another card is paid. */
	{ BOOKING_PAYMENT_SUCCEEDED, BOOKING_ACCEPTED, BOOKING_PAID, SYSTEM },
	{ BOOKING_PAYMENT_FAILED, BOOKING_PAYMENT_PENDING, BOOKING_ACCEPTED, SYSTEM },
	{ BOOKING_COMPLETE, BOOKING_PAID, BOOKING_COMPLETED, OWNER | ADMIN },
	/* SYSTEM: gala maintenance completing a stuck payout (money code). */
	{ BOOKING_RELEASE, BOOKING_COMPLETED, BOOKING_RELEASED, OWNER | ADMIN | SYSTEM },
	{ BOOKING_REFUND, BOOKING_PAID, BOOKING_REFUNDED, ADMIN },
	{ BOOKING_REFUND, BOOKING_COMPLETED, BOOKING_REFUNDED, ADMIN },
	{ BOOKING_REFUND, BOOKING_RELEASED, BOOKING_REFUNDED, ADMIN },
	{ BOOKING_CHARGE_REFUNDED, BOOKING_PAID, BOOKING_REFUNDED, SYSTEM },
	{ BOOKING_CHARGE_REFUNDED, BOOKING_COMPLETED, BOOKING_REFUNDED, SYSTEM },
	{ BOOKING_CHARGE_REFUNDED, BOOKING_RELEASED, BOOKING_REFUNDED, SYSTEM },
};

#undef OWNER
#undef PROVIDER
#undef ADMIN
#undef SYSTEM

const char *booking_status_name(enum booking_status s)
{
	return (unsigned)s < BOOKING__STATUS_COUNT ? status_names[s] : "unknown";
}

int booking_status_parse(const char *name, enum booking_status *out)
{
	for (int i = 0; name != NULL && i < BOOKING__STATUS_COUNT; i++) {
		if (strcmp(status_names[i], name) == 0) {
			*out = (enum booking_status)i;
			return 0;
		}
	}
	return -1;
}

const char *booking_action_name(enum booking_action a)
{
	return (unsigned)a < BOOKING__ACTION_COUNT ? action_names[a] : "unknown";
}

enum gala_error booking_decide(enum booking_status from, enum booking_action action,
    unsigned actor, enum booking_status *to)
{
	unsigned may_act = 0;
	for (size_t i = 0; i < sizeof machine / sizeof machine[0]; i++) {
		const struct transition *t = &machine[i];
		if (t->action != action)
			continue;
		if (t->from == from) {
			if ((t->actors & actor) == 0)
				return GE_FORBIDDEN;
			*to = t->to;
			return GE_OK;
		}
		may_act |= t->actors;
	}
	return (may_act & actor) != 0 ? GE_INVALID_STATE : GE_FORBIDDEN;
}

unsigned booking_actor(const struct booking *b, const struct session *u)
{
	unsigned a = 0;
	if (u == NULL)
		return 0;
	if (strcmp(u->role, "admin") == 0)
		a |= BOOKING_ACTOR_ADMIN;
	if (b->event_owner_id != NULL && strcmp(b->event_owner_id, u->id) == 0)
		a |= BOOKING_ACTOR_OWNER;
	if (b->provider_user_id != NULL && strcmp(b->provider_user_id, u->id) == 0)
		a |= BOOKING_ACTOR_PROVIDER;
	return a;
}

/* The booking's own columns, then its event's and provider's (see
 * booking_from_row). */
#define BOOKING_COLUMNS \
	"es.id, es.event_id, es.service_provider_id, es.description, es.amount_cents, " \
	"es.currency, es.platform_fee_cents, es.status, " SQL_TS("es.created_at") ", " \
	SQL_TS("es.updated_at") ", e.owner_id, e.status, sp.user_id, sp.stripe_account_id, " \
	"sp.payouts_enabled"
/* The columns of BOOKING_COLUMNS. */
enum {
	BK_ID, BK_EVENT_ID, BK_PROVIDER_ID, BK_DESCRIPTION, BK_AMOUNT_CENTS, BK_CURRENCY,
	BK_PLATFORM_FEE_CENTS, BK_STATUS, BK_CREATED_AT, BK_UPDATED_AT, BK_EVENT_OWNER_ID,
	BK_EVENT_STATUS, BK_PROVIDER_USER_ID, BK_PROVIDER_STRIPE_ACCOUNT, BK_PROVIDER_PAYOUTS_ENABLED
};
#define BOOKING_FROM \
	"event_services es JOIN events e ON e.id = es.event_id " \
	"JOIN service_providers sp ON sp.id = es.service_provider_id "
#define BOOKING_SELECT "SELECT " BOOKING_COLUMNS " FROM " BOOKING_FROM
/* An event's bookings; $2, when set, keeps one provider's user's only. */
#define BOOKINGS_OF_EVENT BOOKING_FROM \
	"WHERE es.event_id = $1 AND ($2::uuid IS NULL OR sp.user_id = $2::uuid)"

static void booking_from_row(const PGresult *res, int row, struct booking *b)
{
	b->id = db_value(res, row, BK_ID);
	b->event_id = db_value(res, row, BK_EVENT_ID);
	b->service_provider_id = db_value(res, row, BK_PROVIDER_ID);
	b->description = db_value(res, row, BK_DESCRIPTION);
	b->amount_cents = strtoll(db_value(res, row, BK_AMOUNT_CENTS), NULL, 10);
	b->currency = db_value(res, row, BK_CURRENCY);
	b->platform_fee_cents = strtoll(db_value(res, row, BK_PLATFORM_FEE_CENTS), NULL, 10);
	if (booking_status_parse(db_value(res, row, BK_STATUS), &b->status) != 0)
		b->status = BOOKING__STATUS_COUNT;
	db_time(res, row, BK_CREATED_AT, b->created_at);
	db_time(res, row, BK_UPDATED_AT, b->updated_at);
	b->event_owner_id = db_value(res, row, BK_EVENT_OWNER_ID);
	b->event_status = db_value(res, row, BK_EVENT_STATUS);
	b->provider_user_id = db_value(res, row, BK_PROVIDER_USER_ID);
	b->provider_stripe_account_id = db_value(res, row, BK_PROVIDER_STRIPE_ACCOUNT);
	b->provider_payouts_enabled = db_bool(res, row, BK_PROVIDER_PAYOUTS_ENABLED);
}

/* The Event service object of a row of BOOKING_COLUMNS. */
static cJSON *booking_row_json(const PGresult *res, int row)
{
	struct booking b;
	booking_from_row(res, row, &b);
	return booking_json(&b);
}

enum gala_error bookings_load(arena_t *a, const char *id, bool lock, struct booking *out)
{
	const char *p[] = { id };
	PGresult *res;
	enum db_status st = db_exec(a, &res, lock ?
	    BOOKING_SELECT "WHERE es.id = $1 FOR UPDATE OF es" :
	    BOOKING_SELECT "WHERE es.id = $1", 1, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1)
		return GE_NOT_FOUND;
	booking_from_row(res, 0, out);
	return GE_OK;
}

cJSON *booking_json(const struct booking *b)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", b->id);
	cJSON_AddStringToObject(o, "event_id", b->event_id);
	cJSON_AddStringToObject(o, "service_provider_id", b->service_provider_id);
	cJSON_AddStringToObject(o, "description", b->description);
	cJSON_AddNumberToObject(o, "amount_cents", (double)b->amount_cents);
	cJSON_AddStringToObject(o, "currency", b->currency);
	cJSON_AddNumberToObject(o, "platform_fee_cents", (double)b->platform_fee_cents);
	cJSON_AddStringToObject(o, "status", booking_status_name(b->status));
	cJSON_AddStringToObject(o, "created_at", b->created_at);
	cJSON_AddStringToObject(o, "updated_at", b->updated_at);
	return o;
}

static void explain_refusal(arena_t *a, enum gala_error e, const struct booking *b,
    enum booking_action action, struct refusal *why)
{
	if (why == NULL)
		return;
	const char *cur = booking_status_name(b->status);
	if (e == GE_INVALID_STATE)
		why->message = arena_printf(a, "the booking is %s: %s is not possible in that state",
		    cur, booking_action_name(action));
	else if (e == GE_FORBIDDEN)
		why->message = arena_printf(a, "the booking is %s: you may not %s it", cur,
		    booking_action_name(action));
}

static void meta_set(cJSON *meta, const char *key, const char *value)
{
	cJSON_DeleteItemFromObjectCaseSensitive(meta, key);
	cJSON_AddStringToObject(meta, key, value);
}

/* The other party of a change, for the audit row's target. */
static const char *audit_target(const struct booking *b, unsigned actor)
{
	if (actor & BOOKING_ACTOR_OWNER)
		return b->provider_user_id;
	return b->event_owner_id;
}

enum gala_error booking_transition(struct svc_ctx *cx, arena_t *a, struct booking *b,
    enum booking_action action, unsigned actor, const char *actor_user_id,
    cJSON *metadata, struct refusal *why)
{
	cJSON *meta = metadata ? metadata : cJSON_CreateObject();
	/* A second round only when the row changed under us, which the lock of
	 * bookings_load prevents; without it the status may move more than
	 * once, hence the bound instead of a single retry. */
	for (int round = 0; round < 4; round++) {
		enum booking_status to;
		enum gala_error e = booking_decide(b->status, action, actor, &to);
		if (e != GE_OK) {
			explain_refusal(a, e, b, action, why);
			cJSON_Delete(meta);
			return e;
		}
		const char *from = booking_status_name(b->status);
		const char *p[] = { b->id, from, booking_status_name(to) };
		PGresult *res;
		enum db_status st = db_exec(a, &res,
		    "UPDATE event_services SET status = $3, updated_at = now() "
		    "WHERE id = $1 AND status = $2 RETURNING " SQL_TS("updated_at"), 3, p);
		if (st != DB_OK) {
			cJSON_Delete(meta);
			return db_error(st);
		}
		if (PQntuples(res) == 1) {
			b->status = to;
			db_time(res, 0, 0, b->updated_at);
			meta_set(meta, "event_service_id", b->id);
			meta_set(meta, "event_id", b->event_id);
			meta_set(meta, "from", from);
			meta_set(meta, "to", booking_status_name(to));
			st = audit_write(cx, a, actor_user_id, audit_target(b, actor),
			    arena_printf(a, "booking.%s", booking_status_name(to)), "success", meta);
			return st == DB_OK ? GE_OK : db_error(st);
		}
		const char *q[] = { b->id };
		st = db_exec(a, &res, "SELECT status FROM event_services WHERE id = $1", 1, q);
		if (st != DB_OK) {
			cJSON_Delete(meta);
			return db_error(st);
		}
		if (PQntuples(res) != 1 || booking_status_parse(db_value(res, 0, 0), &b->status) != 0) {
			cJSON_Delete(meta);
			return GE_INTERNAL;
		}
	}
	cJSON_Delete(meta);
	return GE_CONFLICT;
}

enum gala_error bookings_act(struct svc_ctx *cx, const char *id, enum booking_action action,
    cJSON **out, struct refusal *why, bool *refund)
{
	*refund = false;
	arena_t *a = cx->arena;
	struct booking b;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	enum gala_error e = bookings_load(a, id, true, &b);
	if (e != GE_OK)
		return db_fail(e);
	unsigned actor = booking_actor(&b, cx->caller);
	if (actor == 0)
		return db_fail(GE_NOT_FOUND);
	enum booking_status to;
	if (action == BOOKING_CANCEL && booking_decide(b.status, action, actor, &to) == GE_OK &&
	    to == BOOKING_REFUNDED) {
		/* Cancelling a paid booking refunds it through Stripe, which must
		 * not happen while this transaction holds the row. */
		db_rollback();
		*refund = true;
		return GE_OK;
	}
	e = booking_transition(cx, a, &b, action, actor, cx->caller->id, NULL, why);
	if (e != GE_OK)
		return db_fail(e);
	if ((st = db_commit(a)) != DB_OK)
		return db_error(st);
	*out = booking_json(&b);
	return GE_OK;
}

enum gala_error bookings_cancel_for_event(struct svc_ctx *cx, arena_t *a, const char *event_id,
    struct refusal *why)
{
	const char *p[] = { event_id };
	PGresult *res;
	enum db_status st = db_exec(a, &res, BOOKING_SELECT
	    "WHERE es.event_id = $1 ORDER BY es.created_at, es.id FOR UPDATE OF es", 1, p);
	if (st != DB_OK)
		return db_error(st);
	int n = PQntuples(res);
	struct booking *all = arena_calloc(a, (size_t)n + 1, sizeof *all);
	for (int i = 0; i < n; i++) {
		booking_from_row(res, i, &all[i]);
		enum booking_status s = all[i].status;
		if (s == BOOKING_PAYMENT_PENDING || s == BOOKING_PAID || s == BOOKING_COMPLETED) {
			why->message = arena_printf(a, "booking %s is %s: settle it before cancelling "
			    "the event", all[i].id, booking_status_name(s));
			return GE_INVALID_STATE;
		}
	}
	for (int i = 0; i < n; i++) {
		if (all[i].status != BOOKING_REQUESTED && all[i].status != BOOKING_ACCEPTED)
			continue;
		cJSON *meta = cJSON_CreateObject();
		cJSON_AddStringToObject(meta, "reason", "event_cancelled");
		enum gala_error e = booking_transition(cx, a, &all[i], BOOKING_CANCEL,
		    BOOKING_ACTOR_OWNER, cx->caller->id, meta, why);
		if (e != GE_OK)
			return e;
	}
	return GE_OK;
}

enum gala_error bookings_create(struct svc_ctx *cx, const char *event_id,
    const struct booking_new *in, cJSON **out, struct refusal *why)
{
	arena_t *a = cx->arena;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	struct event_ref ev;
	/* FOR SHARE: the event cannot be cancelled until this booking is in. */
	enum gala_error e = event_ref_load(a, event_id, cx->caller, EVENT_LOCK_SHARE, &ev);
	if (e != GE_OK)
		return db_fail(e);
	if (!(ev.access & EVENT_ACCESS_OWNER)) {
		why->message = "only the event's owner may book providers for it";
		return db_fail(GE_FORBIDDEN);
	}
	if (strcmp(ev.status, "cancelled") == 0) {
		why->message = "the event is cancelled: it takes no more bookings";
		return db_fail(GE_INVALID_STATE);
	}
	char amount[24], fee[24];
	snprintf(amount, sizeof amount, "%lld", in->amount_cents);
	snprintf(fee, sizeof fee, "%lld",
	    money_platform_fee(in->amount_cents, gala_config->platform_fee_bps));
	const char *p[] = { event_id, in->service_provider_id, in->description, amount,
		ev.currency, fee };
	PGresult *res;
	/* The provider is looked up by the INSERT itself: no row means no such
	 * provider, and the foreign key keeps it from vanishing meanwhile. */
	st = db_exec(a, &res,
	    "WITH ins AS (INSERT INTO event_services (event_id, service_provider_id, description, "
	    "amount_cents, currency, platform_fee_cents) "
	    "SELECT $1, sp.id, $3, $4::bigint, $5, $6::bigint FROM service_providers sp "
	    "WHERE sp.id = $2 RETURNING id) SELECT id FROM ins", 6, p);
	if (st != DB_OK)
		return db_fail(db_error(st));
	if (PQntuples(res) != 1) {
		why->param = "service_provider_id";
		why->message = "service_provider_id names no service provider";
		return db_fail(GE_VALIDATION);
	}
	struct booking b;
	if ((e = bookings_load(a, db_value(res, 0, 0), false, &b)) != GE_OK)
		return db_fail(e);
	cJSON *meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "event_service_id", b.id);
	cJSON_AddStringToObject(meta, "event_id", b.event_id);
	cJSON_AddStringToObject(meta, "to", "requested");
	cJSON_AddNumberToObject(meta, "amount_cents", (double)b.amount_cents);
	cJSON_AddStringToObject(meta, "currency", b.currency);
	if ((st = audit_write(cx, a, cx->caller->id, b.provider_user_id, "booking.requested",
	    "success", meta)) != DB_OK || (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	*out = booking_json(&b);
	return GE_OK;
}

enum gala_error bookings_get(struct svc_ctx *cx, const char *id, cJSON **out)
{
	struct booking b;
	enum gala_error e = bookings_load(cx->arena, id, false, &b);
	if (e != GE_OK)
		return e;
	if (booking_actor(&b, cx->caller) == 0)
		return GE_NOT_FOUND;
	*out = booking_json(&b);
	return GE_OK;
}

enum gala_error bookings_list(struct svc_ctx *cx, const char *event_id, int limit, int offset,
    cJSON **out)
{
	arena_t *a = cx->arena;
	struct event_ref ev;
	enum gala_error e = event_ref_load(a, event_id, cx->caller, EVENT_LOCK_NONE, &ev);
	if (e != GE_OK)
		return e;
	/* A provider who is neither owner nor admin sees only its own. */
	const char *only_user = (ev.access & (EVENT_ACCESS_OWNER | EVENT_ACCESS_ADMIN)) ?
	    NULL : cx->caller->id;
	static const char page_sql[] = SQL_PAGE(BOOKING_COLUMNS, BOOKINGS_OF_EVENT,
	    "es.created_at DESC, es.id DESC", "$3", "$4");
	const char *filter[] = { event_id, only_user };
	const struct list_query q = { page_sql, SQL_PAGE_TOTAL(BOOKINGS_OF_EVENT), 2, filter,
		false };
	return list_page(a, &q, limit, offset, booking_row_json, out);
}
