/* End-to-end tests of the money flows (issue 6; seed Phases 1-3, Critical
 * Gap 3) through nginx, with the Stripe fake of tests/fakes: paying for a
 * booking, Stripe's webhooks, payouts to the provider's connected account
 * under every failure the fake can inject, refunds, onboarding, and the
 * product's Stripe client itself. Every assertion about money looks at the
 * fake: what Stripe would have been asked to do. */
#include "autoconf.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clients/stripe.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/crypto.h"
#include "market_fixtures.h"
#include "money_fixtures.h"
#include "services/bookings.h"
#include "testlib.h"

static void setup(void)
{
	fx_init();
	cJSON_Delete(fake("DELETE", "/_fake/fail", NULL));
}

/* --------------------------------------------------------------- pay */

START_TEST(pay_creates_intent_and_webhook_marks_paid)
{
	struct deal d;
	deal(&d, false, false, false);
	struct fx_user stranger;
	fx_user(&stranger, "customer", true);
	fx_expect_error(404, "not_found", NULL, "POST", path_of("/api/event-services/%s/pay", d.id),
	    &stranger, NULL);
	fx_expect_error(403, "forbidden", NULL, "POST", path_of("/api/event-services/%s/pay", d.id),
	    &d.provider, NULL);
	/* The same owner, unverified. */
	fx_sql("UPDATE users SET email_verified = false WHERE id = $1", d.owner.id, NULL, NULL);
	fx_expect_error(403, "email_not_verified", NULL, "POST",
	    path_of("/api/event-services/%s/pay", d.id), &d.owner, NULL);
	fx_sql("UPDATE users SET email_verified = true WHERE id = $1", d.owner.id, NULL, NULL);
	fx_expect_error(422, "validation_failed", NULL, "POST",
	    path_of("/api/event-services/%s/pay", d.id), &d.owner, "{\"amount_cents\":1}");

	cJSON *r = fx_expect(200, "POST", path_of("/api/event-services/%s/pay", d.id), &d.owner,
	    NULL);
	const cJSON *p = cJSON_GetObjectItem(r, "payment");
	ck_assert_str_eq(fx_str(p, "payment_type"), "customer_payment");
	ck_assert_str_eq(fx_str(p, "payer_id"), d.owner.id);
	ck_assert_str_eq(fx_str(p, "payee_id"), d.provider.id);
	ck_assert_int_eq((int)cJSON_GetObjectItem(p, "amount_cents")->valuedouble, 10000);
	char pay_id[64], pi[128], secret[256];
	snprintf(pay_id, sizeof pay_id, "%s", fx_str(p, "id"));
	snprintf(pi, sizeof pi, "%s", fx_str(p, "stripe_payment_intent_id"));
	snprintf(secret, sizeof secret, "%s", fx_str(r, "client_secret"));
	cJSON_Delete(r);
	assert_status(d.id, "payment_pending");

	/* What Stripe was asked: amount, transfer group, the ids, the key. */
	cJSON *intent = fake("GET", path_of("/_fake/objects/%s", pi), NULL);
	ck_assert_int_eq((int)cJSON_GetObjectItem(intent, "amount")->valuedouble, 10000);
	ck_assert_str_eq(fx_str(intent, "currency"), "usd");
	ck_assert_str_eq(fx_str(intent, "transfer_group"), d.id);
	ck_assert_str_eq(fx_str(cJSON_GetObjectItem(intent, "metadata"), "event_service_id"), d.id);
	cJSON_Delete(intent);
	char key[128];
	snprintf(key, sizeof key, "payment_intent:%s", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 1);

	/* Again while pending: the same payment and secret, no new intent. */
	r = fx_expect(200, "POST", path_of("/api/event-services/%s/pay", d.id), &d.owner, NULL);
	ck_assert_str_eq(fx_str(cJSON_GetObjectItem(r, "payment"), "id"), pay_id);
	ck_assert_str_eq(fx_str(r, "client_secret"), secret);
	cJSON_Delete(r);
	ck_assert_int_eq(fake_count("payment_intent", "transfer_group", d.id), 1);

	/* Stripe confirms: payment succeeded, booking paid; the same event
	 * delivered twice has one effect. */
	cJSON_Delete(fake("POST", path_of("/_fake/payment_intents/%s/succeed", pi), "{}"));
	char evt[64], *body;
	snprintf(evt, sizeof evt, "evt_paid_%d_%ld", (int)getpid(), (long)time(NULL));
	ck_assert_int_eq(send_event("payment_intent.succeeded", pi, evt, &body), 200);
	ck_assert_msg(strstr(body, "\"received\":true") && !strstr(body, "duplicate"), "%s", body);
	free(body);
	assert_status(d.id, "paid");
	assert_payment(d.id, "customer_payment", "succeeded");
	ck_assert_int_eq(send_event("payment_intent.succeeded", pi, evt, &body), 200);
	ck_assert_msg(strstr(body, "\"duplicate\":true") != NULL, "%s", body);
	free(body);
	ck_assert_int_eq(fx_audit_count("booking.paid", d.id), 1);
	char *charge = db_value1("SELECT stripe_charge_id FROM payments WHERE id = $1", pay_id);
	ck_assert_msg(charge != NULL && strncmp(charge, "ch_", 3) == 0, "charge %s",
	    charge ? charge : "(none)");
	free(charge);
	/* Paid: no second payment. */
	fx_expect_error(409, "invalid_state", NULL, "POST",
	    path_of("/api/event-services/%s/pay", d.id), &d.owner, NULL);
	deal_free(&d);
}
END_TEST

START_TEST(failed_payment_then_new_intent)
{
	struct deal d;
	deal(&d, false, false, false);
	cJSON *r = fx_expect(200, "POST", path_of("/api/event-services/%s/pay", d.id), &d.owner,
	    NULL);
	char pi1[128];
	snprintf(pi1, sizeof pi1, "%s",
	    fx_str(cJSON_GetObjectItem(r, "payment"), "stripe_payment_intent_id"));
	cJSON_Delete(r);
	cJSON_Delete(fake("POST", path_of("/_fake/payment_intents/%s/fail", pi1), "{}"));
	ck_assert_int_eq(send_event("payment_intent.payment_failed", pi1, NULL, NULL), 200);
	assert_status(d.id, "accepted");
	assert_payment(d.id, "customer_payment", "failed");

	/* A new attempt: a new PaymentIntent under a new key, the old one
	 * cancelled so that it can no longer be paid. */
	r = fx_expect(200, "POST", path_of("/api/event-services/%s/pay", d.id), &d.owner, NULL);
	const char *pi2 = fx_str(cJSON_GetObjectItem(r, "payment"), "stripe_payment_intent_id");
	ck_assert_str_ne(pi2, pi1);
	ck_assert_str_eq(fx_str(cJSON_GetObjectItem(r, "payment"), "status"), "requires_payment");
	char key[128];
	snprintf(key, sizeof key, "payment_intent:%s:2", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 1);
	cJSON *old = fake("GET", path_of("/_fake/objects/%s", pi1), NULL);
	ck_assert_str_eq(fx_str(old, "status"), "canceled");
	cJSON_Delete(old);
	/* A late failure of the old intent changes nothing. */
	ck_assert_int_eq(send_event("payment_intent.payment_failed", pi1, NULL, NULL), 200);
	assert_status(d.id, "payment_pending");
	cJSON_Delete(r);
	deal_free(&d);
}
END_TEST

