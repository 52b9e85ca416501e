/* The fault matrix, refunds (tests/fault/stripe_matrix.h): the owner
 * cancelling a paid booking, and an admin refunding a released one (the
 * transfer reversed first), while each of their Stripe calls fails. The
 * defined error is 502 stripe_unavailable; the booking keeps its status
 * with the refund marked started (no payout may start meanwhile), and the
 * retry under the same Idempotency-Key finishes it, or, when nobody
 * retries, gala maintenance once the refund is REFUND_STARTED_GRACE_MINUTES
 * old: one reversal and one refund, each under its one Stripe key. */
#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/charges.h"
#include "stripe_matrix.h"
#include "testlib.h"

static void cancel_call(struct mcase *c)
{
	matrix_call(c, "POST", path_of("/api/event-services/%s/cancel", c->d.id), &c->d.owner,
	    NULL);
}

static void refund_call(struct mcase *c)
{
	matrix_call(c, "POST", path_of("/api/event-services/%s/refund", c->d.id), &c->d.admin,
	    NULL);
}

static void assert_refund_started(const struct mcase *c)
{
	assert_payment(c->d.id, "customer_payment", "succeeded");
	char *started = db_value1("SELECT refund_started_at IS NOT NULL FROM payments WHERE "
	    "event_service_id = $1 AND payment_type = 'customer_payment'", c->d.id);
	ck_assert_str_eq(started, "t");
	free(started);
}

/* Refunded once, recorded, audited, under its key; refunded is final. */
static void assert_refunded(struct mcase *c)
{
	if (!c->by_maintenance) {
		matrix_expect(c, 200);
		ck_assert_str_eq(fx_str(c->answer, "status"), "refunded");
	}
	assert_booking(c->d.id, "refunded");
	assert_payment(c->d.id, "customer_payment", "refunded");
	cJSON *re = fake_find("refund", "payment_intent", c->d.pi);
	ck_assert_int_eq((int)cJSON_GetObjectItem(re, "amount")->valuedouble, 10000);
	char *stored = db_value1("SELECT stripe_refund_id FROM payments WHERE "
	    "event_service_id = $1 AND payment_type = 'customer_payment'", c->d.id);
	ck_assert_str_eq(stored, fx_str(re, "id"));
	free(stored);
	cJSON_Delete(re);
	ck_assert_int_eq(fx_audit_count("payment.refund", c->d.id), 1);
	ck_assert_int_eq(fx_audit_count("booking.refunded", c->d.id), 1);
	assert_one_key("POST", "/v1/refunds", c->d.id, path_of("refund:%s", c->d.id));
	int sent = fake_calls("POST", "/v1/refunds", c->d.id, NULL);
	snprintf(c->key + strlen(c->key), sizeof c->key - strlen(c->key), "-again");
	refund_call(c);
	matrix_expect(c, 409);
	ck_assert_str_eq(fx_str(cJSON_GetObjectItem(c->answer, "error"), "code"), "invalid_state");
	ck_assert_int_eq(fake_calls("POST", "/v1/refunds", c->d.id, NULL), sent);
}

/* Nobody retried: maintenance leaves a refund begun alone for its grace
 * period, then finishes it. */
static bool finished_by_maintenance(struct mcase *c)
{
	if (!c->by_maintenance)
		return false;
	run_maintenance();
	assert_refund_started(c);
	char grace[16];
	snprintf(grace, sizeof grace, "%d", REFUND_STARTED_GRACE_MINUTES);
	fx_sql("UPDATE payments SET refund_started_at = refund_started_at - "
	    "make_interval(mins => $2::int + 1) WHERE event_service_id = $1 "
	    "AND payment_type = 'customer_payment'", c->d.id, grace, NULL);
	run_maintenance();
	return true;
}

static void retry_cancel(struct mcase *c)
{
	if (!finished_by_maintenance(c))
		cancel_call(c);
}

static void retry_refund(struct mcase *c)
{
	if (!finished_by_maintenance(c))
		refund_call(c);
}

/* ------------------------------------ the owner cancels a paid booking */

