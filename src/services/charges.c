#include "autoconf.h"

#include "services/charges.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "services/audit.h"
#include "core/log.h"
#include "services/session.h"
#include "services/bookings.h"
#include "services/payments.h"

enum gala_error charges_stripe_error(arena_t *a, const struct stripe_result *r,
    struct refusal *why)
{
	switch (r->outcome) {
	case STRIPE_OK:
		return GE_OK;
	case STRIPE_NOT_CONFIGURED:
		return GE_STRIPE_NOT_CONFIGURED;
	case STRIPE_REFUSED:
		/* Stripe's own words (they may name accounts, keys or limits)
		 * stay in the log of the call (stripe.c log_call); the client
		 * gets the request id to quote. */
		why->message = r->request_id[0] ? arena_printf(a, "the payment provider refused the "
		    "request (Stripe request %s)", r->request_id) :
		    "the payment provider refused the request";
		return GE_STRIPE_ERROR;
	case STRIPE_UNAVAILABLE:
	case STRIPE_AMBIGUOUS:
		why->message = "the payment provider could not be reached; retry later "
		    "(nothing is charged twice)";
		return GE_STRIPE_UNAVAILABLE;
	}
	return GE_INTERNAL;
}

/* PAYMENT_COLUMNS, then the money code's own columns. */
enum { MR_CHARGE = PAY__COLUMNS, MR_REFUND_STARTED, MR_REVERSAL, MR_IDLE_SECONDS };
#define MONEY_ROW_SELECT "SELECT " PAYMENT_COLUMNS ", p.stripe_charge_id, " \
	"p.refund_started_at IS NOT NULL, p.stripe_transfer_reversal_id, " \
	"floor(extract(epoch FROM now() - p.updated_at))::bigint FROM payments p " \
	"WHERE p.event_service_id = $1 AND p.payment_type = $2"

enum gala_error charges_load_row(arena_t *a, const char *event_service_id, const char *type,
    bool lock, struct money_row *out)
{
	const char *p[] = { event_service_id, type };
	PGresult *res;
	memset(out, 0, sizeof *out);
	enum db_status st = db_exec(a, &res, lock ? MONEY_ROW_SELECT " FOR UPDATE" :
	    MONEY_ROW_SELECT, 2, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1)
		return GE_OK;
	out->res = res;
	out->id = db_value(res, 0, PAY_ID);
	out->payee_id = db_value(res, 0, PAY_PAYEE_ID);
	out->amount_cents = db_int(res, 0, PAY_AMOUNT_CENTS);
	out->currency = db_value(res, 0, PAY_CURRENCY);
	out->status = db_value(res, 0, PAY_STATUS);
	out->payment_intent = db_value(res, 0, PAY_PAYMENT_INTENT);
	out->transfer = db_value(res, 0, PAY_TRANSFER);
	out->refund = db_value(res, 0, PAY_REFUND);
	out->attempt = (int)db_int(res, 0, PAY_ATTEMPT);
	out->charge = db_value(res, 0, MR_CHARGE);
	out->refund_started = db_bool(res, 0, MR_REFUND_STARTED);
	out->reversal = db_value(res, 0, MR_REVERSAL);
	out->idle_seconds = db_int(res, 0, MR_IDLE_SECONDS);
	return GE_OK;
}