START_TEST(success_after_a_decline_on_the_same_intent)
{
	/* The customer's first card is declined, the second one (same
	 * PaymentIntent) works: delivered in order or not, the booking ends
	 * paid. */
	struct deal d;
	deal(&d, false, false, false);
	cJSON *r = fx_expect(200, "POST", path_of("/api/event-services/%s/pay", d.id), &d.owner,
	    NULL);
	snprintf(d.pi, sizeof d.pi, "%s",
	    fx_str(cJSON_GetObjectItem(r, "payment"), "stripe_payment_intent_id"));
	cJSON_Delete(r);
	cJSON_Delete(fake("POST", path_of("/_fake/payment_intents/%s/fail", d.pi), "{}"));
	ck_assert_int_eq(send_event("payment_intent.payment_failed", d.pi, NULL, NULL), 200);
	cJSON_Delete(fake("POST", path_of("/_fake/payment_intents/%s/succeed", d.pi), "{}"));
	ck_assert_int_eq(send_event("payment_intent.succeeded", d.pi, NULL, NULL), 200);
	assert_status(d.id, "paid");
	/* The failure again, late: still paid. */
	ck_assert_int_eq(send_event("payment_intent.payment_failed", d.pi, NULL, NULL), 200);
	assert_status(d.id, "paid");
	assert_payment(d.id, "customer_payment", "succeeded");
	deal_free(&d);
}
END_TEST

/* ----------------------------------------------------------- release */

START_TEST(release_transfers_to_connected_account)
{
	struct deal d;
	deal(&d, true, true, true);
	fx_expect_error(403, "forbidden", NULL, "POST",
	    path_of("/api/event-services/%s/release", d.id), &d.provider, NULL);
	cJSON *r = fx_expect(200, "POST", path_of("/api/event-services/%s/release", d.id),
	    &d.owner, NULL);
	ck_assert_str_eq(fx_str(r, "status"), "released");
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(r, "already_released")));
	ck_assert_int_eq(cJSON_GetArraySize(r), 3);     /* status, payment, already_released */
	const cJSON *p = cJSON_GetObjectItem(r, "payment");
	ck_assert_str_eq(fx_str(p, "payment_type"), "service_payment");
	ck_assert_str_eq(fx_str(p, "status"), "released");
	ck_assert_str_eq(fx_str(p, "payee_id"), d.provider.id);
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(p, "payer_id")));
	ck_assert_int_eq((int)cJSON_GetObjectItem(p, "amount_cents")->valuedouble, 9000);
	char transfer[128];
	snprintf(transfer, sizeof transfer, "%s", fx_str(p, "stripe_transfer_id"));
	cJSON_Delete(r);
	assert_status(d.id, "released");

	/* The transfer at Stripe: to the connected account, net of the fee,
	 * drawing on the charge, grouped by the booking, under the key. */
	cJSON *t = fake_find("transfer", "transfer_group", d.id);
	ck_assert_str_eq(fx_str(t, "id"), transfer);
	ck_assert_str_eq(fx_str(t, "destination"), d.acct);
	ck_assert_int_eq((int)cJSON_GetObjectItem(t, "amount")->valuedouble, 9000);
	cJSON *intent = fake("GET", path_of("/_fake/objects/%s", d.pi), NULL);
	ck_assert_str_eq(fx_str(t, "source_transaction"), fx_str(intent, "latest_charge"));
	cJSON_Delete(intent);
	cJSON_Delete(t);
	char key[128];
	snprintf(key, sizeof key, "release_payment:%s", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 1);
	ck_assert_int_eq(fx_audit_count("payment.release", d.id), 1);
	ck_assert_int_eq(fx_audit_count("booking.released", d.id), 1);

	/* Again, by the owner and by an admin: already released, no transfer. */
	r = fx_expect(200, "POST", path_of("/api/event-services/%s/release", d.id), &d.owner, NULL);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "already_released")));
	ck_assert_str_eq(fx_str(cJSON_GetObjectItem(r, "payment"), "stripe_transfer_id"), transfer);
	cJSON_Delete(r);
	r = fx_expect(200, "POST", path_of("/api/event-services/%s/release", d.id), &d.admin, NULL);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "already_released")));
	cJSON_Delete(r);
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d.id), 1);
	ck_assert_int_eq(fake_requests("POST", key), 1);

	/* The payout is in the provider's payments list. */
	r = fx_expect(200, "GET", "/api/payments", &d.provider, NULL);
	int payouts = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(r, "items"))
		payouts += strcmp(fx_str(it, "stripe_transfer_id"), transfer) == 0;
	ck_assert_int_eq(payouts, 1);
	cJSON_Delete(r);
	deal_free(&d);
}
END_TEST

START_TEST(release_before_completion_or_onboarding)
{
	struct deal d;
	deal(&d, false, true, false);
	/* Paid, not completed: the owner may not release yet. */
	fx_expect_error(409, "invalid_state", NULL, "POST",
	    path_of("/api/event-services/%s/release", d.id), &d.owner, NULL);
	cJSON_Delete(fx_expect(200, "POST", path_of("/api/event-services/%s/complete", d.id),
	    &d.owner, NULL));
	/* No connected account: onboarding_required, and Stripe never asked. */
	fx_expect_error(409, "onboarding_required", NULL, "POST",
	    path_of("/api/event-services/%s/release", d.id), &d.admin, NULL);
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d.id), 0);
	char key[128];
	snprintf(key, sizeof key, "release_payment:%s", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 0);
	assert_status(d.id, "completed");
	assert_payment(d.id, "service_payment", NULL);
	deal_free(&d);
}
END_TEST

/* A payout waits for the event's end plus PAYOUT_HOLD_HOURS: 409
 * payout_on_hold naming when, nothing asked of Stripe; a refund is never
 * held. */
