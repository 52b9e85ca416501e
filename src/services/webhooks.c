#include "autoconf.h"

#include "services/webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/stripe.h"
#include "services/audit.h"
#include "core/log.h"
#include "db/db.h"
#include "services/bookings.h"
#include "services/charges.h"
#include "services/subscriptions.h"

static bool is(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

enum webhook_auth webhook_authenticate(enum gala_environment env, bool allow_unsigned,
    const char *secrets, const char *header, const char *payload, size_t len, long long now)
{
	if (secrets == NULL || *secrets == '\0')
		return allow_unsigned && env != ENV_PRODUCTION ? WEBHOOK_UNVERIFIED : WEBHOOK_DENY;
	return stripe_signature_valid(header, payload, len, secrets, now,
	    WEBHOOK_TOLERANCE_SECONDS) ? WEBHOOK_VERIFIED : WEBHOOK_DENY;
}

/* A Stripe id of the event's object, or NULL when absent or not of
 * Stripe's shape (a forged "../customers/cus_x" is never stored nor used). */
static const char *object_id(const struct webhook_event *ev, const cJSON *obj, const char *name,
    const char *prefix)
{
	const char *id = stripe_str(obj, name);
	if (id != NULL && !stripe_id_valid(id, prefix)) {
		log_warn("gala.webhooks", "%s %s: %s is not a %s id; left out", ev->type, ev->id,
		    name, prefix);
		return NULL;
	}
	return id;
}

/* ------------------------------------------------------------ charges */

/* The charge row of a PaymentIntent, and its booking, both locked (the
 * booking first, as every money flow locks them). *found is false when
 * Gala has no such charge (a subscription's invoice, another system on the
 * same Stripe account): the event is then acknowledged and ignored. */
static enum gala_error lock_charge(const struct webhook_event *ev, const char *column,
    const char *value, struct booking *b, struct money_row *ch, bool *found)
{
	arena_t *a = ev->arena;
	*found = false;
	if (value == NULL)
		return GE_OK;
	const char *p[] = { value };
	PGresult *res;
	enum db_status st = db_exec(a, &res, is(column, "charge") ?
	    "SELECT event_service_id FROM payments WHERE payment_type = 'customer_payment' "
	    "AND stripe_charge_id = $1" :
	    "SELECT event_service_id FROM payments WHERE payment_type = 'customer_payment' "
	    "AND stripe_payment_intent_id = $1", 1, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1) {
		log_info("gala.webhooks", "%s %s: no Gala payment for %s %s; ignored", ev->type, ev->id,
		    column, value);
		return GE_OK;
	}
	const char *booking_id = db_value(res, 0, 0);
	enum gala_error e = bookings_load(a, booking_id, true, b);
	if (e == GE_OK)
		e = charges_load_row(a, booking_id, "customer_payment", true, ch);
	if (e != GE_OK)
		return e;
	/* The row may have moved to another PaymentIntent meanwhile. */
	*found = ch->res != NULL && (is(column, "charge") ? is(ch->charge, value) :
	    is(ch->payment_intent, value));
	return GE_OK;
}

static cJSON *event_meta(const struct webhook_event *ev)
{
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "stripe_event_id", ev->id);
	cJSON_AddStringToObject(m, "stripe_event_type", ev->type);
	return m;
}

static enum gala_error set_charge_status(arena_t *a, const char *payment_id, const char *status,
    const char *charge_id)
{
	const char *p[] = { payment_id, status, charge_id };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "UPDATE payments SET status = $2, "
	    "stripe_charge_id = coalesce($3, stripe_charge_id), updated_at = now() WHERE id = $1",
	    3, p);
	return st == DB_OK ? GE_OK : db_error(st);
}

/* payment_intent.succeeded: the charge succeeded, the booking is paid.
 * A late payment_failed of the same PaymentIntent changes nothing after
 * this, and a success after a failure (another card) still counts. */