static bool is(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

static enum gala_error refused(arena_t *a, enum gala_error e, const struct booking *b,
    const char *what, struct refusal *why)
{
	if (e == GE_INVALID_STATE)
		why->message = arena_printf(a, "the booking is %s: %s is not possible in that state",
		    booking_status_name(b->status), what);
	else if (e == GE_FORBIDDEN)
		why->message = arena_printf(a, "the booking is %s: you may not %s it",
		    booking_status_name(b->status), what);
	return e;
}

/* ---------------------------------------------------------------- pay */

/* The booking is payment_pending: the same payment, and the client secret
 * of its PaymentIntent (never stored: Stripe keeps it). */
static enum gala_error pay_again(struct svc_ctx *cx, const struct money_row *ch,
    cJSON **payment, const char **client_secret, struct refusal *why)
{
	arena_t *a = cx->arena;
	struct stripe_result r;
	const char *path = stripe_object_path(a, "payment_intents", "pi_", ch->payment_intent, NULL);
	if (stripe_call(a, "GET", path, NULL, 0, NULL, &r) != STRIPE_OK)
		return charges_stripe_error(a, &r, why);
	*client_secret = stripe_str(r.object, "client_secret");
	*payment = payment_json(ch->res, 0);
	return *client_secret != NULL ? GE_OK : GE_INTERNAL;
}

/* Before a new attempt replaces a PaymentIntent, the old one is cancelled
 * at Stripe, so that a customer can no longer complete it and be charged
 * for a payment Gala no longer follows. */
static enum gala_error cancel_old_intent(arena_t *a, const char *pi, struct refusal *why)
{
	struct stripe_result r, g;
	const char *key = arena_printf(a, "cancel_payment_intent:%s", pi);
	const char *path = stripe_object_path(a, "payment_intents", "pi_", pi, NULL);
	if (stripe_call(a, "POST", stripe_object_path(a, "payment_intents", "pi_", pi, "cancel"),
	    NULL, 0, key, &r) == STRIPE_OK)
		return GE_OK;
	if (r.outcome != STRIPE_REFUSED)
		return charges_stripe_error(a, &r, why);
	/* Refused: it is canceled already, or it went through meanwhile. */
	if (stripe_call(a, "GET", path, NULL, 0, NULL, &g) != STRIPE_OK)
		return charges_stripe_error(a, &g, why);
	const char *status = stripe_str(g.object, "status");
	if (is(status, "canceled"))
		return GE_OK;
	if (is(status, "succeeded") || is(status, "processing") || is(status, "requires_capture")) {
		why->message = "an earlier payment attempt for this booking went through; "
		    "the booking turns paid when Stripe confirms it";
		return GE_INVALID_STATE;
	}
	return charges_stripe_error(a, &r, why);
}

static enum gala_error create_intent(arena_t *a, const struct booking *b, int attempt,
    struct stripe_result *r)
{
	char amount[24], att[16];
	snprintf(amount, sizeof amount, "%lld", b->amount_cents);
	snprintf(att, sizeof att, "%d", attempt);
	/* Everything here is fixed by the booking and the attempt, so that a
	 * retry under the same key sends the same request. */
	const struct stripe_param params[] = {
		{ "amount", amount },
		{ "currency", b->currency },
		{ "automatic_payment_methods[enabled]", "true" },
		{ "transfer_group", b->id },
		{ "description", arena_printf(a, "Gala booking %s", b->id) },
		{ "metadata[event_service_id]", b->id },
		{ "metadata[event_id]", b->event_id },
		{ "metadata[service_provider_id]", b->service_provider_id },
		{ "metadata[payer_id]", b->event_owner_id },
		{ "metadata[attempt]", att },
	};
	const char *key = attempt == 1 ? arena_printf(a, "payment_intent:%s", b->id) :
	    arena_printf(a, "payment_intent:%s:%d", b->id, attempt);
	stripe_call(a, "POST", "/v1/payment_intents", params, sizeof params / sizeof params[0],
	    key, r);
	return r->outcome == STRIPE_OK && stripe_str(r->object, "id") != NULL &&
	    stripe_str(r->object, "client_secret") != NULL ? GE_OK : GE_STRIPE_ERROR;
}

enum gala_error charges_pay(struct svc_ctx *cx, const char *event_service_id,
    cJSON **payment, const char **client_secret, struct refusal *why)
{
	arena_t *a = cx->arena;
	if (!stripe_configured())
		return GE_STRIPE_NOT_CONFIGURED;
	struct booking b;
	enum gala_error e = bookings_load(a, event_service_id, false, &b);
	if (e != GE_OK)
		return e;
	unsigned actor = booking_actor(&b, cx->caller);
	if (actor == 0)
		return GE_NOT_FOUND;
	if (!(actor & BOOKING_ACTOR_OWNER)) {
		why->message = "only the event's owner pays for its bookings";
		return GE_FORBIDDEN;
	}
	const struct session_profile *me = session_profile(cx->caller);
	if (me == NULL)
		return GE_DB_UNAVAILABLE;
	if (!me->email_verified)
		return GE_EMAIL_NOT_VERIFIED;
	struct money_row ch;
	if ((e = charges_load_row(a, b.id, "customer_payment", false, &ch)) != GE_OK)
		return e;
	if (b.status == BOOKING_PAYMENT_PENDING && ch.res != NULL && ch.payment_intent != NULL)
		return pay_again(cx, &ch, payment, client_secret, why);
	enum booking_status to;
	if ((e = booking_decide(b.status, BOOKING_PAY, actor, &to)) != GE_OK)
		return refused(a, e, &b, "pay", why);
	int attempt = 1;
	if (ch.res != NULL) {
		if (!is(ch.status, "failed") && !is(ch.status, "requires_payment")) {
			why->message = arena_printf(a, "the booking's payment is %s already", ch.status);
			return GE_INVALID_STATE;
		}
		if (ch.payment_intent != NULL &&
		    (e = cancel_old_intent(a, ch.payment_intent, why)) != GE_OK)
			return e;
		attempt = ch.attempt + 1;
	}

	struct stripe_result r;
	if (create_intent(a, &b, attempt, &r) != GE_OK)
		return r.outcome == STRIPE_OK ? GE_INTERNAL : charges_stripe_error(a, &r, why);
	const char *pi = stripe_str(r.object, "id");
	*client_secret = stripe_str(r.object, "client_secret");

	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	if ((e = bookings_load(a, event_service_id, true, &b)) != GE_OK)
		return db_fail(e);
	if (b.status == BOOKING_PAYMENT_PENDING) {
		/* A concurrent pay won; it used the same key, hence the same
		 * PaymentIntent, unless it was another attempt. */
		db_rollback();
		if ((e = charges_load_row(a, b.id, "customer_payment", false, &ch)) != GE_OK)
			return e;
		if (ch.res == NULL || ch.payment_intent == NULL)
			return GE_CONFLICT;
		if (strcmp(ch.payment_intent, pi) != 0)
			return pay_again(cx, &ch, payment, client_secret, why);
		*payment = payment_json(ch.res, 0);
		return GE_OK;
	}
	char amount[24], att[16];
	snprintf(amount, sizeof amount, "%lld", b.amount_cents);
	snprintf(att, sizeof att, "%d", attempt);
	const char *p[] = { b.id, b.event_owner_id, b.provider_user_id, amount, b.currency, pi, att };
	PGresult *res;
	st = db_exec(a, &res,
	    "INSERT INTO payments AS p (event_service_id, payment_type, payer_id, payee_id, "
	    "amount_cents, currency, status, stripe_payment_intent_id, attempt) "
	    "VALUES ($1, 'customer_payment', $2, $3, $4::bigint, $5, 'requires_payment', $6, $7::int) "
	    "ON CONFLICT (event_service_id, payment_type) DO UPDATE SET status = 'requires_payment', "
	    "stripe_payment_intent_id = EXCLUDED.stripe_payment_intent_id, stripe_charge_id = NULL, "
	    "attempt = EXCLUDED.attempt, updated_at = now() "
	    "WHERE p.status IN ('requires_payment', 'failed') RETURNING " PAYMENT_COLUMNS, 7, p);
	if (st != DB_OK)
		return db_fail(db_error(st));
	if (PQntuples(res) != 1) {
		why->message = "the booking's payment changed meanwhile";
		return db_fail(GE_INVALID_STATE);
	}
	cJSON *meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "payment_id", db_value(res, 0, 0));
	cJSON_AddStringToObject(meta, "stripe_payment_intent_id", pi);
	cJSON_AddNumberToObject(meta, "attempt", attempt);
	actor = booking_actor(&b, cx->caller);
	if ((e = booking_transition(cx, a, &b, BOOKING_PAY, actor, cx->caller->id, meta, why)) != GE_OK) {
		db_rollback();
		/* Nobody will pay this one: the booking moved on (cancelled). */
		cancel_old_intent(a, pi, &(struct refusal){ 0 });
		return e;
	}
	if ((st = db_commit(a)) != DB_OK)
		return db_error(st);
	*payment = payment_json(res, 0);
	return GE_OK;
}

