/* The fault matrix, pay (tests/fault/stripe_matrix.h): the owner's POST
 * /api/event-services/{id}/pay while each of its Stripe calls fails. The
 * defined error is 502 stripe_unavailable; the booking is then exactly as
 * before, the retry under the same Idempotency-Key pays, and the booking
 * has one PaymentIntent per attempt: Gala asks under one Stripe key. */
#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stripe_matrix.h"
#include "testlib.h"

static void pay_call(struct mcase *c)
{
	matrix_call(c, "POST", path_of("/api/event-services/%s/pay", c->d.id), &c->d.owner, NULL);
}

static const char *answered_intent(const struct mcase *c)
{
	return fx_str(cJSON_GetObjectItem(c->answer, "payment"), "stripe_payment_intent_id");
}

static void retry(struct mcase *c)
{
	pay_call(c);
	matrix_expect(c, 200);
}

/* The booking pays with the answered PaymentIntent, which the fake holds
 * among intents of the booking. */
static void assert_paying(struct mcase *c, int intents)
{
	matrix_expect(c, 200);
	assert_booking(c->d.id, "payment_pending");
	assert_payment(c->d.id, "customer_payment", "requires_payment");
	ck_assert_int_eq(fake_count("payment_intent", "transfer_group", c->d.id), intents);
	cJSON *pi = fake("GET", path_of("/_fake/objects/%s", answered_intent(c)), NULL);
	ck_assert_str_eq(fx_str(pi, "transfer_group"), c->d.id);
	ck_assert_str_eq(fx_str(pi, "status"), "requires_payment_method");
	ck_assert_str_eq(fx_str(c->answer, "client_secret"), fx_str(pi, "client_secret"));
	cJSON_Delete(pi);
	char *stored = db_value1("SELECT stripe_payment_intent_id FROM payments WHERE "
	    "event_service_id = $1 AND payment_type = 'customer_payment'", c->d.id);
	ck_assert_str_eq(stored, answered_intent(c));
	free(stored);
}

/* ------------------------------------ the first attempt: the PaymentIntent */

static void first_arrange(struct mcase *c)
{
	deal_make(&c->d, false, false, false);
}

static void first_failed(struct mcase *c)
{
	assert_booking(c->d.id, "accepted");
	assert_payment(c->d.id, "customer_payment", NULL);
	int want = c->fault->effect;
	ck_assert_int_eq(fake_wait_count("payment_intent", "transfer_group", c->d.id, want), want);
}

static void first_done(struct mcase *c)
{
	assert_paying(c, 1);
	assert_one_key("POST", "/v1/payment_intents", c->d.id, path_of("payment_intent:%s", c->d.id));
}

/* -------------------------- paying again while pending: the intent read */

static void again_arrange(struct mcase *c)
{
	deal_make(&c->d, false, false, false);
	pay_call(c);
	matrix_expect(c, 200);
	snprintf(c->saved, sizeof c->saved, "%s", fx_str(c->answer, "client_secret"));
	/* Asking again is another call: under the same key it would be a replay. */
	snprintf(c->key + strlen(c->key), sizeof c->key - strlen(c->key), "-2");
}

static void again_failed(struct mcase *c)
{
	assert_booking(c->d.id, "payment_pending");
	assert_payment(c->d.id, "customer_payment", "requires_payment");
	ck_assert_int_eq(fake_count("payment_intent", "transfer_group", c->d.id), 1);
}

static void again_done(struct mcase *c)
{
	assert_paying(c, 1);
	ck_assert_str_eq(fx_str(c->answer, "client_secret"), c->saved);
	assert_one_key("POST", "/v1/payment_intents", c->d.id, path_of("payment_intent:%s", c->d.id));
}

/* ----------- a new attempt after a declined card: the old intent cancelled */

static void new_attempt_arrange(struct mcase *c)
{
	deal_make(&c->d, false, false, false);
	pay_call(c);
	matrix_expect(c, 200);
	snprintf(c->saved, sizeof c->saved, "%s", answered_intent(c));
	cJSON_Delete(fake("POST", path_of("/_fake/payment_intents/%s/fail", c->saved), "{}"));
	fake_event("payment_intent.payment_failed", c->saved);
	assert_booking(c->d.id, "accepted");
	assert_payment(c->d.id, "customer_payment", "failed");
	/* The retry is another logical operation: another key. */
	snprintf(c->key + strlen(c->key), sizeof c->key - strlen(c->key), "-2");
}

static const char *old_intent_status(const struct mcase *c)
{
	cJSON *pi = fake("GET", path_of("/_fake/objects/%s", c->saved), NULL);
	static char status[64];
	snprintf(status, sizeof status, "%s", fx_str(pi, "status"));
	cJSON_Delete(pi);
	return status;
}

static void new_attempt_failed(struct mcase *c)
{
	assert_booking(c->d.id, "accepted");
	assert_payment(c->d.id, "customer_payment", "failed");
	ck_assert_int_eq(fake_count("payment_intent", "transfer_group", c->d.id), 1);
	if (c->fault->effect) {
		for (int i = 0; i < 30 && strcmp(old_intent_status(c), "canceled") != 0; i++)
			usleep(100000);
		ck_assert_str_eq(old_intent_status(c), "canceled");
	} else {
		ck_assert_str_eq(old_intent_status(c), "requires_payment_method");
	}
}

static void new_attempt_done(struct mcase *c)
{
	assert_paying(c, 2);
	ck_assert_str_ne(answered_intent(c), c->saved);
	ck_assert_str_eq(old_intent_status(c), "canceled");
	cJSON *pi = fake("GET", path_of("/_fake/objects/%s", answered_intent(c)), NULL);
	ck_assert_str_eq(fx_str(cJSON_GetObjectItem(pi, "metadata"), "attempt"), "2");
	cJSON_Delete(pi);
	assert_one_key("POST", "/v1/payment_intents/", c->saved,
	    path_of("cancel_payment_intent:%s", c->saved));
	/* Each attempt under its own key, every request of it under that one. */
	int first = fake_calls("POST", "/v1/payment_intents", c->d.id,
	    path_of("payment_intent:%s", c->d.id));
	int second = fake_calls("POST", "/v1/payment_intents", c->d.id,
	    path_of("payment_intent:%s:2", c->d.id));
	ck_assert_int_eq(first, 1);
	ck_assert_int_ge(second, 1);
	ck_assert_int_eq(fake_calls("POST", "/v1/payment_intents", c->d.id, NULL), first + second);
}

static const struct step steps[] = {
	{ "pay: create the PaymentIntent", "POST", "/v1/payment_intents",
	  502, "stripe_unavailable", first_arrange, pay_call, first_failed, retry, first_done,
	  false },
	{ "pay while pending: read the PaymentIntent", "GET", "/v1/payment_intents/*",
	  502, "stripe_unavailable", again_arrange, pay_call, again_failed, retry, again_done,
	  false },
	{ "pay after a decline: cancel the old PaymentIntent", "POST",
	  "/v1/payment_intents/*/cancel", 502, "stripe_unavailable", new_attempt_arrange, pay_call,
	  new_attempt_failed, retry, new_attempt_done, false },
};
#define NSTEPS (sizeof steps / sizeof steps[0])

START_TEST(pay_fault)
{
	matrix_run(steps, NSTEPS, _i);
}
END_TEST

int main(void)
{
	fx_init();
	Suite *s = suite_create("fault: Stripe, pay");
	TCase *tc = tcase_create("pay");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, pay_fault, 0, matrix_size(steps, NSTEPS));
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