static enum gala_error on_payment_succeeded(const struct webhook_event *ev)
{
	struct booking b;
	struct money_row ch;
	bool found;
	const char *pi = object_id(ev, ev->object, "id", "pi_");
	enum gala_error e = lock_charge(ev, "payment_intent", pi, &b, &ch, &found);
	if (e != GE_OK || !found)
		return e;
	const char *charge = object_id(ev, ev->object, "latest_charge", "ch_");
	if (is(ch.status, "succeeded") || is(ch.status, "refunded")) {
		/* Already known; the charge id may still be missing. */
		return ch.charge == NULL && charge != NULL ?
		    set_charge_status(ev->arena, ch.id, ch.status, charge) : GE_OK;
	}
	if ((e = set_charge_status(ev->arena, ch.id, "succeeded", charge)) != GE_OK)
		return e;
	if (b.status == BOOKING_PAYMENT_PENDING || b.status == BOOKING_ACCEPTED) {
		cJSON *m = event_meta(ev);
		cJSON_AddStringToObject(m, "payment_id", ch.id);
		return booking_transition(ev->cx, ev->arena, &b, BOOKING_PAYMENT_SUCCEEDED,
		    BOOKING_ACTOR_SYSTEM, NULL, m, &(struct refusal){ 0 });
	}
	/* Paid for a booking cancelled meanwhile: gala maintenance refunds it
	 * (charges_refund_orphans). */
	log_warn("gala.webhooks", "payment %s succeeded for booking %s, which is %s: "
	    "maintenance refunds it", ch.id, b.id, booking_status_name(b.status));
	return GE_OK;
}

/* payment_intent.payment_failed: the charge failed and the booking is
 * accepted again, ready for a new payment. Ignored once it succeeded. */
static enum gala_error on_payment_failed(const struct webhook_event *ev)
{
	struct booking b;
	struct money_row ch;
	bool found;
	const char *pi = object_id(ev, ev->object, "id", "pi_");
	enum gala_error e = lock_charge(ev, "payment_intent", pi, &b, &ch, &found);
	if (e != GE_OK || !found || !is(ch.status, "requires_payment"))
		return e;
	if ((e = set_charge_status(ev->arena, ch.id, "failed", NULL)) != GE_OK)
		return e;
	if (b.status != BOOKING_PAYMENT_PENDING)
		return GE_OK;
	cJSON *m = event_meta(ev);
	cJSON_AddStringToObject(m, "payment_id", ch.id);
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(ev->object, "last_payment_error");
	const char *code = stripe_str(err, "code");
	if (code != NULL)
		cJSON_AddStringToObject(m, "failure_code", code);
	return booking_transition(ev->cx, ev->arena, &b, BOOKING_PAYMENT_FAILED,
	    BOOKING_ACTOR_SYSTEM, NULL, m, &(struct refusal){ 0 });
}

/* charge.refunded: the charge is refunded and so is the booking, if it is
 * not already (a refund Gala made itself arrives here too). A refund made
 * outside Gala of a booking already paid out does not take the payout back
 * by itself: it is audited with "transfer_reversed": false for an operator
 * to decide. Partial refunds change no state. */