/* ------------------------------------------------------------ refunds */

static enum gala_error clear_refund_started(arena_t *a, const char *payment_id)
{
	const char *p[] = { payment_id };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "UPDATE payments SET refund_started_at = NULL, "
	    "updated_at = now() WHERE id = $1 AND status = 'succeeded'", 1, p);
	return st == DB_OK ? GE_OK : db_error(st);
}

/* Phase 1: under the booking's lock, check who may refund it from here and
 * mark the charge as being refunded (no payout may start from now on). */
static enum gala_error refund_begin(struct svc_ctx *cx, const char *id,
    enum booking_action action, struct booking *b, struct money_row *ch,
    struct money_row *po, struct refusal *why)
{
	arena_t *a = cx->arena;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	enum gala_error e = bookings_load(a, id, true, b);
	if (e != GE_OK)
		return db_fail(e);
	unsigned actor = booking_actor(b, cx->caller);
	if (actor == 0)
		return db_fail(GE_NOT_FOUND);
	enum booking_status to;
	if ((e = booking_decide(b->status, action, actor, &to)) != GE_OK)
		return db_fail(refused(a, e, b, booking_action_name(action), why));
	if (to != BOOKING_REFUNDED)
		return db_fail(refused(a, GE_INVALID_STATE, b, booking_action_name(action), why));
	if ((e = charges_load_row(a, b->id, "customer_payment", true, ch)) != GE_OK ||
	    (e = charges_load_row(a, b->id, "service_payment", true, po)) != GE_OK)
		return db_fail(e);
	if (ch->res == NULL || (!is(ch->status, "succeeded") && !is(ch->status, "refunded"))) {
		why->message = "the booking has no succeeded charge to refund";
		return db_fail(GE_INVALID_STATE);
	}
	if (po->res != NULL && is(po->status, "payout_started")) {
		why->message = "a payout of this booking is in progress; refund it once it is done";
		return db_fail(GE_PAYOUT_IN_PROGRESS);
	}
	const char *p[] = { ch->id };
	PGresult *res;
	st = db_exec(a, &res, "UPDATE payments SET refund_started_at = "
	    "coalesce(refund_started_at, now()), updated_at = now() WHERE id = $1", 1, p);
	if (st != DB_OK)
		return db_fail(db_error(st));
	st = db_commit(a);
	return st == DB_OK ? GE_OK : db_error(st);
}

