#include "autoconf.h"

#include "services/payouts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/stripe.h"
#include "services/audit.h"
#include "core/config.h"
#include "core/log.h"
#include "db/db.h"
#include "services/session.h"
#include "services/bookings.h"
#include "services/charges.h"
#include "services/payments.h"

static bool is(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

/* What phase 2 and 3 need, read under the booking's lock in phase 1. */
struct payout_job {
	struct svc_ctx *cx;        /* NULL for gala maintenance */
	const char *booking_id;
	const char *payout_id;
	const char *payee_id;
	int attempt;
	const char *destination;    /* the provider's stripe_account_id */
	long long net_cents;
	const char *currency;
	const char *charge;         /* the source_transaction; NULL until known */
	const char *charge_payment_id;
	const char *payment_intent;
	bool fresh;                 /* nothing was ever sent under this attempt's key */
	unsigned actor;             /* BOOKING_ACTOR_* of whoever releases */
	const char *actor_user_id;  /* NULL for the system */
};

static const char *payout_key(arena_t *a, const struct payout_job *j)
{
	return j->attempt <= 1 ? arena_printf(a, "release_payment:%s", j->booking_id) :
	    arena_printf(a, "release_payment:%s:%d", j->booking_id, j->attempt);
}

/* Phase 3, success: payout released with its transfer, booking released,
 * both audit rows, one transaction. */
static enum gala_error record_released(arena_t *a, const struct payout_job *j,
    const char *transfer_id, bool adopted, cJSON **payment, bool *already,
    struct refusal *why)
{
	struct booking b;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	enum gala_error e = bookings_load(a, j->booking_id, true, &b);
	if (e != GE_OK)
		return db_fail(e);
	const char *p[] = { j->payout_id, transfer_id };
	PGresult *res;
	st = db_exec(a, &res, "UPDATE payments p SET status = 'released', stripe_transfer_id = $2, "
	    "updated_at = now() WHERE p.id = $1 AND p.status = 'payout_started' "
	    "RETURNING " PAYMENT_COLUMNS, 2, p);
	if (st != DB_OK)
		return db_fail(db_error(st));
	if (PQntuples(res) != 1) {
		/* Another completer (a release after 60 s, maintenance) finished
		 * the same transfer first. */
		struct money_row po;
		db_rollback();
		if ((e = charges_load_row(a, j->booking_id, "service_payment", false, &po)) != GE_OK)
			return e;
		if (po.res == NULL || !is(po.status, "released")) {
			log_error("gala.payouts", "payout %s of booking %s vanished after transfer %s",
			    j->payout_id, j->booking_id, transfer_id ? transfer_id : "(none)");
			return GE_INTERNAL;
		}
		*payment = payment_json(po.res, 0);
		*already = true;
		return GE_OK;
	}
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "event_service_id", j->booking_id);
	cJSON_AddStringToObject(m, "payment_id", j->payout_id);
	if (transfer_id != NULL)
		cJSON_AddStringToObject(m, "stripe_transfer_id", transfer_id);
	cJSON_AddStringToObject(m, "destination", j->destination);
	cJSON_AddNumberToObject(m, "amount_cents", (double)j->net_cents);
	cJSON_AddStringToObject(m, "currency", j->currency);
	cJSON_AddNumberToObject(m, "attempt", j->attempt);
	cJSON_AddStringToObject(m, "idempotency_key", payout_key(a, j));
	if (adopted)
		cJSON_AddBoolToObject(m, "found_by_transfer_group", 1);
	st = audit_write(j->cx, a, j->actor_user_id, j->payee_id, "payment.release", "success", m);
	if (st != DB_OK)
		return db_fail(db_error(st));
	if (b.status == BOOKING_COMPLETED) {
		cJSON *bm = cJSON_CreateObject();
		cJSON_AddStringToObject(bm, "payment_id", j->payout_id);
		if (transfer_id != NULL)
			cJSON_AddStringToObject(bm, "stripe_transfer_id", transfer_id);
		e = booking_transition(j->cx, a, &b, BOOKING_RELEASE, j->actor, j->actor_user_id, bm,
		    why);
		if (e != GE_OK)
			return db_fail(e);
	}
	if ((st = db_commit(a)) != DB_OK)
		return db_error(st);
	*payment = payment_json(res, 0);
	*already = false;
	return GE_OK;
}

