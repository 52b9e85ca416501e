/* The fault matrix, Postgres (issue 14, part 5): the database restarts
 * under a mixed load, and is down when the pool starts. Every answer while
 * it is gone is the API's JSON 503 database_unavailable, never another
 * error and never a hang; once it is back, every request succeeds without
 * a restart of gala, and no worker died on the way. */
#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault_load.h"
#include "e2e/market_fixtures.h"
#include "testlib.h"

#define LOAD_THREADS 3

static int events_titled(PGconn *db, const char *title)
{
	const char *p[] = { title };
	char *n = test_db_value(db, "SELECT count(*) FROM events WHERE title = $1", 1, p);
	int count = n ? atoi(n) : -1;
	free(n);
	return count;
}

static void assert_no_other_answers(const struct load *l)
{
	for (int p = 0; p < PHASE__COUNT; p++)
		ck_assert_msg(l->tally[p].other == 0, "phase %d: %ld answers neither 2xx nor "
		    "503 database_unavailable; first: %s", p, l->tally[p].other, l->tally[p].sample);
}

/* A create the load got 503 for, sent again with its key until it is done:
 * what a client does. The first attempt may hold the key for the stale
 * period (its worker lost the database before settling it): 409 with
 * Retry-After meanwhile. */
static void retry_create(struct fclient *c, const char *token, const struct load_create *cr)
{
	const char *title = cr->title;
	long st = 0;
	for (int i = 0; i < 60; i++) {
		st = fclient_do(c, "POST", "/api/events", token, title, cr->body);
		if (st != 409)
			break;
		ck_assert_msg(fclient_error_problem(c, st, 409, "idempotency_key_in_use") == NULL,
		    "retry of %s: %s", title, c->body);
		sleep(1);
	}
	ck_assert_msg(st == 201, "retry of %s: %ld %s", title, st, c->body);
}

/* mode: "" (fast shutdown: in-flight statements are cancelled, everything
 * committed is on disk) or "--immediate" (a crash: recovery at start). */
static void restart_under_load(const char *mode)
{
	struct fx_user u;
	fx_user(&u, "customer", true);
	char *event = fx_event(&u);
	char *workers = fault_worker_pids();
	int master = fault_master_pid();
	long log_from = fault_log_size();

	static struct load l;
	load_start(&l, u.token, event, LOAD_THREADS);
	sleep(1);
	load_set_phase(&l, PHASE_FAULT);
	ck_assert_int_eq(stack_ctl("pg-stop %s", mode), 0);
	sleep(2);
	ck_assert_int_eq(stack_ctl("pg-start"), 0);
	/* Every worker's next request reconnects: the first health 200 means
	 * the database is back for everyone. */
	ck_assert_msg(fault_wait_health(200, 10), "health is not 200 after the restart");
	load_set_phase(&l, PHASE_AFTER);
	sleep(2);
	load_stop(&l);
	load_report(&l, *mode ? "immediate restart" : "fast restart");

	assert_no_other_answers(&l);
	ck_assert_int_gt(l.tally[PHASE_BEFORE].ok, 0);
	ck_assert_msg(l.tally[PHASE_FAULT].unavailable > 0, "no request met the outage");
	ck_assert_msg(l.tally[PHASE_AFTER].ok == l.tally[PHASE_AFTER].requests &&
	    l.tally[PHASE_AFTER].ok > 0, "after recovery: %ld of %ld succeeded",
	    l.tally[PHASE_AFTER].ok, l.tally[PHASE_AFTER].requests);

	/* The same pool: no restart, no worker lost. */
	ck_assert_int_eq(fault_master_pid(), master);
	char *now = fault_worker_pids();
	ck_assert_msg(strcmp(now, workers) == 0, "workers %s became %s", workers, now);
	free(now);
	ck_assert_int_eq(fault_log_count(log_from, "\"worker killed by signal\""), 0);
	ck_assert_int_eq(fault_log_count(log_from, "\"worker exited with an error\""), 0);

	/* Nothing acknowledged is lost, nothing refused was done, and a create
	 * retried under its key happens once. A crash of this test cluster
	 * (fsync and synchronous_commit off) may lose acknowledged commits, so
	 * that part holds for the fast shutdown only. */
	PGconn *db = test_db_superuser();
	struct fclient c;
	fclient_init(&c);
	int retried = 0;
	for (int i = 0; i < l.ncreates; i++) {
		const struct load_create *cr = &l.creates[i];
		if (cr->status == 503 && cr->keyed) {
			retry_create(&c, u.token, cr);
			retried++;
		}
		if (*mode != '\0')
			continue;
		int want = cr->status == 201 || cr->keyed ? 1 : 0;
		int have = events_titled(db, cr->title);
		ck_assert_msg(have == want, "create %s (%s, first answer %ld): %d events, want %d",
		    cr->title, cr->keyed ? "keyed" : "no key", cr->status, have, want);
	}
	printf("%d creates, %d retried under their key after the outage\n", l.ncreates, retried);
	fclient_free(&c);
	PQfinish(db);
	free(workers);
	free(event);
}