/* Phase 2a: a released payout is taken back from the provider first. */
static enum gala_error reverse_payout(struct svc_ctx *cx, const struct booking *b,
    const struct money_row *ch, const struct money_row *po, struct refusal *why)
{
	arena_t *a = cx->arena;
	struct stripe_result r;
	const struct stripe_param params[] = {
		{ "metadata[event_service_id]", b->id },
	};
	const char *path = stripe_object_path(a, "transfers", "tr_", po->transfer, "reversals");
	const char *key = arena_printf(a, "reverse_transfer:%s", b->id);
	if (stripe_call(a, "POST", path, params, 1, key, &r) != STRIPE_OK) {
		if (r.outcome == STRIPE_REFUSED) {
			/* Nothing was taken back: the booking stays released. */
			if (db_begin(a) == DB_OK && clear_refund_started(a, ch->id) == GE_OK)
				db_commit(a);
			db_rollback();
		}
		return charges_stripe_error(a, &r, why);
	}
	const char *p[] = { po->id, stripe_str(r.object, "id") };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "UPDATE payments SET status = 'reversed', "
	    "stripe_transfer_reversal_id = $2, updated_at = now() "
	    "WHERE id = $1 AND status = 'released'", 2, p);
	return st == DB_OK ? GE_OK : db_error(st);
}

/* Opens a transaction and loads, locked, the booking and its charge; on
 * failure none is left open. */
static enum gala_error booking_charge_begin(arena_t *a, const char *id, struct booking *b,
    struct money_row *ch)
{
	*ch = (struct money_row){ 0 };
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	enum gala_error e = bookings_load(a, id, true, b);
	if (e == GE_OK)
		e = charges_load_row(a, id, "customer_payment", true, ch);
	return e == GE_OK ? GE_OK : db_fail(e);
}

/* Phase 3: the charge and the booking are refunded, in one transaction
 * with their audit rows. The charge.refunded webhook may have done it
 * first; then there is nothing left to record. */
