/* The fault matrix, release (tests/fault/stripe_matrix.h): POST
 * /api/event-services/{id}/release while each of its Stripe calls fails.
 * When the transfer may have happened the answer is 502 payout_unconfirmed
 * and the payout stays payout_started (the booking completed); a release
 * after 60 s or gala maintenance completes it, finding the transfer by its
 * group or asking again under the same key: one transfer, whatever failed.
 * When nothing was asked of Stripe yet, the payout is rolled back: 502
 * stripe_unavailable, and the retry releases. */
#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stripe_matrix.h"
#include "testlib.h"

static void release_call(struct mcase *c)
{
	matrix_call(c, "POST", path_of("/api/event-services/%s/release", c->d.id), &c->d.owner,
	    NULL);
}

static int audit_rows(const char *action, const char *status, const char *booking_id)
{
	PGconn *db = test_db_superuser();
	const char *p[] = { action, status, booking_id };
	char *n = test_db_value(db, "SELECT count(*) FROM audit_logs WHERE action = $1 "
	    "AND status = $2 AND metadata->>'event_service_id' = $3", 3, p);
	PQfinish(db);
	int count = n ? atoi(n) : -1;
	free(n);
	return count;
}

static void arrange_completed(struct mcase *c)
{
	deal_make(&c->d, true, true, true);
}

/* A payout older than 60 s is stuck: a release or maintenance finishes it. */
static void complete_stuck(struct mcase *c)
{
	backdate_payout(c->d.id);
	if (c->by_maintenance) {
		run_maintenance();
		return;
	}
	release_call(c);
	matrix_expect(c, 200);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(c->answer, "already_released")));
}

static void retry(struct mcase *c)
{
	release_call(c);
	matrix_expect(c, 200);
}

/* The payout may have reached Stripe: it waits, in progress, untouched. */
static void assert_unconfirmed(struct mcase *c)
{
	assert_booking(c->d.id, "completed");
	assert_payment(c->d.id, "service_payment", "payout_started");
	int want = c->fault->effect;
	ck_assert_int_eq(fake_wait_count("transfer", "transfer_group", c->d.id, want), want);
	/* Young: in progress; the answer is not kept, so the key may come back. */
	release_call(c);
	const char *code = fx_str(cJSON_GetObjectItem(c->answer, "error"), "code");
	ck_assert_msg(c->status == 409 && strcmp(code, "payout_in_progress") == 0,
	    "release at once: %ld %s", c->status, code);
	ck_assert_int_eq(audit_rows("payment.release", "success", c->d.id), 0);
}

/* One transfer, the one recorded, to the provider, net, from the charge. */
static void assert_released(struct mcase *c)
{
	assert_booking(c->d.id, "released");
	assert_payment(c->d.id, "service_payment", "released");
	cJSON *t = fake_find("transfer", "transfer_group", c->d.id);
	char *stored = db_value1("SELECT stripe_transfer_id FROM payments WHERE "
	    "event_service_id = $1 AND payment_type = 'service_payment'", c->d.id);
	ck_assert_str_eq(stored, fx_str(t, "id"));
	free(stored);
	ck_assert_str_eq(fx_str(t, "destination"), c->d.acct);
	ck_assert_int_eq((int)cJSON_GetObjectItem(t, "amount")->valuedouble, 9000);
	cJSON *pi = fake("GET", path_of("/_fake/objects/%s", c->d.pi), NULL);
	ck_assert_str_eq(fx_str(t, "source_transaction"), fx_str(pi, "latest_charge"));
	cJSON_Delete(pi);
	cJSON_Delete(t);
	ck_assert_int_eq(audit_rows("payment.release", "success", c->d.id), 1);
	ck_assert_int_eq(fx_audit_count("booking.released", c->d.id), 1);
	assert_one_key("POST", "/v1/transfers", c->d.id, path_of("release_payment:%s", c->d.id));
	/* Released is final: asking again (another call, another key)
	 * changes and sends nothing. */
	int sent = fake_calls("POST", "/v1/transfers", c->d.id, NULL);
	snprintf(c->key + strlen(c->key), sizeof c->key - strlen(c->key), "-again");
	release_call(c);
	matrix_expect(c, 200);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(c->answer, "already_released")));
	ck_assert_int_eq(fake_calls("POST", "/v1/transfers", c->d.id, NULL), sent);
	ck_assert_int_eq(fake_count("transfer", "transfer_group", c->d.id), 1);
}

