#include "autoconf.h"

#include "services/subscriptions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/stripe.h"
#include "services/audit.h"
#include "core/config.h"
#include "core/crypto.h"
#include "core/log.h"
#include "db/db.h"
#include "services/session.h"
#include "core/json.h"
#include "services/list.h"

#define SUB_COLUMNS "id, user_id, stripe_subscription_id, price_id, status, " \
	SQL_TS("current_period_end") ", cancel_at_period_end, " SQL_TS("created_at") ", " \
	SQL_TS("updated_at")
enum {
	SUB_ID, SUB_USER_ID, SUB_STRIPE_ID, SUB_PRICE_ID, SUB_STATUS, SUB_PERIOD_END,
	SUB_CANCEL_AT_PERIOD_END, SUB_CREATED_AT, SUB_UPDATED_AT
};

static const char *const stripe_statuses[] = { "incomplete", "incomplete_expired", "trialing",
	"active", "past_due", "canceled", "unpaid", "paused", NULL };

static enum gala_error stripe_err(enum stripe_outcome o)
{
	switch (o) {
	case STRIPE_OK:
		return GE_OK;
	case STRIPE_NOT_CONFIGURED:
		return GE_STRIPE_NOT_CONFIGURED;
	case STRIPE_REFUSED:
		return GE_STRIPE_ERROR;
	case STRIPE_UNAVAILABLE:
	case STRIPE_AMBIGUOUS:
		break;
	}
	return GE_STRIPE_UNAVAILABLE;
}

/* Walks the comma-separated STRIPE_PRICE_IDS; fn returns true to stop. */
static bool each_price(bool (*fn)(const char *id, size_t len, void *ud), void *ud)
{
	const char *p = gala_config->stripe_price_ids;
	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		size_t len = strcspn(p, ",");
		size_t trimmed = len;
		while (trimmed > 0 && p[trimmed - 1] == ' ')
			trimmed--;
		if (trimmed > 0 && fn(p, trimmed, ud))
			return true;
		p += len;
	}
	return false;
}

static bool price_matches(const char *id, size_t len, void *ud)
{
	const char *want = ud;
	return strlen(want) == len && strncmp(want, id, len) == 0;
}

bool subscriptions_price_allowed(const char *price_id)
{
	return each_price(price_matches, (void *)price_id);
}

static bool price_add(const char *id, size_t len, void *ud)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%.*s", (int)len, id);
	cJSON *item = cJSON_CreateObject();
	cJSON_AddStringToObject(item, "price_id", buf);
	cJSON_AddItemToArray(ud, item);
	return false;
}

cJSON *subscriptions_plans_json(void)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *items = cJSON_AddArrayToObject(o, "items");
	each_price(price_add, items);
	return o;
}

static cJSON *sub_json(const PGresult *res, int row)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", db_value(res, row, SUB_ID));
	cJSON_AddStringToObject(o, "user_id", db_value(res, row, SUB_USER_ID));
	cJSON_AddStringToObject(o, "stripe_subscription_id", db_value(res, row, SUB_STRIPE_ID));
	cJSON_AddStringToObject(o, "price_id", db_value(res, row, SUB_PRICE_ID));
	cJSON_AddStringToObject(o, "status", db_value(res, row, SUB_STATUS));
	char t[DB_TIME_LEN];
	const char *end = db_time(res, row, SUB_PERIOD_END, t);
	if (end != NULL)
		cJSON_AddStringToObject(o, "current_period_end", end);
	else
		cJSON_AddNullToObject(o, "current_period_end");
	cJSON_AddBoolToObject(o, "cancel_at_period_end", db_bool(res, row, SUB_CANCEL_AT_PERIOD_END));
	cJSON_AddStringToObject(o, "created_at", db_time(res, row, SUB_CREATED_AT, t));
	cJSON_AddStringToObject(o, "updated_at", db_time(res, row, SUB_UPDATED_AT, t));
	return o;
}

/* The price of a Stripe subscription object: items.data[0].price.id. */
static const char *stripe_sub_price(const cJSON *sub)
{
	const cJSON *data = cJSON_GetObjectItem(cJSON_GetObjectItem(sub, "items"), "data");
	const cJSON *price = cJSON_GetObjectItem(cJSON_GetArrayItem(data, 0), "price");
	return cJSON_IsObject(price) ? stripe_str(price, "id") : stripe_str(cJSON_GetArrayItem(data, 0), "price");
}