static enum gala_error refund_finish(struct svc_ctx *cx, const char *id, const char *refund_id,
    bool transfer_reversed, cJSON **out, struct refusal *why)
{
	arena_t *a = cx->arena;
	struct booking b;
	struct money_row ch;
	enum gala_error e = booking_charge_begin(a, id, &b, &ch);
	if (e != GE_OK)
		return e;
	const char *actor = cx->caller != NULL ? cx->caller->id : NULL;
	const char *p[] = { ch.id, refund_id };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "UPDATE payments SET status = 'refunded', "
	    "stripe_refund_id = coalesce($2, stripe_refund_id), updated_at = now() "
	    "WHERE id = $1 AND status <> 'refunded' RETURNING id", 2, p);
	if (st != DB_OK)
		return db_fail(db_error(st));
	if (PQntuples(res) == 1) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "event_service_id", b.id);
		cJSON_AddStringToObject(m, "payment_id", ch.id);
		if (refund_id != NULL)
			cJSON_AddStringToObject(m, "stripe_refund_id", refund_id);
		cJSON_AddNumberToObject(m, "amount_cents", (double)ch.amount_cents);
		cJSON_AddStringToObject(m, "currency", ch.currency);
		cJSON_AddBoolToObject(m, "transfer_reversed", transfer_reversed);
		st = audit_write(cx, a, actor, b.event_owner_id, "payment.refund", "success", m);
		if (st != DB_OK)
			return db_fail(db_error(st));
	}
	if (b.status != BOOKING_REFUNDED) {
		/* Who may refund was decided in phase 1; the charge is refunded
		 * now, whatever happened to the booking since (a complete). */
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "payment_id", ch.id);
		cJSON_AddBoolToObject(m, "transfer_reversed", transfer_reversed);
		e = booking_transition(cx, a, &b, BOOKING_CHARGE_REFUNDED, BOOKING_ACTOR_SYSTEM,
		    actor, m, why);
		if (e != GE_OK)
			return db_fail(e);
	}
	if ((st = db_commit(a)) != DB_OK)
		return db_error(st);
	*out = booking_json(&b);
	return GE_OK;
}

/* Phases 2 and 3 of a refund begun (refund_begin): the payout taken back
 * when it was released, the charge refunded, both recorded. Every Stripe
 * call goes under the booking's one key for it, so that a retry, or
 * maintenance finishing the refund, makes the very same reversal and
 * refund. */
static enum gala_error refund_carry_out(struct svc_ctx *cx, const struct booking *bk,
    const struct money_row *charge, const struct money_row *payout, cJSON **out,
    struct refusal *why)
{
	arena_t *a = cx->arena;
	const struct booking b = *bk;
	const struct money_row ch = *charge, po = *payout;
	enum gala_error e;
	bool reversed = po.res != NULL && is(po.status, "reversed");
	if (po.res != NULL && is(po.status, "released")) {
		if ((e = reverse_payout(cx, &b, &ch, &po, why)) != GE_OK)
			return e;
		reversed = true;
	}
	const char *refund_id = ch.refund;
	if (!is(ch.status, "refunded")) {
		struct stripe_result r;
		/* No amount: Stripe refunds what is left of the charge, and the one
		 * key makes every path (cancel, admin, a retry) the same refund. */
		const struct stripe_param params[] = {
			{ "payment_intent", ch.payment_intent },
			{ "reason", "requested_by_customer" },
			{ "metadata[event_service_id]", b.id },
		};
		const char *key = arena_printf(a, "refund:%s", b.id);
		if (stripe_call(a, "POST", "/v1/refunds", params, 3, key, &r) == STRIPE_OK) {
			refund_id = stripe_str(r.object, "id");
		} else if (r.outcome == STRIPE_REFUSED &&
		    strcmp(r.error_code, "charge_already_refunded") == 0) {
			/* Refunded outside this call (the dashboard): the same end. */
			refund_id = NULL;
		} else {
			if (r.outcome == STRIPE_REFUSED && !reversed &&
			    db_begin(a) == DB_OK && clear_refund_started(a, ch.id) == GE_OK)
				db_commit(a);
			db_rollback();
			if (r.outcome == STRIPE_REFUSED && reversed)
				log_error("gala.payments", "refund of booking %s refused after its "
				    "payout was reversed: %s", b.id, r.message);
			return charges_stripe_error(a, &r, why);
		}
	}
	return refund_finish(cx, b.id, refund_id, reversed, out, why);
}