/* ------------------------------------------- a stuck payout: the look-up */

/* A payout whose worker died before its transfer call: the row alone. */
static void arrange_stuck(struct mcase *c)
{
	deal_make(&c->d, true, true, true);
	fx_sql("INSERT INTO payments (event_service_id, payment_type, payee_id, amount_cents, "
	    "currency, status, attempt, created_at, updated_at) VALUES ($1, 'service_payment', $2, "
	    "9000, 'usd', 'payout_started', 1, now() - interval '2 minutes', "
	    "now() - interval '2 minutes')", c->d.id, c->d.provider.id, NULL);
}

static void assert_still_stuck(struct mcase *c)
{
	assert_booking(c->d.id, "completed");
	assert_payment(c->d.id, "service_payment", "payout_started");
	ck_assert_int_eq(fake_count("transfer", "transfer_group", c->d.id), 0);
	ck_assert_int_eq(fake_calls("POST", "/v1/transfers", c->d.id, NULL), 0);
}

static void assert_found_or_made(struct mcase *c)
{
	/* The look-up came first, every time. */
	ck_assert_int_ge(fake_calls("GET", "/v1/transfers", c->d.id, NULL), 1);
	assert_released(c);
}

/* ------------------------------------------------ the charge, not yet known */

static void arrange_no_charge(struct mcase *c)
{
	deal_make(&c->d, true, true, true);
	fx_sql("UPDATE payments SET stripe_charge_id = NULL WHERE event_service_id = $1 "
	    "AND payment_type = 'customer_payment'", c->d.id, NULL, NULL);
}

/* Nothing was asked of Stripe: the payout is rolled back, and audited. */
static void assert_rolled_back(struct mcase *c)
{
	assert_booking(c->d.id, "completed");
	assert_payment(c->d.id, "service_payment", NULL);
	ck_assert_int_eq(fake_calls("POST", "/v1/transfers", c->d.id, NULL), 0);
	ck_assert_int_eq(audit_rows("payment.release", "failure", c->d.id), 1);
}

static void assert_charge_learnt(struct mcase *c)
{
	assert_released(c);
	char *charge = db_value1("SELECT stripe_charge_id FROM payments WHERE "
	    "event_service_id = $1 AND payment_type = 'customer_payment'", c->d.id);
	ck_assert_msg(charge != NULL && strncmp(charge, "ch_", 3) == 0, "charge %s",
	    charge ? charge : "(none)");
	free(charge);
}

static const struct step steps[] = {
	{ "release: the transfer", "POST", "/v1/transfers", 502, "payout_unconfirmed",
	  arrange_completed, release_call, assert_unconfirmed, complete_stuck, assert_released,
	  true },
	{ "release of a stuck payout: look its transfer up", "GET", "/v1/transfers", 502,
	  "payout_unconfirmed", arrange_stuck, release_call, assert_still_stuck, complete_stuck,
	  assert_found_or_made, true },
	{ "release: read the charge of the PaymentIntent", "GET", "/v1/payment_intents/*", 502,
	  "stripe_unavailable", arrange_no_charge, release_call, assert_rolled_back, retry,
	  assert_charge_learnt, false },
};
#define NSTEPS (sizeof steps / sizeof steps[0])

START_TEST(release_fault)
{
	matrix_run(steps, NSTEPS, _i);
}
END_TEST

int main(void)
{
	fx_init();
	Suite *s = suite_create("fault: Stripe, release");
	TCase *tc = tcase_create("release");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, release_fault, 0, matrix_size(steps, NSTEPS));
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