START_TEST(release_waits_for_the_event_and_the_hold)
{
	struct deal d;
	deal(&d, true, true, true);
	event_ends(&d, -2);
	long status;
	cJSON *r = fx_call("POST", path_of("/api/event-services/%s/release", d.id), &d.owner, NULL,
	    &status);
	ck_assert_int_eq(status, 409);
	const cJSON *err = cJSON_GetObjectItem(r, "error");
	ck_assert_str_eq(fx_str(err, "code"), "payout_on_hold");
	char *until = db_value1("SELECT to_char(ends_at AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM events WHERE id = $1", d.event_id);
	ck_assert_str_eq(fx_str(err, "available_at"), until);
	free(until);
	cJSON_Delete(r);
	char key[128];
	snprintf(key, sizeof key, "release_payment:%s", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 0);
	assert_status(d.id, "completed");
	assert_payment(d.id, "service_payment", NULL);

	/* Over a day ago, but the hold is two: still held, until end + 48 h. */
	ck_assert_int_eq(stack_ctl("gala-start PAYOUT_HOLD_HOURS=48"), 0);
	event_ends(&d, 24);
	r = fx_call("POST", path_of("/api/event-services/%s/release", d.id), &d.admin, NULL,
	    &status);
	ck_assert_int_eq(status, 409);
	err = cJSON_GetObjectItem(r, "error");
	ck_assert_str_eq(fx_str(err, "code"), "payout_on_hold");
	until = db_value1("SELECT to_char((ends_at + interval '48 hours') AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM events WHERE id = $1", d.event_id);
	ck_assert_str_eq(fx_str(err, "available_at"), until);
	free(until);
	cJSON_Delete(r);
	/* A refund is not held. */
	cJSON_Delete(fx_expect(200, "POST", path_of("/api/event-services/%s/refund", d.id), &d.admin,
	    NULL));
	assert_status(d.id, "refunded");
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
	deal_free(&d);
}
END_TEST

struct racer {
	const char *path;
	const char *token;
	const char *idempotency_key;   /* or NULL */
	long status;
	char code[64];
	bool already_released;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct http_resp resp;
	char auth[4096], key[256];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", r->token);
	snprintf(key, sizeof key, "Idempotency-Key: %s", r->idempotency_key);
	const char *h[] = { auth, r->idempotency_key != NULL ? key : NULL, NULL };
	if (http_do("POST", r->path, h, NULL, &resp) == 0) {
		r->status = resp.status;
		snprintf(r->code, sizeof r->code, "%s", http_error_code(&resp));
		r->already_released = cJSON_IsTrue(cJSON_GetObjectItem(resp.json, "already_released"));
	}
	http_resp_free(&resp);
	return NULL;
}

START_TEST(fifty_concurrent_releases_one_transfer)
{
	struct deal d;
	deal(&d, true, true, true);
	/* A slow Stripe keeps the first release in flight while the others
	 * arrive. */
	fake_fail("{\"method\":\"POST\",\"path\":\"/v1/transfers\",\"mode\":\"slow\","
	    "\"delay_ms\":400}");
	enum { N = 50 };
	struct racer rs[N];
	pthread_t th[N];
	const char *path = path_of("/api/event-services/%s/release", d.id);
	for (int i = 0; i < N; i++) {
		rs[i] = (struct racer){ .path = path, .token = d.admin.token };
		pthread_create(&th[i], NULL, race, &rs[i]);
	}
	int ok = 0, in_progress = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		if (rs[i].status == 200)
			ok++;
		else if (rs[i].status == 409 && strcmp(rs[i].code, "payout_in_progress") == 0)
			in_progress++;
		else
			ck_abort_msg("release %d: %ld %s", i, rs[i].status, rs[i].code);
	}
	ck_assert_int_ge(ok, 1);
	ck_assert_int_eq(ok + in_progress, N);
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d.id), 1);
	char key[128];
	snprintf(key, sizeof key, "release_payment:%s", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 1);
	assert_status(d.id, "released");
	ck_assert_int_eq(fx_audit_count("payment.release", d.id), 1);
	deal_free(&d);
}
END_TEST

/* Whether the file at path has a line containing needle. */
static bool file_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot read %s", path);
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	while (!found && getline(&line, &cap, f) > 0)
		found = strstr(line, needle) != NULL;
	free(line);
	fclose(f);
	return found;
}

START_TEST(stripe_refusal_rolls_the_payout_back)
{
	struct deal d;
	deal(&d, true, true, true);
	fake_fail("{\"method\":\"POST\",\"path\":\"/v1/transfers\",\"mode\":\"error\","
	    "\"status\":400,\"error\":{\"type\":\"invalid_request_error\","
	    "\"code\":\"balance_insufficient\",\"message\":\"Insufficient funds in Stripe account.\"}}");
	long status;
	cJSON *r = fx_call("POST", path_of("/api/event-services/%s/release", d.id), &d.owner, NULL,
	    &status);
	ck_assert_int_eq(status, 502);
	const cJSON *e = cJSON_GetObjectItem(r, "error");
	ck_assert_str_eq(fx_str(e, "type"), "payment_error");
	/* Stripe's words go to the log, never to the client. */
	ck_assert_msg(strncmp(fx_str(e, "message"), "the payment provider refused the request",
	    40) == 0 && strstr(fx_str(e, "message"), "Insufficient") == NULL, "%s",
	    fx_str(e, "message"));
	ck_assert(file_has(test_env("TEST_GALA_LOG"), "Insufficient funds in Stripe account."));
	cJSON_Delete(r);
	assert_status(d.id, "completed");
	assert_payment(d.id, "service_payment", NULL);
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d.id), 0);

	/* Stripe keeps the refusal under the first key: the retry uses the
	 * next one and pays, once. */
	r = fx_expect(200, "POST", path_of("/api/event-services/%s/release", d.id), &d.owner, NULL);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(r, "already_released")));
	cJSON_Delete(r);
	char key[128];
	snprintf(key, sizeof key, "release_payment:%s:2", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 1);
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d.id), 1);
	assert_status(d.id, "released");
	deal_free(&d);
}
END_TEST

/* Makes the payout row look older than the 60 s of an in-flight payout. */
static void backdate_payout(const char *booking_id)
{
	fx_sql("UPDATE payments SET updated_at = now() - interval '2 minutes', "
	    "created_at = now() - interval '2 minutes' WHERE event_service_id = $1 "
	    "AND payment_type = 'service_payment'", booking_id, NULL, NULL);
}