static bool known_status(const char *s)
{
	for (const char *const *p = stripe_statuses; s != NULL && *p != NULL; p++)
		if (strcmp(*p, s) == 0)
			return true;
	return false;
}

/* Stores Stripe's view of a subscription unless what is stored is newer.
 * An answer of the API (fresh) is always stored: it is Stripe's state now,
 * whatever the clocks say; webhooks apply only when not older than what is
 * stored. *res holds the stored row when it was written (0 rows when older). */
static enum db_status upsert_from_stripe(arena_t *a, const char *user_id, const cJSON *sub,
    long long state_at, bool fresh, PGresult **res)
{
	const char *sid = stripe_str(sub, "id");
	const char *status = stripe_str(sub, "status");
	const char *price = stripe_sub_price(sub);
	if (!stripe_id_valid(sid, "sub_") || price == NULL || !known_status(status)) {
		log_warn("gala.subscriptions", "ignoring a Stripe subscription object without "
		    "a sub_ id, a price or a known status");
		*res = NULL;
		return DB_OK;
	}
	char end[32], at[32];
	long long period_end = stripe_int(sub, "current_period_end", -1);
	snprintf(end, sizeof end, "%lld", period_end);
	snprintf(at, sizeof at, "%lld", state_at);
	const cJSON *flag = cJSON_GetObjectItem(sub, "cancel_at_period_end");
	const char *p[] = { user_id, sid, price, status, period_end >= 0 ? end : NULL,
		cJSON_IsTrue(flag) ? "true" : "false", at, fresh ? "true" : "false" };
	return db_exec(a, res,
	    "INSERT INTO subscriptions (user_id, stripe_subscription_id, price_id, status, "
	    "current_period_end, cancel_at_period_end, stripe_state_at) "
	    "VALUES ($1, $2, $3, $4, to_timestamp($5::bigint), $6::boolean, $7::bigint) "
	    "ON CONFLICT (stripe_subscription_id) DO UPDATE SET price_id = EXCLUDED.price_id, "
	    "status = EXCLUDED.status, current_period_end = EXCLUDED.current_period_end, "
	    "cancel_at_period_end = EXCLUDED.cancel_at_period_end, "
	    "stripe_state_at = greatest(subscriptions.stripe_state_at, EXCLUDED.stripe_state_at), "
	    "updated_at = now() "
	    "WHERE subscriptions.stripe_state_at <= EXCLUDED.stripe_state_at OR $8::boolean "
	    "RETURNING " SUB_COLUMNS, 8, p);
}

/* The user's Stripe customer, created once: concurrent first calls share
 * one idempotency key, so Stripe makes one customer for all of them. */
static enum gala_error ensure_customer(struct svc_ctx *cx, const char **customer)
{
	arena_t *a = cx->arena;
	const char *p[] = { cx->caller->id };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "SELECT stripe_customer_id FROM users WHERE id = $1", 1, p);
	if (st != DB_OK)
		return db_error(st);
	*customer = db_value(res, 0, 0);
	if (*customer != NULL)
		return GE_OK;
	const struct session_profile *me = session_profile(cx->caller);
	if (me == NULL)
		return GE_DB_UNAVAILABLE;
	const struct stripe_param params[] = {
		{ "email", me->email },
		{ "name", me->full_name },
		{ "metadata[user_id]", cx->caller->id },
	};
	struct stripe_result r;
	char *key = arena_printf(a, "customer:%s", cx->caller->id);
	if (stripe_call(a, "POST", "/v1/customers", params, 3, key, &r) != STRIPE_OK)
		return stripe_err(r.outcome);
	const char *cid = stripe_str(r.object, "id");
	if (cid == NULL)
		return GE_STRIPE_UNAVAILABLE;
	const char *q[] = { cx->caller->id, cid };
	st = db_exec(a, &res, "UPDATE users SET stripe_customer_id = coalesce(stripe_customer_id, $2), "
	    "updated_at = now() WHERE id = $1 RETURNING stripe_customer_id", 2, q);
	if (st != DB_OK)
		return db_error(st);
	*customer = db_value(res, 0, 0);
	return GE_OK;
}

static cJSON *audit_meta(const char *sub_id, const char *price_or_mode, const char *key)
{
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "subscription_id", sub_id);
	cJSON_AddStringToObject(m, key, price_or_mode);
	return m;
}