START_TEST(postgres_restarts_under_load)
{
	restart_under_load("");
}
END_TEST

START_TEST(postgres_crashes_under_load)
{
	restart_under_load("--immediate");
}
END_TEST

/* The pool starts while Postgres is down: it serves (JSON 503 where the
 * database is needed, everything else as usual) and needs nothing but the
 * database coming back. */
START_TEST(postgres_down_when_gala_starts)
{
	struct fx_user u;
	fx_user(&u, "customer", true);
	char *event = fx_event(&u);
	char path[128];
	snprintf(path, sizeof path, "/api/events/%s", event);

	ck_assert_int_eq(stack_ctl("gala-stop"), 0);
	ck_assert_int_eq(stack_ctl("pg-stop"), 0);
	long log_from = fault_log_size();
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
	int master = fault_master_pid();
	ck_assert_int_gt(master, 0);

	struct fclient c;
	fclient_init(&c);
	for (int i = 0; i < 6; i++) {
		long st = fclient_do(&c, "GET", "/api/health", NULL, NULL, NULL);
		const char *bad = fclient_error_problem(&c, st, 503, "database_unavailable");
		ck_assert_msg(bad == NULL, "health: %s: %s", bad, c.body);
		ck_assert_ptr_nonnull(strstr(c.body, "\"database\":\"unavailable\""));
		st = fclient_do(&c, "GET", path, u.token, NULL, NULL);
		bad = fclient_error_problem(&c, st, 503, "database_unavailable");
		ck_assert_msg(bad == NULL, "read: %s: %s", bad, c.body);
		st = fclient_do(&c, "POST", "/api/auth/login", NULL, NULL,
		    "{\"email\":\"nobody@gala.test\",\"password\":\"Gala-test-pass-42\"}");
		bad = fclient_error_problem(&c, st, 503, "database_unavailable");
		ck_assert_msg(bad == NULL, "login: %s: %s", bad, c.body);
		/* What needs no database is answered as always. */
		st = fclient_do(&c, "GET", "/api/no-such-route", NULL, NULL, NULL);
		bad = fclient_error_problem(&c, st, 404, "not_found");
		ck_assert_msg(bad == NULL, "unknown route: %s: %s", bad, c.body);
		st = fclient_do(&c, "POST", "/api/events", u.token, NULL, "{\"title\":");
		bad = fclient_error_problem(&c, st, 400, "malformed_json");
		ck_assert_msg(bad == NULL, "malformed body: %s: %s", bad, c.body);
	}
	char *workers = fault_worker_pids();

	ck_assert_int_eq(stack_ctl("pg-start"), 0);
	ck_assert_msg(fault_wait_health(200, 10), "health is not 200 once Postgres is up");
	for (int i = 0; i < 12; i++) {
		long st = fclient_do(&c, "GET", path, u.token, NULL, NULL);
		ck_assert_msg(st == 200, "read after start: %ld %s", st, c.body);
	}
	long st = fclient_do(&c, "POST", "/api/events", u.token, NULL,
	    "{\"title\":\"after the database came\",\"starts_at\":\"2031-01-01T10:00:00Z\"}");
	ck_assert_msg(st == 201, "create after start: %ld %s", st, c.body);
	fclient_free(&c);

	ck_assert_int_eq(fault_master_pid(), master);
	char *now = fault_worker_pids();
	ck_assert_msg(strcmp(now, workers) == 0, "workers %s became %s", workers, now);
	free(now);
	free(workers);
	ck_assert_int_eq(fault_log_count(log_from, "\"worker killed by signal\""), 0);
	ck_assert_int_eq(fault_log_count(log_from, "\"worker exited with an error\""), 0);
	/* The outage is in the log, once a second at most per worker. */
	ck_assert_int_gt(fault_log_count(log_from, "\"database connection failed\""), 0);
	free(event);
}
END_TEST

int main(void)
{
	fx_init();
	Suite *s = suite_create("fault: postgres");
	TCase *tc = tcase_create("postgres");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, postgres_restarts_under_load);
	tcase_add_test(tc, postgres_crashes_under_load);
	tcase_add_test(tc, postgres_down_when_gala_starts);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