START_TEST(stripe_timeout_then_retry_completes)
{
	struct deal d;
	deal(&d, true, true, true);
	/* Stripe makes the transfer, but the answer never comes in time. */
	fake_fail("{\"method\":\"POST\",\"path\":\"/v1/transfers\",\"mode\":\"hang\","
	    "\"after_effect\":true,\"delay_ms\":10000}");
	fx_expect_error(502, "payout_unconfirmed", NULL, "POST",
	    path_of("/api/event-services/%s/release", d.id), &d.owner, NULL);
	assert_payment(d.id, "service_payment", "payout_started");
	assert_status(d.id, "completed");
	/* Young: in progress, nothing sent. */
	fx_expect_error(409, "payout_in_progress", NULL, "POST",
	    path_of("/api/event-services/%s/release", d.id), &d.owner, NULL);
	backdate_payout(d.id);
	cJSON *r = fx_expect(200, "POST", path_of("/api/event-services/%s/release", d.id), &d.owner,
	    NULL);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(r, "already_released")));
	cJSON *t = fake_find("transfer", "transfer_group", d.id);
	ck_assert_str_eq(fx_str(cJSON_GetObjectItem(r, "payment"), "stripe_transfer_id"),
	    fx_str(t, "id"));
	cJSON_Delete(t);
	cJSON_Delete(r);
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d.id), 1);
	assert_status(d.id, "released");
	ck_assert_int_eq(fx_audit_count("payment.release", d.id), 1);
	deal_free(&d);
}
END_TEST

START_TEST(stuck_payout_without_transfer_is_retried_under_its_key)
{
	struct deal d;
	deal(&d, true, true, true);
	/* Stripe never got it (hang before any effect). */
	fake_fail("{\"method\":\"POST\",\"path\":\"/v1/transfers\",\"mode\":\"hang\","
	    "\"delay_ms\":10000}");
	fx_expect_error(502, "payout_unconfirmed", NULL, "POST",
	    path_of("/api/event-services/%s/release", d.id), &d.owner, NULL);
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d.id), 0);
	backdate_payout(d.id);
	cJSON_Delete(fx_expect(200, "POST", path_of("/api/event-services/%s/release", d.id),
	    &d.admin, NULL));
	char key[128];
	snprintf(key, sizeof key, "release_payment:%s", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 2);
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d.id), 1);
	assert_status(d.id, "released");
	deal_free(&d);
}
END_TEST

static void *release_in_background(void *arg)
{
	return race(arg);
}

static int run_maintenance(void)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "env -i PATH=\"$PATH\" ENV_FILE='%s' '%s' maintenance "
	    ">>'%s' 2>&1", test_env("TEST_GALA_ENV"), test_env("GALA_BIN"),
	    test_env("TEST_GALA_LOG"));
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* A release killed while Stripe makes its transfer, with or without an
 * Idempotency-Key (whose request holds its work until its response is
 * stored: the payout row must be committed before the call all the same). */
static void killed_during_transfer(const char *idempotency_key)
{
	struct deal d;
	deal(&d, true, true, true);
	/* Slow, but within the client's time budget: only the kill stops it. */
	fake_fail("{\"method\":\"POST\",\"path\":\"/v1/transfers\",\"mode\":\"slow\","
	    "\"delay_ms\":2500}");
	char *pids = stack_ctl_output("gala-worker-pids");
	ck_assert_msg(pids != NULL && *pids != '\0', "no workers");
	struct racer rr = { .path = path_of("/api/event-services/%s/release", d.id),
		.token = d.owner.token, .idempotency_key = idempotency_key };
	pthread_t th;
	pthread_create(&th, NULL, release_in_background, &rr);
	/* The payout row is committed before the call, and the fake logs the
	 * transfer request as it arrives: then the worker is waiting on Stripe. */
	char key[128];
	snprintf(key, sizeof key, "release_payment:%s", d.id);
	bool waiting = false;
	for (int i = 0; i < 200 && !waiting; i++) {
		waiting = fake_requests("POST", key) == 1;
		if (!waiting)
			usleep(25000);
	}
	ck_assert_msg(waiting, "the transfer request never reached the fake");
	for (char *s = strtok(pids, " "); s != NULL; s = strtok(NULL, " "))
		kill((pid_t)atoi(s), SIGKILL);
	free(pids);
	pthread_join(th, NULL);
	/* nginx's 502 for a worker that died, not an answer of the app. */
	ck_assert_msg(rr.status == 502 && strcmp(rr.code, "payout_unconfirmed") != 0,
	    "the release answered %ld %s", rr.status, rr.code);
	/* Stripe finishes the transfer on its own side. */
	for (int i = 0; i < 100 && fake_count("transfer", "transfer_group", d.id) == 0; i++)
		usleep(50000);
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d.id), 1);
	assert_payment(d.id, "service_payment", "payout_started");

	/* Maintenance leaves a young one alone, completes a stuck one. */
	ck_assert_int_eq(run_maintenance(), 0);
	assert_payment(d.id, "service_payment", "payout_started");
	backdate_payout(d.id);
	ck_assert_int_eq(run_maintenance(), 0);
	assert_payment(d.id, "service_payment", "released");
	assert_status(d.id, "released");
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d.id), 1);
	cJSON *t = fake_find("transfer", "transfer_group", d.id);
	char *stored = db_value1("SELECT stripe_transfer_id FROM payments WHERE event_service_id = "
	    "$1 AND payment_type = 'service_payment'", d.id);
	ck_assert_str_eq(stored, fx_str(t, "id"));
	free(stored);
	cJSON_Delete(t);
	/* The pool is back; the client's retry (its key's claim gone stale)
	 * finds the payout done. */
	if (idempotency_key != NULL)
		fx_sql("UPDATE idempotency_keys SET locked_at = now() - interval '1 hour' "
		    "WHERE key = $1", idempotency_key, NULL, NULL);
	rr.status = 0;
	race(&rr);
	ck_assert_msg(rr.status == 200, "the retry answered %ld %s", rr.status, rr.code);
	ck_assert(rr.already_released);
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d.id), 1);
	deal_free(&d);
}

START_TEST(worker_killed_during_transfer_then_maintenance)
{
	killed_during_transfer(NULL);
}
END_TEST

START_TEST(worker_killed_during_keyed_transfer_then_maintenance)
{
	char key[64];
	snprintf(key, sizeof key, "killed-release-%d", (int)getpid());
	killed_during_transfer(key);
}
END_TEST

/* ----------------------------------------------------------- refunds */