/* Phase 3, definite refusal: the payout row goes, the booking stays
 * completed; counted when Stripe holds the refusal under the key. */
static enum gala_error rollback_payout(arena_t *a, const struct payout_job *j, bool count,
    const struct stripe_result *r)
{
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	const char *p[] = { j->payout_id }, *q[] = { j->booking_id };
	PGresult *res;
	st = db_exec(a, &res, "DELETE FROM payments WHERE id = $1 AND status = 'payout_started'",
	    1, p);
	if (st == DB_OK && count)
		st = db_exec(a, &res, "UPDATE event_services SET payout_failures = payout_failures + 1 "
		    "WHERE id = $1", 1, q);
	if (st != DB_OK)
		return db_fail(db_error(st));
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "event_service_id", j->booking_id);
	cJSON_AddStringToObject(m, "destination", j->destination);
	cJSON_AddNumberToObject(m, "amount_cents", (double)j->net_cents);
	cJSON_AddNumberToObject(m, "attempt", j->attempt);
	cJSON_AddStringToObject(m, "idempotency_key", payout_key(a, j));
	cJSON_AddStringToObject(m, "stripe_error_type", r->error_type);
	cJSON_AddStringToObject(m, "stripe_error_code", r->error_code);
	cJSON_AddStringToObject(m, "reason", r->message);
	st = audit_write(j->cx, a, j->actor_user_id, j->payee_id, "payment.release", "failure", m);
	if (st != DB_OK)
		return db_fail(db_error(st));
	st = db_commit(a);
	return st == DB_OK ? GE_OK : db_error(st);
}

static enum gala_error unconfirmed(struct refusal *why)
{
	why->message = "the payout could not be confirmed with Stripe; it stays in progress and "
	    "is completed by a later release or by maintenance, never paid twice";
	return GE_PAYOUT_UNCONFIRMED;
}

/* A transfer of this booking that Stripe already has, found by its
 * transfer_group: the attempt in flight did go through. */
static enum gala_error find_transfer(arena_t *a, const struct payout_job *j, const char **found)
{
	struct stripe_result r;
	const struct stripe_param q[] = {
		{ "transfer_group", j->booking_id },
		{ "limit", "100" },
	};
	*found = NULL;
	if (stripe_call(a, "GET", "/v1/transfers", q, 2, NULL, &r) != STRIPE_OK)
		return GE_PAYOUT_UNCONFIRMED;
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(r.object, "data")) {
		if (is(stripe_str(t, "destination"), j->destination)) {
			*found = stripe_str(t, "id");
			return GE_OK;
		}
	}
	return GE_OK;
}

/* The charge a transfer may draw on before the funds settle. */
static enum gala_error fetch_charge(arena_t *a, struct payout_job *j, struct stripe_result *r)
{
	const char *path = stripe_object_path(a, "payment_intents", "pi_", j->payment_intent, NULL);
	if (stripe_call(a, "GET", path, NULL, 0, NULL, r) != STRIPE_OK)
		return GE_STRIPE_UNAVAILABLE;
	j->charge = stripe_str(r->object, "latest_charge");
	if (j->charge == NULL)
		return GE_INTERNAL;
	const char *p[] = { j->charge_payment_id, j->charge };
	PGresult *res;
	db_exec(a, &res, "UPDATE payments SET stripe_charge_id = $2 "
	    "WHERE id = $1 AND stripe_charge_id IS NULL", 2, p);
	return GE_OK;
}