enum gala_error subscriptions_start(struct svc_ctx *cx, const char *price_id, cJSON **sub,
    const char **client_secret)
{
	arena_t *a = cx->arena;
	if (!stripe_configured())
		return GE_STRIPE_NOT_CONFIGURED;
	const char *customer;
	enum gala_error e = ensure_customer(cx, &customer);
	if (e != GE_OK)
		return e;
	const struct stripe_param params[] = {
		{ "customer", customer },
		{ "items[0][price]", price_id },
		{ "payment_behavior", "default_incomplete" },
		{ "expand[]", "latest_invoice.payment_intent" },
		{ "metadata[user_id]", cx->caller->id },
	};
	struct stripe_result r;
	/* One logical start is one Stripe subscription: a client retrying with
	 * its Idempotency-Key (after a 502, which is not stored) reaches the
	 * same Stripe key; without one, every request is a new start. The
	 * client's key is hashed: it is free text of up to 255 characters. */
	const char *client_key = cx->idempotency_key;
	char digest[65];
	if (client_key != NULL)
		crypto_sha256_hex(client_key, strlen(client_key), digest);
	char *key = arena_printf(a, "subscription_start:%s:%s%s", cx->caller->id,
	    client_key != NULL ? "key:" : "cx:", client_key != NULL ? digest : cx->request_id);
	if (stripe_call(a, "POST", "/v1/subscriptions", params, 5, key, &r) != STRIPE_OK)
		return stripe_err(r.outcome);
	const cJSON *invoice = cJSON_GetObjectItem(r.object, "latest_invoice");
	const cJSON *pi = cJSON_GetObjectItem(invoice, "payment_intent");
	*client_secret = cJSON_IsObject(pi) ? stripe_str(pi, "client_secret") : NULL;

	PGresult *res;
	enum db_status st = db_begin(a);
	if (st == DB_OK)
		st = upsert_from_stripe(a, cx->caller->id, r.object, (long long)time(NULL), true, &res);
	if (st == DB_OK && (res == NULL || PQntuples(res) != 1)) {
		db_rollback();
		return GE_STRIPE_UNAVAILABLE;
	}
	if (st == DB_OK)
		st = audit_write(cx, a, cx->caller->id, cx->caller->id, "subscription.start", "success",
		    audit_meta(db_value(res, 0, SUB_ID), price_id, "price_id"));
	if (st == DB_OK)
		st = db_commit(a);
	if (st != DB_OK) {
		db_rollback();
		return db_error(st);
	}
	*sub = sub_json(res, 0);
	return GE_OK;
}

enum gala_error subscriptions_list(struct svc_ctx *cx, int limit, int offset, cJSON **out)
{
	static const char page_sql[] = SQL_PAGE(SUB_COLUMNS, "subscriptions WHERE user_id = $1",
	    "created_at DESC, id", "$2", "$3");
	const struct list_query q = { page_sql, SQL_PAGE_TOTAL("subscriptions WHERE user_id = $1"),
		1, &cx->caller->id, false };
	return list_page(cx->arena, &q, limit, offset, sub_json, out);
}

/* The caller's subscription (any user's for an admin): NULL when it does
 * not exist for them (404). */
static enum gala_error load_own(struct svc_ctx *cx, const char *id, PGresult **res)
{
	if (!uuid_valid(id))
		return GE_NOT_FOUND;
	const char *p[] = { id, cx->caller->id, session_is_admin(cx->caller) ? "t" : "f" };
	enum db_status st = db_exec(cx->arena, res, "SELECT " SUB_COLUMNS " FROM subscriptions "
	    "WHERE id = $1::uuid AND (user_id = $2::uuid OR $3::boolean)", 3, p);
	if (st != DB_OK)
		return db_error(st);
	return PQntuples(*res) == 1 ? GE_OK : GE_NOT_FOUND;
}

/* Stores Stripe's answer about a subscription and returns the row. */
static enum gala_error store_answer(struct svc_ctx *cx, const PGresult *row, const cJSON *obj,
    const char *audit_action, cJSON *meta, cJSON **sub)
{
	arena_t *a = cx->arena;
	PGresult *res;
	enum db_status st = db_begin(a);
	if (st == DB_OK)
		st = upsert_from_stripe(a, db_value(row, 0, SUB_USER_ID), obj, (long long)time(NULL),
		    true, &res);
	if (st == DB_OK && audit_action != NULL)
		st = audit_write(cx, a, cx->caller->id, db_value(row, 0, SUB_USER_ID), audit_action,
		    "success", meta);
	else
		cJSON_Delete(meta);
	if (st == DB_OK)
		st = db_commit(a);
	if (st != DB_OK) {
		db_rollback();
		return db_error(st);
	}
	const char *p[] = { db_value(row, 0, SUB_ID) };
	if ((st = db_exec(a, &res, "SELECT " SUB_COLUMNS " FROM subscriptions WHERE id = $1", 1, p)) != DB_OK)
		return db_error(st);
	*sub = sub_json(res, 0);
	return GE_OK;
}