START_TEST(cancel_of_paid_booking_refunds)
{
	struct deal d;
	deal(&d, false, true, false);
	cJSON *r = fx_expect(200, "POST", path_of("/api/event-services/%s/cancel", d.id), &d.owner,
	    NULL);
	ck_assert_str_eq(fx_str(r, "status"), "refunded");
	cJSON_Delete(r);
	assert_payment(d.id, "customer_payment", "refunded");
	char key[128];
	snprintf(key, sizeof key, "refund:%s", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 1);
	cJSON *re = fake_find("refund", "payment_intent", d.pi);
	ck_assert_int_eq((int)cJSON_GetObjectItem(re, "amount")->valuedouble, 10000);
	char *stored = db_value1("SELECT stripe_refund_id FROM payments WHERE event_service_id = $1 "
	    "AND payment_type = 'customer_payment'", d.id);
	ck_assert_str_eq(stored, fx_str(re, "id"));
	free(stored);
	cJSON_Delete(re);
	ck_assert_int_eq(fx_audit_count("payment.refund", d.id), 1);
	ck_assert_int_eq(fx_audit_count("booking.refunded", d.id), 1);
	/* Stripe's charge.refunded for Gala's own refund changes nothing more. */
	cJSON *intent = fake("GET", path_of("/_fake/objects/%s", d.pi), NULL);
	ck_assert_int_eq(send_event("charge.refunded", fx_str(intent, "latest_charge"), NULL, NULL),
	    200);
	cJSON_Delete(intent);
	ck_assert_int_eq(fx_audit_count("payment.refund", d.id), 1);
	ck_assert_int_eq(fx_audit_count("booking.refunded", d.id), 1);
	/* Refunded is final. */
	fx_expect_error(409, "invalid_state", NULL, "POST",
	    path_of("/api/event-services/%s/cancel", d.id), &d.owner, NULL);
	deal_free(&d);
}
END_TEST

START_TEST(admin_refund_of_released_reverses_transfer_first)
{
	struct deal d;
	deal(&d, true, true, true);
	cJSON_Delete(fx_expect(200, "POST", path_of("/api/event-services/%s/release", d.id),
	    &d.owner, NULL));
	/* Only admins refund; the owner of a released booking may not cancel. */
	fx_expect_error(403, "forbidden", NULL, "POST",
	    path_of("/api/event-services/%s/refund", d.id), &d.owner, NULL);
	fx_expect_error(403, "forbidden", NULL, "POST",
	    path_of("/api/event-services/%s/cancel", d.id), &d.owner, NULL);
	cJSON *r = fx_expect(200, "POST", path_of("/api/event-services/%s/refund", d.id), &d.admin,
	    NULL);
	ck_assert_str_eq(fx_str(r, "status"), "refunded");
	cJSON_Delete(r);
	assert_payment(d.id, "service_payment", "reversed");
	assert_payment(d.id, "customer_payment", "refunded");
	cJSON *t = fake_find("transfer", "transfer_group", d.id);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(t, "reversed")));
	cJSON_Delete(t);
	char key[128];
	snprintf(key, sizeof key, "reverse_transfer:%s", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 1);
	snprintf(key, sizeof key, "refund:%s", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 1);
	ck_assert_int_eq(fake_count("refund", "payment_intent", d.pi), 1);
	/* Again: refunded is final, and Stripe is not asked twice. */
	fx_expect_error(409, "invalid_state", NULL, "POST",
	    path_of("/api/event-services/%s/refund", d.id), &d.admin, NULL);
	ck_assert_int_eq(fake_count("refund", "payment_intent", d.pi), 1);
	deal_free(&d);
}
END_TEST

START_TEST(concurrent_refunds_refund_once)
{
	struct deal d;
	deal(&d, false, true, true);
	enum { N = 8 };
	struct racer rs[N];
	pthread_t th[N];
	const char *path = path_of("/api/event-services/%s/refund", d.id);
	for (int i = 0; i < N; i++) {
		rs[i] = (struct racer){ .path = path, .token = d.admin.token };
		pthread_create(&th[i], NULL, race, &rs[i]);
	}
	int ok = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ok += rs[i].status == 200;
		ck_assert_msg(rs[i].status == 200 || (rs[i].status == 409 &&
		    strcmp(rs[i].code, "invalid_state") == 0), "refund %d: %ld %s", i, rs[i].status,
		    rs[i].code);
	}
	ck_assert_int_ge(ok, 1);
	ck_assert_int_eq(fake_count("refund", "payment_intent", d.pi), 1);
	cJSON *intent = fake("GET", path_of("/_fake/objects/%s", d.pi), NULL);
	cJSON *ch = fake("GET", path_of("/_fake/objects/%s", fx_str(intent, "latest_charge")), NULL);
	ck_assert_int_eq((int)cJSON_GetObjectItem(ch, "amount_refunded")->valuedouble, 10000);
	cJSON_Delete(ch);
	cJSON_Delete(intent);
	assert_status(d.id, "refunded");
	deal_free(&d);
}
END_TEST

START_TEST(refund_outside_gala_after_payout_is_audited)
{
	struct deal d;
	deal(&d, true, true, true);
	cJSON_Delete(fx_expect(200, "POST", path_of("/api/event-services/%s/release", d.id),
	    &d.owner, NULL));
	/* Someone refunds the charge in Stripe's dashboard. */
	cJSON *intent = fake("GET", path_of("/_fake/objects/%s", d.pi), NULL);
	char charge[128], body[256];
	snprintf(charge, sizeof charge, "%s", fx_str(intent, "latest_charge"));
	cJSON_Delete(intent);
	snprintf(body, sizeof body, "{\"amount_refunded\":10000,\"refunded\":true}");
	cJSON_Delete(fake("POST", path_of("/_fake/objects/%s", charge), body));
	ck_assert_int_eq(send_event("charge.refunded", charge, NULL, NULL), 200);
	assert_status(d.id, "refunded");
	assert_payment(d.id, "customer_payment", "refunded");
	/* The payout stays: the operator decides. */
	assert_payment(d.id, "service_payment", "released");
	char *flag = db_value1("SELECT metadata->>'transfer_reversed' FROM audit_logs "
	    "WHERE action = 'payment.refund' AND metadata->>'event_service_id' = $1", d.id);
	ck_assert_str_eq(flag, "false");
	free(flag);
	deal_free(&d);
}
END_TEST