/* Phases 2 and 3. */
static enum gala_error payout_run(arena_t *a, struct payout_job *j, cJSON **payment,
    bool *already, struct refusal *why)
{
	struct stripe_result r;
	enum gala_error e;
	if (!j->fresh) {
		/* Always looked up, whatever the age: after 24 hours Stripe has
		 * forgotten the key and only this stands between us and a
		 * second transfer. */
		const char *found;
		if (find_transfer(a, j, &found) != GE_OK)
			return unconfirmed(why);
		if (found != NULL)
			return record_released(a, j, found, true, payment, already, why);
	}
	if (j->net_cents == 0)
		return record_released(a, j, NULL, false, payment, already, why);
	if (j->charge == NULL && fetch_charge(a, j, &r) != GE_OK) {
		if (!j->fresh)
			return unconfirmed(why);
		if ((e = rollback_payout(a, j, false, &r)) != GE_OK)
			return e;
		return r.outcome == STRIPE_OK ? GE_INTERNAL : charges_stripe_error(a, &r, why);
	}
	char amount[24];
	snprintf(amount, sizeof amount, "%lld", j->net_cents);
	/* Only what the booking fixes: a retry under the same key must send
	 * the very same request. */
	const struct stripe_param params[] = {
		{ "amount", amount },
		{ "currency", j->currency },
		{ "destination", j->destination },
		{ "source_transaction", j->charge },
		{ "transfer_group", j->booking_id },
		{ "description", arena_printf(a, "Gala payout for booking %s", j->booking_id) },
		{ "metadata[event_service_id]", j->booking_id },
	};
	stripe_call(a, "POST", "/v1/transfers", params, sizeof params / sizeof params[0],
	    payout_key(a, j), &r);
	switch (r.outcome) {
	case STRIPE_OK:
		return record_released(a, j, stripe_str(r.object, "id"), false, payment, already, why);
	case STRIPE_REFUSED:
		/* A key reused with other parameters says nothing about the
		 * transfer made under it: not a refusal of this payout. */
		if (strcmp(r.error_type, "idempotency_error") == 0)
			return unconfirmed(why);
		if ((e = rollback_payout(a, j, true, &r)) != GE_OK)
			return e;
		return charges_stripe_error(a, &r, why);
	case STRIPE_UNAVAILABLE:
		if (!j->fresh)
			return unconfirmed(why);
		if ((e = rollback_payout(a, j, false, &r)) != GE_OK)
			return e;
		return charges_stripe_error(a, &r, why);
	case STRIPE_AMBIGUOUS:
		return unconfirmed(why);
	case STRIPE_NOT_CONFIGURED:
		return GE_STRIPE_NOT_CONFIGURED;
	}
	return GE_INTERNAL;
}

/* Fills the job of a locked booking whose payout row is po and charge ch. */
static void job_fill(struct payout_job *j, const struct booking *b, const struct money_row *po,
    const struct money_row *ch)
{
	j->booking_id = b->id;
	j->payout_id = po->id;
	j->payee_id = po->payee_id;
	j->attempt = po->attempt;
	j->destination = b->provider_stripe_account_id;
	j->net_cents = po->amount_cents;
	j->currency = po->currency;
	j->charge = ch->charge;
	j->charge_payment_id = ch->id;
	j->payment_intent = ch->payment_intent;
}

/* A stuck payout is claimed by touching its row under the booking's lock:
 * for the next PAYOUT_IN_PROGRESS_SECONDS every other completer sees it in
 * progress. */
static enum gala_error claim(arena_t *a, const char *payout_id)
{
	const char *p[] = { payout_id };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "UPDATE payments SET updated_at = now() WHERE id = $1",
	    1, p);
	return st == DB_OK ? GE_OK : db_error(st);
}

/* Phase 1 of a new payout: the row, committed by the caller. */
/* A payout waits until the event is over (ends_at, else starts_at) plus
 * PAYOUT_HOLD_HOURS: the customer's time to dispute what was delivered.
 * GE_PAYOUT_ON_HOLD with why->available_at until then. */