enum gala_error subscriptions_cancel(struct svc_ctx *cx, const char *id, bool at_period_end,
    cJSON **sub)
{
	PGresult *row;
	enum gala_error e = load_own(cx, id, &row);
	if (e != GE_OK)
		return e;
	/* Ended is final, as for a booking: nothing left to cancel. */
	const char *status = db_value(row, 0, SUB_STATUS);
	if (strcmp(status, "canceled") == 0 || strcmp(status, "incomplete_expired") == 0)
		return GE_INVALID_STATE;
	if (!stripe_configured())
		return GE_STRIPE_NOT_CONFIGURED;
	arena_t *a = cx->arena;
	const char *sid = db_value(row, 0, SUB_STRIPE_ID);
	const char *path = stripe_object_path(a, "subscriptions", "sub_", sid, NULL);
	struct stripe_result r;
	if (at_period_end) {
		const struct stripe_param params[] = { { "cancel_at_period_end", "true" } };
		/* A fresh key per call (the client's retries are Idempotency-Key's
		 * business): a key per subscription would have Stripe replay the
		 * first cancel's stale answer to a later one, and apply nothing. */
		char nonce[33];
		crypto_random_hex(nonce, 16);
		char *key = arena_printf(a, "subscription_cancel:%s:period_end:%s",
		    db_value(row, 0, SUB_ID), nonce);
		stripe_call(a, "POST", path, params, 1, key, &r);
	} else {
		stripe_call(a, "DELETE", path, NULL, 0, NULL, &r);
	}
	if (r.outcome != STRIPE_OK)
		return stripe_err(r.outcome);
	return store_answer(cx, row, r.object, "subscription.cancel",
	    audit_meta(db_value(row, 0, SUB_ID), at_period_end ? "at_period_end" : "immediately",
	    "mode"), sub);
}

enum gala_error subscriptions_sync(struct svc_ctx *cx, const char *id, cJSON **sub)
{
	PGresult *row;
	enum gala_error e = load_own(cx, id, &row);
	if (e != GE_OK)
		return e;
	if (!stripe_configured())
		return GE_STRIPE_NOT_CONFIGURED;
	struct stripe_result r;
	const char *path = stripe_object_path(cx->arena, "subscriptions", "sub_",
	    db_value(row, 0, SUB_STRIPE_ID), NULL);
	if (stripe_call(cx->arena, "GET", path, NULL, 0, NULL, &r) != STRIPE_OK)
		return stripe_err(r.outcome);
	return store_answer(cx, row, r.object, NULL, NULL, sub);
}

enum gala_error subscriptions_apply_event(arena_t *a, const cJSON *obj, long long created)
{
	const cJSON *meta = cJSON_GetObjectItem(obj, "metadata");
	const char *user = stripe_str(meta, "user_id");
	const char *customer = stripe_str(obj, "customer");
	if (customer != NULL && !stripe_id_valid(customer, "cus_")) {
		log_warn("gala.subscriptions", "subscription event with a malformed customer id ignored");
		return GE_OK;
	}
	const char *p[] = { user != NULL && uuid_valid(user) ? user : NULL, customer };
	PGresult *res;
	enum db_status st = db_exec(a, &res,
	    "SELECT id FROM (SELECT id, 0 AS pref FROM users WHERE stripe_customer_id = $2 "
	    "UNION ALL SELECT id, 1 FROM users WHERE id = $1::uuid AND stripe_customer_id IS NULL) o "
	    "ORDER BY pref LIMIT 1", 2, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1) {
		log_warn("gala.subscriptions", "subscription event for an unknown customer ignored");
		return GE_OK;
	}
	PGresult *row;
	st = upsert_from_stripe(a, db_value(res, 0, 0), obj, created, false, &row);
	return st == DB_OK ? GE_OK : db_error(st);
}