START_TEST(paid_after_cancel_is_refunded_by_maintenance)
{
	/* The customer completes the payment form after the booking was
	 * cancelled: the money came in, maintenance gives it back. */
	struct deal d;
	deal(&d, false, false, false);
	cJSON *r = fx_expect(200, "POST", path_of("/api/event-services/%s/pay", d.id), &d.owner,
	    NULL);
	snprintf(d.pi, sizeof d.pi, "%s",
	    fx_str(cJSON_GetObjectItem(r, "payment"), "stripe_payment_intent_id"));
	cJSON_Delete(r);
	cJSON_Delete(fx_expect(200, "POST", path_of("/api/event-services/%s/cancel", d.id),
	    &d.provider, NULL));
	assert_status(d.id, "cancelled");
	cJSON_Delete(fake("POST", path_of("/_fake/payment_intents/%s/succeed", d.pi), "{}"));
	ck_assert_int_eq(send_event("payment_intent.succeeded", d.pi, NULL, NULL), 200);
	assert_status(d.id, "cancelled");
	assert_payment(d.id, "customer_payment", "succeeded");
	ck_assert_int_eq(run_maintenance(), 0);
	assert_payment(d.id, "customer_payment", "refunded");
	assert_status(d.id, "cancelled");
	char key[128];
	snprintf(key, sizeof key, "refund:%s", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 1);
	ck_assert_int_eq(fake_count("refund", "payment_intent", d.pi), 1);
	ck_assert_int_eq(fx_audit_count("payment.refund", d.id), 1);
	/* Nothing more to do at the next run. */
	ck_assert_int_eq(run_maintenance(), 0);
	ck_assert_int_eq(fake_requests("POST", key), 1);
	deal_free(&d);
}
END_TEST

/* -------------------------------------------------------- onboarding */