static enum gala_error hold_check(arena_t *a, const struct booking *b, struct refusal *why)
{
	char hours[16];
	snprintf(hours, sizeof hours, "%d", gala_config->payout_hold_hours);
	const char *p[] = { b->event_id, hours };
	enum { HOLD_UNTIL, HOLD_ON };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "SELECT " SQL_TS("h.until") ", h.until > now() FROM "
	    "(SELECT coalesce(ends_at, starts_at) + make_interval(hours => $2::int) AS until "
	    "FROM events WHERE id = $1) h", 2, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1 || !db_bool(res, 0, HOLD_ON))
		return GE_OK;
	char t[DB_TIME_LEN];
	why->available_at = arena_strdup(a, db_time(res, 0, HOLD_UNTIL, t));
	why->message = arena_printf(a, "the payout is on hold until %s (the event's end plus "
	    "%d hours)", why->available_at, gala_config->payout_hold_hours);
	return GE_PAYOUT_ON_HOLD;
}

static enum gala_error start_payout(arena_t *a, const struct booking *b,
    const struct money_row *ch, struct money_row *po, struct refusal *why)
{
	if (ch->res == NULL || !is(ch->status, "succeeded")) {
		why->message = "the booking's charge has not succeeded";
		return GE_INVALID_STATE;
	}
	if (ch->refund_started) {
		why->message = "the booking is being refunded";
		return GE_INVALID_STATE;
	}
	if (b->provider_stripe_account_id == NULL) {
		why->message = "the provider has not connected a Stripe account yet "
		    "(POST /api/providers/{id}/stripe-onboarding); no payout was attempted";
		return GE_ONBOARDING_REQUIRED;
	}
	enum gala_error e = hold_check(a, b, why);
	if (e != GE_OK)
		return e;
	const char *p[] = { b->id };
	PGresult *res;
	enum db_status st = db_exec(a, &res,
	    "SELECT payout_failures + 1 FROM event_services WHERE id = $1", 1, p);
	if (st != DB_OK)
		return db_error(st);
	char net[24];
	snprintf(net, sizeof net, "%lld", b->amount_cents - b->platform_fee_cents);
	const char *q[] = { b->id, b->provider_user_id, net, b->currency, db_value(res, 0, 0) };
	st = db_exec(a, &res,
	    "INSERT INTO payments (event_service_id, payment_type, payer_id, payee_id, amount_cents, "
	    "currency, status, attempt) "
	    "VALUES ($1, 'service_payment', NULL, $2, $3::bigint, $4, 'payout_started', $5::int)",
	    5, q);
	if (st == DB_ERROR && db_is_unique_violation(res))
		return GE_PAYOUT_IN_PROGRESS;
	if (st != DB_OK)
		return db_error(st);
	return charges_load_row(a, b->id, "service_payment", false, po);
}

enum gala_error payouts_release(struct svc_ctx *cx, const char *event_service_id,
    cJSON **payment, bool *already_released, struct refusal *why)
{
	arena_t *a = cx->arena;
	*already_released = false;
	if (!stripe_configured())
		return GE_STRIPE_NOT_CONFIGURED;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	struct booking b;
	struct money_row po, ch;
	enum gala_error e = bookings_load(a, event_service_id, true, &b);
	if (e != GE_OK)
		return db_fail(e);
	unsigned actor = booking_actor(&b, cx->caller);
	if (actor == 0)
		return db_fail(GE_NOT_FOUND);
	if ((e = charges_load_row(a, b.id, "service_payment", true, &po)) != GE_OK ||
	    (e = charges_load_row(a, b.id, "customer_payment", true, &ch)) != GE_OK)
		return db_fail(e);
	if (b.status == BOOKING_RELEASED && (actor & (BOOKING_ACTOR_OWNER | BOOKING_ACTOR_ADMIN)) &&
	    po.res != NULL && is(po.status, "released")) {
		db_rollback();
		*payment = payment_json(po.res, 0);
		*already_released = true;
		return GE_OK;
	}
	enum booking_status to;
	if ((e = booking_decide(b.status, BOOKING_RELEASE, actor, &to)) != GE_OK) {
		why->message = arena_printf(a, "the booking is %s: %s", booking_status_name(b.status),
		    e == GE_FORBIDDEN ? "you may not release its payment" :
		    "its payment can be released once it is completed");
		return db_fail(e);
	}
	bool fresh;
	if (po.res == NULL) {
		if ((e = start_payout(a, &b, &ch, &po, why)) != GE_OK)
			return db_fail(e);
		fresh = true;
	} else if (is(po.status, "payout_started")) {
		if (po.idle_seconds < PAYOUT_IN_PROGRESS_SECONDS) {
			why->message = "a payout of this booking is in progress";
			return db_fail(GE_PAYOUT_IN_PROGRESS);
		}
		if ((e = claim(a, po.id)) != GE_OK)
			return db_fail(e);
		fresh = false;
	} else {
		why->message = arena_printf(a, "the booking's payout is %s", po.status);
		return db_fail(GE_INVALID_STATE);
	}
	if ((st = db_commit(a)) != DB_OK)
		return db_error(st);
	struct payout_job j = { .cx = cx, .fresh = fresh, .actor = actor,
		.actor_user_id = cx->caller->id };
	job_fill(&j, &b, &po, &ch);
	return payout_run(a, &j, payment, already_released, why);
}

