/* End to end: releases in flight when PostgreSQL fails over (issue 13,
 * part 4). The pool's DATABASE_URL names the primary and a synchronous
 * replica (target_session_attrs=read-write). Two releases wait on a slow
 * Stripe, their payout rows committed, when the primary stops and the
 * replica is promoted; Stripe then makes both transfers, which the old
 * primary can no longer record. One release is finished by the client
 * sending it again with the same Idempotency-Key, the other by
 * gala maintenance: each ends with exactly one transfer at Stripe and a
 * payout row that names it. */
#include "autoconf.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "market_fixtures.h"
#include "money_fixtures.h"
#include "services/payouts.h"
#include "testlib.h"

/* How long Stripe takes over each transfer: the failover happens meanwhile. */
#define TRANSFER_MS 3000

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct release {
	pthread_t thread;
	const struct deal *d;
	const char *key;        /* Idempotency-Key */
	long status;
	char code[64];
};

static long release_once(const struct deal *d, const char *key, char *code, size_t code_len)
{
	char auth[1200], idem[128];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", d->owner.token);
	snprintf(idem, sizeof idem, "Idempotency-Key: %s", key);
	const char *h[] = { auth, idem, NULL };
	struct http_resp r;
	long status = http_do("POST", path_of("/api/event-services/%s/release", d->id), h, NULL,
	    &r) == 0 ? r.status : 0;
	snprintf(code, code_len, "%s", http_error_code(&r));
	http_resp_free(&r);
	return status;
}

static void *release_run(void *arg)
{
	struct release *r = arg;
	r->status = release_once(r->d, r->key, r->code, sizeof r->code);
	return NULL;
}

static void payout_key(char *out, size_t len, const struct deal *d)
{
	snprintf(out, len, "release_payment:%s", d->id);
}

/* Makes the payout look older than PAYOUT_IN_PROGRESS_SECONDS: stuck, as
 * it would be after that wait. */
static void backdate_payout(const struct deal *d)
{
	char age[16];
	snprintf(age, sizeof age, "%d", PAYOUT_IN_PROGRESS_SECONDS + 60);
	fx_sql("UPDATE payments SET updated_at = now() - make_interval(secs => $2::int), "
	    "created_at = now() - make_interval(secs => $2::int) WHERE event_service_id = $1 "
	    "AND payment_type = 'service_payment'", d->id, age, NULL);
}

/* Exactly one transfer at Stripe, and the payout row (released) names it. */
static void assert_paid_once(const struct deal *d)
{
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d->id), 1);
	cJSON *t = fake_find("transfer", "transfer_group", d->id);
	char *stored = db_value1("SELECT stripe_transfer_id FROM payments WHERE event_service_id = "
	    "$1 AND payment_type = 'service_payment' AND status = 'released'", d->id);
	ck_assert_msg(stored != NULL, "no released payout row for %s", d->id);
	ck_assert_str_eq(stored, fx_str(t, "id"));
	free(stored);
	cJSON_Delete(t);
	char *rows = db_value1("SELECT count(*) FROM payments WHERE event_service_id = $1 "
	    "AND payment_type = 'service_payment'", d->id);
	ck_assert_str_eq(rows, "1");
	free(rows);
	assert_status(d->id, "released");
	ck_assert_int_eq(fx_audit_count("payment.release", d->id), 1);
}

static int run_maintenance(void)
{
	/* The pool's own settings: its DATABASE_URL names both servers. */
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "env -i PATH=\"$PATH\" ENV_FILE='%s/run/gala-current.env' '%s' "
	    "maintenance >>'%s' 2>&1", test_env("TEST_STACK_DIR"), test_env("GALA_BIN"),
	    test_env("TEST_GALA_LOG"));
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