static void arrange_paid(struct mcase *c)
{
	deal_make(&c->d, false, true, false);
}

static void assert_cancel_failed(struct mcase *c)
{
	assert_booking(c->d.id, "paid");
	assert_refund_started(c);
	int want = c->fault->effect;
	ck_assert_int_eq(fake_wait_count("refund", "payment_intent", c->d.pi, want), want);
}

static void assert_cancel_done(struct mcase *c)
{
	assert_refunded(c);
	assert_payment(c->d.id, "service_payment", NULL);
}

/* ---------------------- an admin refunds a released booking: two calls */

static void arrange_released(struct mcase *c)
{
	deal_make(&c->d, true, true, true);
	cJSON *r = fx_expect(200, "POST", path_of("/api/event-services/%s/release", c->d.id),
	    &c->d.owner, NULL);
	snprintf(c->saved, sizeof c->saved, "%s",
	    fx_str(cJSON_GetObjectItem(r, "payment"), "stripe_transfer_id"));
	cJSON_Delete(r);
}

static void assert_reversal_failed(struct mcase *c)
{
	assert_booking(c->d.id, "released");
	assert_payment(c->d.id, "service_payment", "released");
	assert_refund_started(c);
	int want = c->fault->effect;
	ck_assert_int_eq(fake_wait_count("transfer_reversal", "transfer", c->saved, want), want);
	ck_assert_int_eq(fake_count("refund", "payment_intent", c->d.pi), 0);
}

/* The transfer came back; the refund is what failed. */
static void assert_refund_after_reversal_failed(struct mcase *c)
{
	assert_booking(c->d.id, "released");
	assert_payment(c->d.id, "service_payment", "reversed");
	assert_refund_started(c);
	ck_assert_int_eq(fake_count("transfer_reversal", "transfer", c->saved), 1);
	int want = c->fault->effect;
	ck_assert_int_eq(fake_wait_count("refund", "payment_intent", c->d.pi, want), want);
}

static void assert_reversed_and_refunded(struct mcase *c)
{
	assert_refunded(c);
	assert_payment(c->d.id, "service_payment", "reversed");
	cJSON *trr = fake_find("transfer_reversal", "transfer", c->saved);
	char *stored = db_value1("SELECT stripe_transfer_reversal_id FROM payments WHERE "
	    "event_service_id = $1 AND payment_type = 'service_payment'", c->d.id);
	ck_assert_str_eq(stored, fx_str(trr, "id"));
	free(stored);
	cJSON_Delete(trr);
	cJSON *tr = fake("GET", path_of("/_fake/objects/%s", c->saved), NULL);
	ck_assert_int_eq((int)cJSON_GetObjectItem(tr, "amount_reversed")->valuedouble, 9000);
	cJSON_Delete(tr);
	assert_one_key("POST", "/v1/transfers/", c->saved, path_of("reverse_transfer:%s", c->d.id));
}

static const struct step steps[] = {
	{ "cancel of a paid booking: the refund", "POST", "/v1/refunds", 502, "stripe_unavailable",
	  arrange_paid, cancel_call, assert_cancel_failed, retry_cancel, assert_cancel_done, true },
	{ "refund of a released booking: the reversal", "POST", "/v1/transfers/*/reversals", 502,
	  "stripe_unavailable", arrange_released, refund_call, assert_reversal_failed, retry_refund,
	  assert_reversed_and_refunded, true },
	{ "refund of a released booking: the refund", "POST", "/v1/refunds", 502,
	  "stripe_unavailable", arrange_released, refund_call, assert_refund_after_reversal_failed,
	  retry_refund, assert_reversed_and_refunded, true },
};
#define NSTEPS (sizeof steps / sizeof steps[0])

START_TEST(refund_fault)
{
	matrix_run(steps, NSTEPS, _i);
}
END_TEST

int main(void)
{
	fx_init();
	Suite *s = suite_create("fault: Stripe, refunds");
	TCase *tc = tcase_create("refund");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, refund_fault, 0, matrix_size(steps, NSTEPS));
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
