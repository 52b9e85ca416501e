/* The fault matrix, subscribe (tests/fault/stripe_matrix.h): POST
 * /api/subscriptions while the Stripe customer, then the subscription,
 * fails to be made. The defined error is 502 stripe_unavailable with
 * nothing stored; the client's retry under its Idempotency-Key reaches the
 * same Stripe keys: one customer, one subscription, one first invoice to
 * pay, however the first try ended. */
#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "stripe_matrix.h"
#include "testlib.h"

#define START_BODY "{\"price_id\":\"price_basic_monthly\"}"

static void arrange_user(struct mcase *c)
{
	fx_user(&c->user, "customer", true);
}

static void start_call(struct mcase *c)
{
	matrix_call(c, "POST", "/api/subscriptions", &c->user, START_BODY);
}

static void retry(struct mcase *c)
{
	start_call(c);
}

static char *stored_customer(const struct mcase *c)
{
	return db_value1("SELECT stripe_customer_id FROM users WHERE id = $1", c->user.id);
}

static int stored_subscriptions(const struct mcase *c)
{
	char *n = db_value1("SELECT count(*) FROM subscriptions WHERE user_id = $1", c->user.id);
	int count = n ? atoi(n) : -1;
	free(n);
	return count;
}

/* The user has a Stripe customer already (one the fake holds). */
static void arrange_customer(struct mcase *c)
{
	arrange_user(c);
	char r[17], body[256];
	crypto_random_hex(r, 8);
	snprintf(c->saved, sizeof c->saved, "cus_matrix%s", r);
	snprintf(body, sizeof body, "{\"metadata\":{\"user_id\":\"%s\"},"
	    "\"invoice_settings\":{\"default_payment_method\":null}}", c->user.id);
	cJSON_Delete(fake("POST", path_of("/_fake/objects/%s", c->saved), body));
	fx_sql("UPDATE users SET stripe_customer_id = $2 WHERE id = $1", c->user.id, c->saved, NULL);
}

static void assert_no_customer(struct mcase *c)
{
	char *cus = stored_customer(c);
	ck_assert_msg(cus == NULL, "customer %s stored after a failure", cus);
	ck_assert_int_eq(stored_subscriptions(c), 0);
	int want = c->fault->effect;
	ck_assert_int_eq(fake_wait_count("customer", "metadata.user_id", c->user.id, want), want);
	ck_assert_int_eq(fake_count("subscription", "metadata.user_id", c->user.id), 0);
}

static void assert_no_subscription(struct mcase *c)
{
	char *cus = stored_customer(c);
	ck_assert_str_eq(cus, c->saved);
	free(cus);
	ck_assert_int_eq(stored_subscriptions(c), 0);
	int want = c->fault->effect;
	ck_assert_int_eq(fake_wait_count("subscription", "customer", c->saved, want), want);
}

/* One customer for the user, stored; one subscription for it, stored,
 * with one first invoice to pay; every request under its key: the
 * customer's per user, the start's the client's key hashed, per user. */
static void assert_subscribed(struct mcase *c)
{
	matrix_expect(c, 201);
	const cJSON *sub = cJSON_GetObjectItem(c->answer, "subscription");
	ck_assert_str_eq(fx_str(sub, "status"), "incomplete");
	ck_assert_msg(strstr(fx_str(c->answer, "client_secret"), "_secret_") != NULL,
	    "no client secret");
	cJSON *cus = fake_find("customer", "metadata.user_id", c->user.id);
	char *stored = stored_customer(c);
	ck_assert_str_eq(stored, fx_str(cus, "id"));
	cJSON_Delete(cus);
	cJSON *s = fake_find("subscription", "customer", stored);
	ck_assert_str_eq(fx_str(s, "id"), fx_str(sub, "stripe_subscription_id"));
	cJSON_Delete(s);
	ck_assert_int_eq(fake_count("payment_intent", "customer", stored), 1);
	free(stored);
	ck_assert_int_eq(stored_subscriptions(c), 1);
	char digest[65], key[256];
	crypto_sha256_hex(c->key, strlen(c->key), digest);
	snprintf(key, sizeof key, "subscription_start:%s:key:%s", c->user.id, digest);
	assert_one_key("POST", "/v1/subscriptions", c->user.id, key);
}

static void assert_customer_and_subscription(struct mcase *c)
{
	assert_subscribed(c);
	assert_one_key("POST", "/v1/customers", c->user.id, path_of("customer:%s", c->user.id));
}

static const struct step steps[] = {
	{ "subscribe: create the customer", "POST", "/v1/customers", 502, "stripe_unavailable",
	  arrange_user, start_call, assert_no_customer, retry, assert_customer_and_subscription,
	  false },
	{ "subscribe: create the subscription", "POST", "/v1/subscriptions", 502,
	  "stripe_unavailable", arrange_customer, start_call, assert_no_subscription, retry,
	  assert_subscribed, false },
};
#define NSTEPS (sizeof steps / sizeof steps[0])

START_TEST(subscribe_fault)
{
	matrix_run(steps, NSTEPS, _i);
}
END_TEST

int main(void)
{
	fx_init();
	Suite *s = suite_create("fault: Stripe, subscribe");
	TCase *tc = tcase_create("subscribe");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, subscribe_fault, 0, matrix_size(steps, NSTEPS));
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