static enum gala_error on_charge_refunded(const struct webhook_event *ev)
{
	struct booking b;
	struct money_row ch, po;
	bool found;
	const char *charge = object_id(ev, ev->object, "id", "ch_");
	enum gala_error e = lock_charge(ev, "charge", charge, &b, &ch, &found);
	if (e == GE_OK && !found)
		e = lock_charge(ev, "payment_intent", object_id(ev, ev->object, "payment_intent", "pi_"),
		    &b, &ch, &found);
	if (e != GE_OK || !found)
		return e;
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev->object, "refunded"))) {
		log_warn("gala.webhooks", "charge %s of booking %s partly refunded (%lld of %lld); "
		    "no change", charge, b.id, stripe_int(ev->object, "amount_refunded", 0),
		    stripe_int(ev->object, "amount", 0));
		return GE_OK;
	}
	if ((e = charges_load_row(ev->arena, b.id, "service_payment", true, &po)) != GE_OK)
		return e;
	bool paid_out = po.res != NULL && is(po.status, "released");
	bool reversed = po.res != NULL && is(po.status, "reversed");
	if (!is(ch.status, "refunded")) {
		const cJSON *refunds = cJSON_GetObjectItemCaseSensitive(ev->object, "refunds");
		const char *refund = object_id(ev, cJSON_GetArrayItem(
		    cJSON_GetObjectItemCaseSensitive(refunds, "data"), 0), "id", "re_");
		const char *p[] = { ch.id, refund, charge };
		PGresult *res;
		enum db_status st = db_exec(ev->arena, &res, "UPDATE payments SET status = 'refunded', "
		    "stripe_refund_id = coalesce(stripe_refund_id, $2), "
		    "stripe_charge_id = coalesce(stripe_charge_id, $3), updated_at = now() "
		    "WHERE id = $1", 3, p);
		if (st != DB_OK)
			return db_error(st);
		cJSON *m = event_meta(ev);
		cJSON_AddStringToObject(m, "event_service_id", b.id);
		cJSON_AddStringToObject(m, "payment_id", ch.id);
		cJSON_AddNumberToObject(m, "amount_cents", (double)stripe_int(ev->object,
		    "amount_refunded", ch.amount_cents));
		cJSON_AddStringToObject(m, "currency", ch.currency);
		cJSON_AddBoolToObject(m, "transfer_reversed", reversed);
		cJSON_AddBoolToObject(m, "refund_by_gala", ch.refund_started);
		if (paid_out) {
			cJSON_AddBoolToObject(m, "paid_out", 1);
			log_error("gala.webhooks", "booking %s refunded at Stripe after its payout %s: "
			    "the transfer was not reversed; decide whether to reverse it", b.id,
			    po.transfer ? po.transfer : "");
		}
		st = audit_write(ev->cx, ev->arena, NULL, b.event_owner_id, "payment.refund",
		    "success", m);
		if (st != DB_OK)
			return db_error(st);
	}
	if (b.status == BOOKING_PAID || b.status == BOOKING_COMPLETED ||
	    b.status == BOOKING_RELEASED) {
		cJSON *m = event_meta(ev);
		cJSON_AddStringToObject(m, "payment_id", ch.id);
		cJSON_AddBoolToObject(m, "transfer_reversed", reversed);
		return booking_transition(ev->cx, ev->arena, &b, BOOKING_CHARGE_REFUNDED,
		    BOOKING_ACTOR_SYSTEM, NULL, m, &(struct refusal){ 0 });
	}
	return GE_OK;
}

/* ----------------------------------------------------------- accounts */

/* account.updated: whether the provider's connected account can receive
 * payouts. An event older than the last one applied is ignored. */
static enum gala_error on_account_updated(const struct webhook_event *ev)
{
	const char *acct = object_id(ev, ev->object, "id", "acct_");
	if (acct == NULL)
		return GE_OK;
	bool enabled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev->object, "payouts_enabled"));
	char created[24];
	snprintf(created, sizeof created, "%lld", ev->created);
	const char *p[] = { acct, enabled ? "true" : "false", created };
	PGresult *res;
	enum db_status st = db_exec(ev->arena, &res,
	    "UPDATE service_providers SET payouts_enabled = $2::boolean, "
	    "stripe_account_event_at = to_timestamp($3::bigint), updated_at = now() "
	    "WHERE stripe_account_id = $1 AND (stripe_account_event_at IS NULL "
	    "OR stripe_account_event_at <= to_timestamp($3::bigint))", 3, p);
	return st == DB_OK ? GE_OK : db_error(st);
}

/* customer.subscription.*: the event's object is the whole subscription,
 * so created, updated and deleted are one upsert that never goes back in
 * Stripe's time. */