START_TEST(onboarding_is_the_owners_and_makes_one_account)
{
	struct deal d;
	deal(&d, false, false, false);
	struct fx_user other;
	fx_user(&other, "provider", true);
	fx_expect_error(403, "forbidden", NULL, "POST",
	    path_of("/api/providers/%s/stripe-onboarding", d.provider_id), &other, NULL);
	fx_expect_error(403, "forbidden", NULL, "POST",
	    path_of("/api/providers/%s/stripe-onboarding", d.provider_id), &d.admin, NULL);
	char unknown[37];
	crypto_uuid4(unknown);
	fx_expect_error(404, "not_found", NULL, "POST",
	    path_of("/api/providers/%s/stripe-onboarding", unknown), &d.provider, NULL);

	enum { N = 4 };
	struct racer rs[N];
	pthread_t th[N];
	const char *path = path_of("/api/providers/%s/stripe-onboarding", d.provider_id);
	for (int i = 0; i < N; i++) {
		rs[i] = (struct racer){ .path = path, .token = d.provider.token };
		pthread_create(&th[i], NULL, race, &rs[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(rs[i].status == 200, "onboarding %d: %ld %s", i, rs[i].status, rs[i].code);
	}
	cJSON *r = fx_expect(200, "POST", path, &d.provider, NULL);
	char acct[128];
	snprintf(acct, sizeof acct, "%s", fx_str(r, "stripe_account_id"));
	ck_assert_int_eq(fake_count("account", "id", acct), 1);
	char *stored = db_value1("SELECT stripe_account_id FROM service_providers WHERE id = $1",
	    d.provider_id);
	ck_assert_str_eq(stored, acct);
	free(stored);
	/* One account for the provider, whatever the number of calls. */
	cJSON *accts = fake("GET", "/_fake/objects?type=account", NULL);
	int mine = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(accts, "data"))
		mine += strcmp(fx_str(cJSON_GetObjectItem(it, "metadata"), "service_provider_id"),
		    d.provider_id) == 0;
	ck_assert_int_eq(mine, 1);
	cJSON_Delete(accts);
	cJSON_Delete(r);
	deal_free(&d);
}
END_TEST

/* ----------------------------------------------------------- webhook */

/* Posts a raw body to the webhook with a signature made here. */
static long post_webhook(const char *payload, const char *secret, long long t,
    const char *header_override)
{
	char mac[65], header[512], hline[600];
	char *msg = malloc(strlen(payload) + 32);
	sprintf(msg, "%lld.%s", t, payload);
	crypto_hmac_sha256_hex(secret ? secret : "none", msg, strlen(msg), mac);
	free(msg);
	snprintf(header, sizeof header, "t=%lld,v1=%s", t, mac);
	const char *hs[3] = { "Content-Type: application/json; charset=utf-8", NULL, NULL };
	if (header_override != NULL) {
		snprintf(hline, sizeof hline, "Stripe-Signature: %s", header_override);
		hs[1] = hline;
	} else if (secret != NULL) {
		snprintf(hline, sizeof hline, "Stripe-Signature: %s", header);
		hs[1] = hline;
	}
	struct http_resp r;
	ck_assert_int_eq(http_do("POST", "/api/webhooks/stripe", hs, payload, &r), 0);
	long status = r.status;
	if (status == 403)
		ck_assert_str_eq(http_error_code(&r), "invalid_signature");
	http_resp_free(&r);
	return status;
}

START_TEST(webhook_signatures)
{
	long long now = (long long)time(NULL);
	char payload[256];
	snprintf(payload, sizeof payload, "{\"id\":\"evt_sig_%d_%lld\",\"object\":\"event\","
	    "\"type\":\"gala.test.unknown\",\"created\":%lld,\"data\":{\"object\":{}}}",
	    (int)getpid(), now, now);
	ck_assert_int_eq(post_webhook(payload, NULL, now, NULL), 403);              /* missing */
	ck_assert_int_eq(post_webhook(payload, "whsec_wrong", now, NULL), 403);     /* invalid */
	/* Past the 300 s tolerance by more than the seconds this test may
	 * take to reach the server (now + 301 flaked across a second tick). */
	ck_assert_int_eq(post_webhook(payload, "whsec_test_a", now - 310, NULL), 403); /* expired */
	ck_assert_int_eq(post_webhook(payload, "whsec_test_a", now + 310, NULL), 403); /* future */
	ck_assert_int_eq(post_webhook(payload, NULL, now, "t=abc,v1=00"), 403);
	ck_assert_int_eq(post_webhook(payload, "whsec_test_a", now, NULL), 200);
	/* The second secret of STRIPE_WEBHOOK_SECRET (a rolled secret). */
	ck_assert_int_eq(post_webhook(payload, "whsec_test_b", now, NULL), 200);
	/* Signed, but not JSON. */
	ck_assert_int_eq(post_webhook("{\"id\": \"evt_broken\",", "whsec_test_a", now, NULL), 400);
	ck_assert_int_eq(post_webhook("[1, 2, 3]", "whsec_test_a", now, NULL), 400);

	/* Stripe's own wire format through the fake, second secret, with the
	 * v0 entry test mode adds: accepted; an unknown type is ignored. */
	cJSON *out = fake("POST", "/_fake/webhooks/send", "{\"type\":\"invoice.created\","
	    "\"object\":{\"id\":\"in_x\",\"object\":\"invoice\"},\"secret\":\"whsec_test_b\","
	    "\"include_v0\":true}");
	ck_assert_int_eq((int)cJSON_GetObjectItem(out, "status")->valuedouble, 200);
	ck_assert_msg(strstr(fx_str(out, "body"), "\"received\":true") != NULL, "%s",
	    fx_str(out, "body"));
	cJSON_Delete(out);

	/* Every event id is processed once, an ignored type's too: its
	 * redelivery is answered as a duplicate. */
	char body[256];
	snprintf(body, sizeof body, "{\"type\":\"invoice.created\",\"id\":\"evt_ign_%d_%lld\","
	    "\"object\":{\"id\":\"in_y\",\"object\":\"invoice\"}}", (int)getpid(), now);
	for (int i = 0; i < 2; i++) {
		out = fake("POST", "/_fake/webhooks/send", body);
		ck_assert_int_eq((int)cJSON_GetObjectItem(out, "status")->valuedouble, 200);
		const char *b = fx_str(out, "body");
		ck_assert_msg(strstr(b, "\"received\":true") != NULL &&
		    (strstr(b, "\"duplicate\":true") != NULL) == (i == 1), "delivery %d: %s", i, b);
		cJSON_Delete(out);
	}
	/* Signed JSON that is no event: 400 as well. */
	ck_assert_int_eq(post_webhook("{\"id\":\"evt_no_type\"}", "whsec_test_a", now, NULL), 400);
}
END_TEST

START_TEST(without_stripe_configuration)
{
	/* No secret: webhooks are refused, even outside production, unless
	 * the loudly named opt-in is set; no key: the money routes answer 503
	 * with a clear message. */
	ck_assert_int_eq(stack_ctl("gala-start STRIPE_SECRET_KEY= STRIPE_WEBHOOK_SECRET="), 0);
	long long now = (long long)time(NULL);
	char payload[256];
	snprintf(payload, sizeof payload, "{\"id\":\"evt_unsigned_%d_%lld\",\"type\":\"x.y\","
	    "\"data\":{\"object\":{}}}", (int)getpid(), now);
	long refused_status = post_webhook(payload, NULL, now, NULL);
	ck_assert_int_eq(stack_ctl("gala-start STRIPE_SECRET_KEY= STRIPE_WEBHOOK_SECRET= "
	    "STRIPE_WEBHOOK_UNSIGNED_INSECURE_ALLOW=true"), 0);
	long unsigned_status = post_webhook(payload, NULL, now, NULL);
	struct deal d;
	deal(&d, false, false, false);
	long status;
	cJSON *r = fx_call("POST", path_of("/api/event-services/%s/pay", d.id), &d.owner, NULL,
	    &status);
	const char *code = fx_str(cJSON_GetObjectItem(r, "error"), "code");
	char code_copy[64];
	snprintf(code_copy, sizeof code_copy, "%s", code);
	cJSON_Delete(r);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
	ck_assert_int_eq(refused_status, 403);
	ck_assert_int_eq(unsigned_status, 200);
	ck_assert_int_eq(status, 503);
	ck_assert_str_eq(code_copy, "stripe_not_configured");
	assert_status(d.id, "accepted");
	deal_free(&d);
}
END_TEST

/* ------------------------------------------- the Stripe client itself */

static struct config client_cfg;

static void client_setup(void)
{
	setup();
	memset(&client_cfg, 0, sizeof client_cfg);
	client_cfg.stripe_secret_key = "sk_test_fake";
	client_cfg.stripe_api_base = (char *)test_env("TEST_STRIPE_URL");
	client_cfg.request_timeout_seconds = 5;
	gala_config = &client_cfg;
}

static const struct stripe_param customer[] = { { "email", "client@gala.test" },
	{ "metadata[purpose]", "client test" } };

START_TEST(client_retries_server_errors_under_one_key)
{
	arena_t *a = arena_new(4096);
	char key[64];
	snprintf(key, sizeof key, "client-5xx-%d-%ld", (int)getpid(), (long)time(NULL));
	fake_fail("{\"method\":\"POST\",\"path\":\"/v1/customers\",\"mode\":\"5xx\",\"times\":2}");
	struct stripe_result r;
	ck_assert_int_eq(stripe_call(a, "POST", "/v1/customers", customer, 2, key, &r), STRIPE_OK);
	ck_assert_int_eq(r.attempts, 3);
	ck_assert_str_eq(stripe_str(r.object, "email"), "client@gala.test");
	ck_assert_int_eq(fake_requests("POST", key), 3);

	/* Stripe-Should-Retry: false is obeyed; a 5xx is never a refusal. */
	snprintf(key, sizeof key, "client-noretry-%d-%ld", (int)getpid(), (long)time(NULL));
	fake_fail("{\"method\":\"POST\",\"path\":\"/v1/customers\",\"mode\":\"5xx\","
	    "\"should_retry\":false}");
	ck_assert_int_eq(stripe_call(a, "POST", "/v1/customers", customer, 2, key, &r),
	    STRIPE_AMBIGUOUS);
	ck_assert_int_eq(r.attempts, 1);
	ck_assert_str_eq(r.error_type, "api_error");

	/* 429 twice, then through. */
	snprintf(key, sizeof key, "client-429-%d-%ld", (int)getpid(), (long)time(NULL));
	fake_fail("{\"method\":\"POST\",\"path\":\"/v1/customers\",\"mode\":\"error\","
	    "\"status\":429,\"times\":2}");
	ck_assert_int_eq(stripe_call(a, "POST", "/v1/customers", customer, 2, key, &r), STRIPE_OK);
	ck_assert_int_eq(r.attempts, 3);
	arena_free(a);
}
END_TEST

START_TEST(client_reports_refusals_and_what_is_unknown)
{
	arena_t *a = arena_new(4096);
	struct stripe_result r;
	char key[64];
	snprintf(key, sizeof key, "client-card-%d-%ld", (int)getpid(), (long)time(NULL));
	fake_fail("{\"method\":\"POST\",\"path\":\"/v1/customers\",\"mode\":\"error\","
	    "\"status\":402}");
	ck_assert_int_eq(stripe_call(a, "POST", "/v1/customers", customer, 2, key, &r),
	    STRIPE_REFUSED);
	ck_assert_int_eq(r.http_status, 402);
	ck_assert_int_eq(r.attempts, 1);
	ck_assert_str_eq(r.error_type, "card_error");
	ck_assert_str_eq(r.error_code, "card_declined");
	ck_assert_str_eq(r.decline_code, "generic_decline");
	ck_assert_str_eq(r.message, "Your card was declined.");

	/* Unknown parameter: Stripe's invalid_request_error, param named. */
	const struct stripe_param bad[] = { { "colour", "red" } };
	snprintf(key, sizeof key, "client-bad-%d-%ld", (int)getpid(), (long)time(NULL));
	ck_assert_int_eq(stripe_call(a, "POST", "/v1/customers", bad, 1, key, &r), STRIPE_REFUSED);
	ck_assert_str_eq(r.error_type, "invalid_request_error");
	ck_assert_str_eq(r.error_param, "colour");

	/* A GET of a missing object; the query string is encoded like a form. */
	const struct stripe_param q[] = { { "expand[]", "latest_charge" } };
	ck_assert_int_eq(stripe_call(a, "GET", "/v1/payment_intents/pi_missing", q, 1, NULL, &r),
	    STRIPE_REFUSED);
	ck_assert_int_eq(r.http_status, 404);
	ck_assert_str_eq(r.error_code, "resource_missing");

	/* No answer within the budget after the request went out: unknown. */
	snprintf(key, sizeof key, "client-hang-%d-%ld", (int)getpid(), (long)time(NULL));
	fake_fail("{\"method\":\"POST\",\"path\":\"/v1/customers\",\"mode\":\"hang\","
	    "\"delay_ms\":8000}");
	long long t0 = (long long)time(NULL);
	ck_assert_int_eq(stripe_call(a, "POST", "/v1/customers", customer, 2, key, &r),
	    STRIPE_AMBIGUOUS);
	ck_assert_msg((long long)time(NULL) - t0 < client_cfg.request_timeout_seconds,
	    "the call outlived the request timeout");

	/* Nobody listening: nothing can have happened. */
	client_cfg.stripe_api_base = "http://127.0.0.1:9";
	ck_assert_int_eq(stripe_call(a, "POST", "/v1/customers", customer, 2, "client-closed", &r),
	    STRIPE_UNAVAILABLE);
	client_cfg.stripe_secret_key = NULL;
	ck_assert_int_eq(stripe_call(a, "POST", "/v1/customers", customer, 2, "client-nokey", &r),
	    STRIPE_NOT_CONFIGURED);
	arena_free(a);
}
END_TEST

START_TEST(client_sends_stripes_wire_format)
{
	arena_t *a = arena_new(4096);
	struct stripe_result r;
	char key[64];
	snprintf(key, sizeof key, "client-wire-%d-%ld", (int)getpid(), (long)time(NULL));
	const struct stripe_param p[] = { { "email", "wire+test@gala.test" },
		{ "name", "Dîner & Co = 100%" }, { "metadata[k y]", "v&w" } };
	ck_assert_int_eq(stripe_call(a, "POST", "/v1/customers", p, 3, key, &r), STRIPE_OK);
	ck_assert_str_eq(stripe_str(r.object, "name"), "Dîner & Co = 100%");
	ck_assert_str_eq(stripe_str(cJSON_GetObjectItem(r.object, "metadata"), "k y"), "v&w");
	char *esc = curl_easy_escape(NULL, key, 0);
	char path[256];
	snprintf(path, sizeof path, "/_fake/requests?idempotency_key=%s", esc);
	curl_free(esc);
	cJSON *log = fake("GET", path, NULL);
	const cJSON *req = cJSON_GetArrayItem(cJSON_GetObjectItem(log, "requests"), 0);
	const cJSON *h = cJSON_GetObjectItem(req, "headers");
	ck_assert_str_eq(fx_str(h, "Authorization"), "Bearer sk_test_fake");
	ck_assert_str_eq(fx_str(h, "Stripe-Version"), STRIPE_API_VERSION);
	ck_assert_str_eq(fx_str(h, "Idempotency-Key"), key);
	ck_assert_msg(strncmp(fx_str(h, "Content-Type"), "application/x-www-form-urlencoded", 33)
	    == 0, "%s", fx_str(h, "Content-Type"));
	cJSON_Delete(log);
	/* Replaying the key replays the object. */
	struct stripe_result again;
	ck_assert_int_eq(stripe_call(a, "POST", "/v1/customers", p, 3, key, &again), STRIPE_OK);
	ck_assert_str_eq(stripe_str(again.object, "id"), stripe_str(r.object, "id"));
	/* POST without a key is never sent. */
	ck_assert_int_eq(stripe_call(a, "POST", "/v1/customers", p, 3, NULL, &r), STRIPE_REFUSED);
	arena_free(a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-money");
	TCase *client = tcase_create("stripe-client");
	tcase_add_checked_fixture(client, client_setup, NULL);
	tcase_set_timeout(client, 60);
	tcase_add_test(client, client_sends_stripes_wire_format);
	tcase_add_test(client, client_retries_server_errors_under_one_key);
	tcase_add_test(client, client_reports_refusals_and_what_is_unknown);
	suite_add_tcase(s, client);

	TCase *pay = tcase_create("pay");
	tcase_add_checked_fixture(pay, setup, NULL);
	tcase_set_timeout(pay, 60);
	tcase_add_test(pay, pay_creates_intent_and_webhook_marks_paid);
	tcase_add_test(pay, failed_payment_then_new_intent);
	tcase_add_test(pay, success_after_a_decline_on_the_same_intent);
	suite_add_tcase(s, pay);

	TCase *release = tcase_create("release");
	tcase_add_checked_fixture(release, setup, NULL);
	tcase_set_timeout(release, 90);
	tcase_add_test(release, release_transfers_to_connected_account);
	tcase_add_test(release, release_before_completion_or_onboarding);
	tcase_add_test(release, release_waits_for_the_event_and_the_hold);
	tcase_add_test(release, fifty_concurrent_releases_one_transfer);
	tcase_add_test(release, stripe_refusal_rolls_the_payout_back);
	tcase_add_test(release, stripe_timeout_then_retry_completes);
	tcase_add_test(release, stuck_payout_without_transfer_is_retried_under_its_key);
	tcase_add_test(release, worker_killed_during_transfer_then_maintenance);
	tcase_add_test(release, worker_killed_during_keyed_transfer_then_maintenance);
	suite_add_tcase(s, release);

	TCase *refund = tcase_create("refund");
	tcase_add_checked_fixture(refund, setup, NULL);
	tcase_set_timeout(refund, 60);
	tcase_add_test(refund, cancel_of_paid_booking_refunds);
	tcase_add_test(refund, admin_refund_of_released_reverses_transfer_first);
	tcase_add_test(refund, concurrent_refunds_refund_once);
	tcase_add_test(refund, refund_outside_gala_after_payout_is_audited);
	tcase_add_test(refund, paid_after_cancel_is_refunded_by_maintenance);
	suite_add_tcase(s, refund);

	TCase *misc = tcase_create("onboarding-webhooks");
	tcase_add_checked_fixture(misc, setup, NULL);
	tcase_set_timeout(misc, 60);
	tcase_add_test(misc, onboarding_is_the_owners_and_makes_one_account);
	tcase_add_test(misc, webhook_signatures);
	tcase_add_test(misc, without_stripe_configuration);
	suite_add_tcase(s, misc);

	return test_run_suite(s);
}