/* Claims the stuck payout of one booking for maintenance; *claimed is
 * false when it is no longer stuck. */
static enum gala_error claim_stuck(arena_t *a, const char *booking_id, struct payout_job *j,
    bool *claimed)
{
	struct booking b;
	struct money_row po, ch;
	*claimed = false;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	enum gala_error e = bookings_load(a, booking_id, true, &b);
	if (e == GE_OK)
		e = charges_load_row(a, booking_id, "service_payment", true, &po);
	if (e == GE_OK)
		e = charges_load_row(a, booking_id, "customer_payment", true, &ch);
	if (e != GE_OK)
		return db_fail(e);
	if (po.res == NULL || !is(po.status, "payout_started") ||
	    po.idle_seconds < PAYOUT_IN_PROGRESS_SECONDS || b.provider_stripe_account_id == NULL ||
	    ch.res == NULL) {
		db_rollback();
		return GE_OK;
	}
	if ((e = claim(a, po.id)) != GE_OK)
		return db_fail(e);
	if ((st = db_commit(a)) != DB_OK)
		return db_error(st);
	memset(j, 0, sizeof *j);
	j->actor = BOOKING_ACTOR_SYSTEM;
	job_fill(j, &b, &po, &ch);
	*claimed = true;
	return GE_OK;
}

enum db_status payouts_complete_stuck(arena_t *a, long long *count)
{
	if (!stripe_configured()) {
		log_warn("gala.payouts", "STRIPE_SECRET_KEY is not set: stuck payouts not checked");
		return DB_OK;
	}
	char age[16];
	snprintf(age, sizeof age, "%d", PAYOUT_IN_PROGRESS_SECONDS);
	const char *p[] = { age };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "SELECT event_service_id FROM payments "
	    "WHERE " PAYOUTS_STUCK_WHERE " ORDER BY updated_at LIMIT 100", 1, p);
	if (st != DB_OK)
		return st;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *id = db_value(res, i, 0);
		struct payout_job j;
		bool claimed;
		enum gala_error e = claim_stuck(a, id, &j, &claimed);
		if (e != GE_OK)
			return e == GE_DB_UNAVAILABLE ? DB_UNAVAILABLE : DB_ERROR;
		if (!claimed)
			continue;
		struct refusal why = { 0 };
		cJSON *payment = NULL;
		bool already;
		e = payout_run(a, &j, &payment, &already, &why);
		cJSON_Delete(payment);
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "event_service_id", id);
		cJSON_AddStringToObject(f, "payment_id", j.payout_id);
		cJSON_AddStringToObject(f, "result", e == GE_OK ? "released" :
		    e == GE_STRIPE_ERROR ? "refused: rolled back" : "still unconfirmed");
		if (why.message != NULL)
			cJSON_AddStringToObject(f, "detail", why.message);
		log_emit(e == GE_OK ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, "gala.payouts",
		    "stuck payout", f);
		if (e == GE_OK || e == GE_STRIPE_ERROR)
			(*count)++;
		else if (e == GE_DB_UNAVAILABLE)
			return DB_UNAVAILABLE;
	}
	return DB_OK;
}