static enum gala_error refund_booking(struct svc_ctx *cx, const char *id,
    enum booking_action action, cJSON **out, struct refusal *why)
{
	if (!stripe_configured())
		return GE_STRIPE_NOT_CONFIGURED;
	struct booking b;
	struct money_row ch = { 0 }, po = { 0 };
	enum gala_error e = refund_begin(cx, id, action, &b, &ch, &po, why);
	if (e != GE_OK)
		return e;
	return refund_carry_out(cx, &b, &ch, &po, out, why);
}

/* ------------------------------------------------- refunds left begun */

/* Loads, under the booking's lock, a refund begun and not finished; *due
 * is false when it moved on meanwhile (finished, or its begin undone). */
static enum gala_error started_refund_load(arena_t *a, const char *id, struct booking *b,
    struct money_row *ch, struct money_row *po, bool *due)
{
	*due = false;
	enum gala_error e = booking_charge_begin(a, id, b, ch);
	if (e != GE_OK)
		return e;
	if ((e = charges_load_row(a, id, "service_payment", true, po)) != GE_OK)
		return db_fail(e);
	*due = ch->res != NULL && is(ch->status, "succeeded") && ch->refund_started &&
	    (b->status == BOOKING_PAID || b->status == BOOKING_COMPLETED ||
	    b->status == BOOKING_RELEASED) &&
	    (po->res == NULL || !is(po->status, "payout_started"));
	enum db_status st = db_commit(a);
	return st == DB_OK ? GE_OK : db_error(st);
}

enum db_status charges_finish_started_refunds(arena_t *a, long long *count)
{
	if (!stripe_configured())
		return DB_OK;
	char grace[16];
	snprintf(grace, sizeof grace, "%d", REFUND_STARTED_GRACE_MINUTES);
	const char *p[] = { grace };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "SELECT p.event_service_id FROM payments p "
	    "JOIN event_services es ON es.id = p.event_service_id "
	    "WHERE p.payment_type = 'customer_payment' AND p.status = 'succeeded' "
	    "AND p.refund_started_at < now() - make_interval(mins => $1::int) "
	    "AND es.status IN ('paid', 'completed', 'released') "
	    "ORDER BY p.refund_started_at LIMIT 100", 1, p);
	if (st != DB_OK)
		return st;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *id = db_value(res, i, 0);
		struct booking b;
		struct money_row ch = { 0 }, po = { 0 };
		bool due;
		enum gala_error e = started_refund_load(a, id, &b, &ch, &po, &due);
		if (e == GE_DB_UNAVAILABLE)
			return DB_UNAVAILABLE;
		if (e != GE_OK || !due)
			continue;
		struct svc_ctx system = { .arena = a };
		struct refusal why = { 0 };
		cJSON *booking = NULL;
		e = refund_carry_out(&system, &b, &ch, &po, &booking, &why);
		cJSON_Delete(booking);
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "event_service_id", id);
		cJSON_AddStringToObject(f, "result", e == GE_OK ? "refunded" :
		    e == GE_STRIPE_ERROR ? "refused by Stripe" : "not finished; retried at the next run");
		if (why.message != NULL)
			cJSON_AddStringToObject(f, "detail", why.message);
		log_emit(e == GE_OK ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, "gala.payments",
		    "refund left begun", f);
		if (e == GE_OK)
			(*count)++;
		else if (e == GE_DB_UNAVAILABLE)
			return DB_UNAVAILABLE;
	}
	return DB_OK;
}

/* ------------------------------------------------------------ orphans */

static enum gala_error orphan_claim(arena_t *a, const char *id, struct booking *b,
    struct money_row *ch, bool *claimed)
{
	*claimed = false;
	enum gala_error e = booking_charge_begin(a, id, b, ch);
	if (e != GE_OK)
		return e;
	if (b->status != BOOKING_CANCELLED || ch->res == NULL || !is(ch->status, "succeeded")) {
		db_rollback();
		return GE_OK;
	}
	const char *p[] = { ch->id };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "UPDATE payments SET refund_started_at = "
	    "coalesce(refund_started_at, now()) WHERE id = $1", 1, p);
	if (st == DB_OK)
		st = db_commit(a);
	if (st != DB_OK)
		return db_fail(db_error(st));
	*claimed = true;
	return GE_OK;
}