static enum gala_error on_subscription_event(const struct webhook_event *ev)
{
	return subscriptions_apply_event(ev->arena, ev->object, ev->created);
}

/* The event types Gala acts on. */
static const struct webhook_route routes[] = {
	{ "payment_intent.succeeded", on_payment_succeeded },
	{ "payment_intent.payment_failed", on_payment_failed },
	{ "charge.refunded", on_charge_refunded },
	{ "account.updated", on_account_updated },
	{ "customer.subscription.created", on_subscription_event },
	{ "customer.subscription.updated", on_subscription_event },
	{ "customer.subscription.deleted", on_subscription_event },
};

static webhook_handler handler_for(const char *type)
{
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		if (strcmp(routes[i].type, type) == 0)
			return routes[i].handler;
	return NULL;
}

enum gala_error webhooks_process(struct svc_ctx *cx, const cJSON *event,
    struct webhook_outcome *out)
{
	arena_t *a = cx->arena;
	memset(out, 0, sizeof *out);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(event, "id");
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(event, "type");
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(event, "data");
	if (!cJSON_IsString(id) || !cJSON_IsString(type) || id->valuestring[0] == '\0' ||
	    strlen(id->valuestring) > 255 || type->valuestring[0] == '\0' ||
	    strlen(type->valuestring) > 255)
		return GE_INVALID_WEBHOOK_PAYLOAD;
	webhook_handler h = handler_for(type->valuestring);
	const cJSON *object = cJSON_GetObjectItemCaseSensitive(data, "object");
	if (h != NULL && !cJSON_IsObject(object))
		return GE_INVALID_WEBHOOK_PAYLOAD;
	out->ignored = h == NULL;
	struct webhook_event ev = {
		.cx = cx, .arena = a, .id = id->valuestring, .type = type->valuestring,
		.created = stripe_int(event, "created", 0), .object = object,
		.previous = cJSON_GetObjectItemCaseSensitive(data, "previous_attributes"),
	};
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	char created[24];
	snprintf(created, sizeof created, "%lld", ev.created);
	const char *p[] = { ev.id, ev.type, created };
	PGresult *res;
	/* A concurrent delivery of the same event waits here on the key until
	 * this transaction ends, then finds it and does nothing. */
	st = db_exec(a, &res, "INSERT INTO stripe_events (id, type, created) "
	    "VALUES ($1, $2, CASE WHEN $3::bigint > 0 THEN to_timestamp($3::bigint) END) "
	    "ON CONFLICT (id) DO NOTHING RETURNING id", 3, p);
	if (st != DB_OK) {
		db_rollback();
		return db_error(st);
	}
	if (PQntuples(res) == 0) {
		db_rollback();
		out->duplicate = true;
		return GE_OK;
	}
	/* An ignored type is recorded too: a redelivery of it is answered as
	 * a duplicate like any other event's. */
	enum gala_error e = h != NULL ? h(&ev) : GE_OK;
	if (e != GE_OK) {
		db_rollback();
		log_error("gala.webhooks", "%s %s not applied (%s); Stripe will deliver it again",
		    ev.type, ev.id, gala_error_code(e));
		return e == GE_DB_UNAVAILABLE ? e : GE_INTERNAL;
	}
	st = db_commit(a);
	return st == DB_OK ? GE_OK : db_error(st);
}

enum db_status webhooks_purge_events(arena_t *a, long long *count)
{
	PGresult *res;
	for (;;) {
		enum db_status st = db_exec(a, &res,
		    "DELETE FROM stripe_events WHERE id IN (SELECT id FROM stripe_events "
		    "WHERE received_at < now() - interval '30 days' LIMIT 1000)", 0, NULL);
		if (st != DB_OK)
			return st;
		long long n = strtoll(PQcmdTuples(res), NULL, 10);
		*count += n;
		if (n < 1000)
			return DB_OK;
	}
}