START_TEST(releases_in_flight_at_failover_pay_once)
{
	char *url = stack_ctl_output("replica-start");
	ck_assert_msg(url != NULL && strstr(url, "target_session_attrs=read-write") != NULL,
	    "replica-start: %s", url ? url : "(nothing)");
	/* The fixtures' own connections follow the primary too. */
	setenv("TEST_DATABASE_URL", url, 1);
	ck_assert_int_eq(stack_ctl("gala-start 'DATABASE_URL=%s'", url), 0);
	free(url);
	fx_init();
	cJSON_Delete(fake("DELETE", "/_fake/fail", NULL));

	struct deal by_retry, by_maintenance;
	deal(&by_retry, true, true, true);
	deal(&by_maintenance, true, true, true);
	char body[160];
	snprintf(body, sizeof body, "{\"method\":\"POST\",\"path\":\"/v1/transfers\",\"mode\":\"slow\","
	    "\"delay_ms\":%d,\"times\":2}", TRANSFER_MS);
	fake_fail(body);
	struct release rs[2] = {
		{ .d = &by_retry, .key = "failover-release-1" },
		{ .d = &by_maintenance, .key = "failover-release-2" },
	};
	for (int i = 0; i < 2; i++)
		pthread_create(&rs[i].thread, NULL, release_run, &rs[i]);
	/* Both transfers have reached Stripe: the payout rows are committed,
	 * and the workers wait on Stripe's answer. */
	char key1[128], key2[128];
	payout_key(key1, sizeof key1, &by_retry);
	payout_key(key2, sizeof key2, &by_maintenance);
	bool waiting = false;
	for (int i = 0; i < 200 && !waiting; i++) {
		waiting = fake_requests("POST", key1) == 1 && fake_requests("POST", key2) == 1;
		if (!waiting)
			usleep(25000);
	}
	ck_assert_msg(waiting, "the transfer requests never reached the fake");
	long long sent = now_ms();
	ck_assert_int_eq(stack_ctl("pg-stop"), 0);
	ck_assert_int_eq(stack_ctl("replica-promote"), 0);
	ck_assert_msg(now_ms() - sent < TRANSFER_MS, "the failover took longer than the transfer: "
	    "the releases were no longer in flight");
	for (int i = 0; i < 2; i++)
		pthread_join(rs[i].thread, NULL);
	/* Stripe made both transfers; what the releases answered depends on
	 * when their workers met the new primary, never a success without a
	 * record of it. */
	for (int i = 0; i < 2; i++) {
		fprintf(stderr, "release %d in flight at the failover answered %ld %s\n", i + 1,
		    rs[i].status, rs[i].code);
		ck_assert_msg(rs[i].status == 200 || rs[i].status == 503 || (rs[i].status == 502 &&
		    strcmp(rs[i].code, "payout_unconfirmed") == 0), "release %d: %ld %s", i + 1,
		    rs[i].status, rs[i].code);
		ck_assert_int_eq(fake_count("transfer", "transfer_group", rs[i].d->id), 1);
		/* Unanswered: the payout waits, in progress, for its completer. */
		if (rs[i].status != 200)
			assert_payment(rs[i].d->id, "service_payment", "payout_started");
	}

	/* The client sends its release again with the same key until it is
	 * done: once the payout is stuck (backdated: no 60 s wait), the
	 * release adopts the transfer Stripe made. Bounded: 60 tries, 30 s. */
	long status = rs[0].status;
	char code[64] = "";
	long long until = now_ms() + 30000;
	for (int i = 0; i < 60 && status != 200 && now_ms() < until; i++) {
		status = release_once(&by_retry, rs[0].key, code, sizeof code);
		if (status == 409 && strcmp(code, "payout_in_progress") == 0)
			backdate_payout(&by_retry);
		else if (status != 200)
			usleep(500000);
	}
	ck_assert_msg(status == 200, "the retried release ended %ld %s", status, code);
	assert_paid_once(&by_retry);
	ck_assert_int_eq(fake_requests("POST", key1), 1);

	/* The other one: gala maintenance completes it when it is stuck. */
	if (rs[1].status != 200) {
		backdate_payout(&by_maintenance);
		ck_assert_int_eq(run_maintenance(), 0);
	}
	assert_paid_once(&by_maintenance);
	ck_assert_int_eq(fake_requests("POST", key2), 1);
	deal_free(&by_retry);
	deal_free(&by_maintenance);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("failover_release");
	TCase *tc = tcase_create("failover_release");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, releases_in_flight_at_failover_pay_once);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