static enum gala_error orphan_refunded(arena_t *a, const struct booking *b,
    const struct money_row *ch, const char *refund_id)
{
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	const char *p[] = { ch->id, refund_id };
	PGresult *res;
	st = db_exec(a, &res, "UPDATE payments SET status = 'refunded', "
	    "stripe_refund_id = coalesce($2, stripe_refund_id), updated_at = now() "
	    "WHERE id = $1 AND status = 'succeeded' RETURNING id", 2, p);
	if (st == DB_OK && PQntuples(res) == 1) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "event_service_id", b->id);
		cJSON_AddStringToObject(m, "payment_id", ch->id);
		if (refund_id != NULL)
			cJSON_AddStringToObject(m, "stripe_refund_id", refund_id);
		cJSON_AddNumberToObject(m, "amount_cents", (double)ch->amount_cents);
		cJSON_AddStringToObject(m, "currency", ch->currency);
		cJSON_AddStringToObject(m, "reason", "paid after the booking was cancelled");
		st = audit_write(NULL, a, NULL, b->event_owner_id, "payment.refund", "success", m);
	}
	if (st == DB_OK)
		st = db_commit(a);
	if (st != DB_OK)
		return db_fail(db_error(st));
	return GE_OK;
}

enum db_status charges_refund_orphans(arena_t *a, long long *count)
{
	if (!stripe_configured())
		return DB_OK;
	PGresult *res;
	enum db_status st = db_exec(a, &res, "SELECT p.event_service_id FROM payments p "
	    "JOIN event_services es ON es.id = p.event_service_id "
	    "WHERE p.payment_type = 'customer_payment' AND p.status = 'succeeded' "
	    "AND es.status = 'cancelled' ORDER BY p.updated_at LIMIT 100", 0, NULL);
	if (st != DB_OK)
		return st;
	for (int i = 0; i < PQntuples(res); i++) {
		struct booking b;
		struct money_row ch;
		bool claimed;
		enum gala_error e = orphan_claim(a, db_value(res, i, 0), &b, &ch, &claimed);
		if (e == GE_DB_UNAVAILABLE)
			return DB_UNAVAILABLE;
		if (e != GE_OK || !claimed)
			continue;
		/* The very request every refund of this booking makes. */
		const struct stripe_param params[] = {
			{ "payment_intent", ch.payment_intent },
			{ "reason", "requested_by_customer" },
			{ "metadata[event_service_id]", b.id },
		};
		struct stripe_result r;
		const char *key = arena_printf(a, "refund:%s", b.id);
		const char *refund_id = NULL;
		if (stripe_call(a, "POST", "/v1/refunds", params, 3, key, &r) == STRIPE_OK)
			refund_id = stripe_str(r.object, "id");
		else if (!(r.outcome == STRIPE_REFUSED &&
		    strcmp(r.error_code, "charge_already_refunded") == 0)) {
			log_error("gala.payments", "charge %s of cancelled booking %s not refunded "
			    "(%s); retried at the next run", ch.id, b.id, r.message);
			continue;
		}
		if ((e = orphan_refunded(a, &b, &ch, refund_id)) == GE_OK)
			(*count)++;
		else if (e == GE_DB_UNAVAILABLE)
			return DB_UNAVAILABLE;
	}
	return DB_OK;
}

enum gala_error charges_refund(struct svc_ctx *cx, const char *event_service_id,
    cJSON **booking, struct refusal *why)
{
	/* The one admin-only action the route table cannot mark (others get
	 * 404 or 403 from the booking machine): ADMIN_MFA_REQUIRED as in the
	 * pipeline's auth stage. */
	if (session_is_admin(cx->caller) && gala_config->admin_mfa_required &&
	    !cx->caller->claims.otp)
		return GE_MFA_REQUIRED;
	return refund_booking(cx, event_service_id, BOOKING_REFUND, booking, why);
}

enum gala_error charges_cancel_paid(struct svc_ctx *cx, const char *event_service_id,
    cJSON **booking, struct refusal *why)
{
	return refund_booking(cx, event_service_id, BOOKING_CANCEL, booking, why);
}
