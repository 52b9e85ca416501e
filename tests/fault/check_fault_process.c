/* The fault matrix, the pool's processes and its log (issue 14, part 5):
 * a worker killed with SIGKILL in the middle of a request (nginx answers a
 * write with its JSON 502 and sends a read once more; the master starts a
 * new worker; nothing half done stays), and a log target that takes nothing more (/dev/full, a pipe nobody reads,
 * a pipe whose reader left): the pool serves as if nothing happened. */
#include "autoconf.h"

#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e/market_fixtures.h"
#include "fault_load.h"
#include "testlib.h"

/* ----------------------------------------------------- a killed worker */

struct inflight {
	pthread_t thread;
	const char *method, *path, *token, *key, *body;
	long status;
	struct fclient c;
};

static void *send_inflight(void *p)
{
	struct inflight *f = p;
	f->status = fclient_do(&f->c, f->method, f->path, f->token, f->key, f->body);
	return NULL;
}

/* Holds an exclusive lock on table until release_lock: a request that
 * touches it waits in Postgres, in flight. */
static PGconn *hold_lock(const char *table)
{
	PGconn *db = test_db_superuser();
	PQclear(PQexec(db, "BEGIN"));
	char sql[128];
	snprintf(sql, sizeof sql, "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", table);
	PGresult *r = PQexec(db, sql);
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	return db;
}

static void release_lock(PGconn *db)
{
	PQclear(PQexec(db, "COMMIT"));
	PQfinish(db);
}

static bool backend_waits_on_lock(void)
{
	PGconn *db = test_db_superuser();
	char *n = test_db_value(db, "SELECT count(*) FROM pg_stat_activity "
	    "WHERE wait_event_type = 'Lock' AND application_name = 'gala'", 0, NULL);
	PQfinish(db);
	bool waiting = n != NULL && atoi(n) > 0;
	free(n);
	return waiting;
}

static int count_words(const char *s)
{
	int n = 0;
	for (const char *p = s; *p != '\0'; p++)
		n += p[0] != ' ' && (p[1] == ' ' || p[1] == '\0');
	return n;
}

/* Whether pid is one of the space-separated pids. */
static bool has_pid(const char *pids, int pid)
{
	char padded[1024], needle[24];
	snprintf(padded, sizeof padded, " %s ", pids);
	snprintf(needle, sizeof needle, " %d ", pid);
	return strstr(padded, needle) != NULL;
}

/* Starts the request, waits until it is in flight (its statement waits on
 * the lock), then kills the pool's one worker: the one serving it. Returns
 * its pid; the request goes on in its thread. */
static int kill_the_worker_serving(struct inflight *f)
{
	fclient_init(&f->c);
	pthread_create(&f->thread, NULL, send_inflight, f);
	bool waiting = false;
	for (int i = 0; i < 100 && !waiting; i++) {
		waiting = backend_waits_on_lock();
		if (!waiting)
			usleep(50000);
	}
	ck_assert_msg(waiting, "the request never reached the database");
	char *pids = fault_worker_pids();
	ck_assert_msg(count_words(pids) == 1, "workers %s, want one", pids);
	int victim = atoi(pids);
	free(pids);
	ck_assert_int_eq(kill(victim, SIGKILL), 0);
	return victim;
}

/* The pool is back to its size with new workers, the master logged each
 * death, and everyone is served again. */
static void assert_pool_recovered(int master, int killed, long log_from)
{
	bool back = false;
	for (int i = 0; i < 50 && !back; i++) {
		char *now = fault_worker_pids();
		back = count_words(now) == 1 && !has_pid(now, killed);
		free(now);
		if (!back)
			usleep(100000);
	}
	ck_assert_msg(back, "no new worker in place of %d", killed);
	ck_assert_int_eq(fault_master_pid(), master);
	char death[64];
	snprintf(death, sizeof death, "\"pid\":%d,\"signal\":9", killed);
	ck_assert_int_eq(fault_log_count(log_from, "\"worker killed by signal\""), 1);
	ck_assert_int_eq(fault_log_count(log_from, death), 1);
	struct fclient c;
	fclient_init(&c);
	for (int i = 0; i < 20; i++) {
		long st = fclient_do(&c, "GET", "/api/health", NULL, NULL, NULL);
		ck_assert_msg(st == 200, "health after the kill: %ld %s", st, c.body);
	}
	fclient_free(&c);
}

/* One worker: the one serving the request is the one there is. */
static void one_worker(void)
{
	ck_assert_int_eq(stack_ctl("gala-start WORKERS=1"), 0);
}

static void default_workers(void)
{
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
}

/* nginx sends a read whose worker died once more (fastcgi_next_upstream
 * error), to the worker the master started in its place: the client never
 * sees the death. */
START_TEST(worker_killed_during_a_read)
{
	int master = fault_master_pid();
	long log_from = fault_log_size();
	PGconn *lock = hold_lock("schema_migrations");      /* health reads it */
	struct inflight f = { .method = "GET", .path = "/api/health" };
	int killed = kill_the_worker_serving(&f);
	release_lock(lock);
	pthread_join(f.thread, NULL);
	ck_assert_msg(f.status == 200, "the read of the killed worker: %ld %s", f.status, f.c.body);
	fclient_free(&f.c);
	assert_pool_recovered(master, killed, log_from);
}
END_TEST

/* A create whose worker dies before it commits leaves nothing, and the
 * client's retry under the same Idempotency-Key creates it once. */
START_TEST(worker_killed_during_a_write)
{
	struct fx_user u;
	fx_user(&u, "customer", true);
	int master = fault_master_pid();
	long log_from = fault_log_size();
	char title[64], body[256];
	snprintf(title, sizeof title, "killed-%d", (int)getpid());
	snprintf(body, sizeof body, "{\"title\":\"%s\",\"starts_at\":\"2031-01-01T10:00:00Z\"}",
	    title);
	PGconn *lock = hold_lock("events");
	struct inflight f = { .method = "POST", .path = "/api/events", .token = u.token,
		.key = title, .body = body };
	int killed = kill_the_worker_serving(&f);
	pthread_join(f.thread, NULL);
	/* Postgres notices that its client is gone while the statement waits
	 * (client_connection_check_interval, schema 0018) and aborts it: the
	 * lock going now lets nothing through. */
	usleep(1500000);
	release_lock(lock);
	const char *bad = fclient_error_problem(&f.c, f.status, 502, "bad_gateway");
	ck_assert_msg(bad == NULL, "the request of the killed worker: %s: %s", bad, f.c.body);
	assert_pool_recovered(master, killed, log_from);

	PGconn *db = test_db_superuser();
	const char *p[] = { title };
	const char *count_sql = "SELECT count(*) FROM events WHERE title = $1";
	char *count = test_db_value(db, count_sql, 1, p);
	ck_assert_msg(strcmp(count, "0") == 0, "the killed create made %s events", count);
	free(count);
	/* The retry: the key is held by the dead attempt until it is stale
	 * (REQUEST_TIMEOUT_SECONDS + 10 s, here made so), then it runs, once. */
	long st = fclient_do(&f.c, "POST", "/api/events", u.token, title, body);
	bad = fclient_error_problem(&f.c, st, 409, "idempotency_key_in_use");
	ck_assert_msg(bad == NULL, "retry at once: %s: %s", bad, f.c.body);
	PQclear(PQexecParams(db, "UPDATE idempotency_keys SET locked_at = locked_at - "
	    "interval '1 hour' WHERE key = $1", 1, NULL, p, NULL, NULL, 0));
	st = fclient_do(&f.c, "POST", "/api/events", u.token, title, body);
	ck_assert_msg(st == 201, "retry once stale: %ld %s", st, f.c.body);
	st = fclient_do(&f.c, "POST", "/api/events", u.token, title, body);
	ck_assert_msg(st == 201 && strstr(f.c.body, title) != NULL, "replay: %ld %s", st, f.c.body);
	count = test_db_value(db, count_sql, 1, p);
	ck_assert_msg(strcmp(count, "1") == 0, "%s events after the retries", count);
	free(count);
	fclient_free(&f.c);
	PQfinish(db);
}
END_TEST

/* ------------------------------------------------------- a full log */

/* Serves n requests of several kinds (reads, an authenticated write, a
 * refusal that logs a warning) and asserts each answer. */
static void serve_through(int n, const struct fx_user *u)
{
	struct fclient c;
	fclient_init(&c);
	char body[160];
	for (int i = 0; i < n; i++) {
		long st;
		switch (i % 4) {
		case 0:
			st = fclient_do(&c, "GET", "/api/health", NULL, NULL, NULL);
			ck_assert_msg(st == 200, "health #%d: %ld %s", i, st, c.body);
			break;
		case 1:
			st = fclient_do(&c, "GET", "/api/auth/me", u->token, NULL, NULL);
			ck_assert_msg(st == 200, "me #%d: %ld %s", i, st, c.body);
			break;
		case 2:
			snprintf(body, sizeof body, "{\"title\":\"log full %d\","
			    "\"starts_at\":\"2031-01-01T10:00:00Z\"}", i);
			st = fclient_do(&c, "POST", "/api/events", u->token, NULL, body);
			ck_assert_msg(st == 201, "create #%d: %ld %s", i, st, c.body);
			break;
		default:
			st = fclient_do(&c, "GET", "/api/auth/me", "not-a-token", NULL, NULL);
			ck_assert_msg(fclient_error_problem(&c, st, 401, "invalid_token") == NULL,
			    "bad token #%d: %ld %s", i, st, c.body);
		}
	}
	fclient_free(&c);
}

START_TEST(log_to_dev_full)
{
	struct fx_user u;
	fx_user(&u, "customer", true);
	ck_assert_int_eq(stack_ctl("gala-start --log /dev/full"), 0);
	serve_through(400, &u);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
}
END_TEST

static char *fifo_path(void)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/gala-stderr.fifo", test_env("TEST_STACK_DIR"));
	unlink(path);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	return path;
}

/* Everything waiting in the pipe (it is non-blocking), as one string. */
static char *drain(int fd)
{
	size_t cap = 1 << 20, len = 0;
	char *out = malloc(cap + 1);
	ssize_t got;
	while (len < cap && (got = read(fd, out + len, cap - len)) > 0)
		len += (size_t)got;
	out[len] = '\0';
	return out;
}

/* A pipe nobody reads: it fills after a few hundred lines, and a write
 * to it would wait for ever. Lines are dropped instead and counted. */
START_TEST(log_to_a_pipe_nobody_reads)
{
	struct fx_user u;
	fx_user(&u, "customer", true);
	const char *fifo = fifo_path();
	int reader = open(fifo, O_RDWR | O_NONBLOCK);     /* open, never read (yet) */
	ck_assert_int_ge(reader, 0);
	ck_assert_int_eq(stack_ctl("gala-start --log %s", fifo), 0);
	/* 64 KiB of pipe is a few hundred access lines: this is many times that. */
	serve_through(1000, &u);
	/* Once the reader catches up, the next line tells how many were lost. */
	free(drain(reader));
	serve_through(8, &u);
	usleep(200000);
	char *tail = drain(reader);
	ck_assert_msg(strstr(tail, "\"message\":\"log lines dropped: the log target was full\"") != NULL,
	    "no count of the dropped lines in: %.2000s", tail);
	ck_assert_ptr_nonnull(strstr(tail, "\"logger\":\"gala.access\""));
	free(tail);
	close(reader);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
	unlink(fifo);
}
END_TEST

/* The reader went away: every write fails with EPIPE (SIGPIPE is ignored). */
START_TEST(log_to_a_pipe_whose_reader_left)
{
	struct fx_user u;
	fx_user(&u, "customer", true);
	const char *fifo = fifo_path();
	int reader = open(fifo, O_RDWR | O_NONBLOCK);
	ck_assert_int_ge(reader, 0);
	ck_assert_int_eq(stack_ctl("gala-start --log %s", fifo), 0);
	serve_through(20, &u);
	close(reader);
	serve_through(400, &u);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
	unlink(fifo);
}
END_TEST

int main(void)
{
	fx_init();
	Suite *s = suite_create("fault: processes and the log");
	TCase *kill9 = tcase_create("kill -9");
	tcase_add_checked_fixture(kill9, one_worker, default_workers);
	tcase_set_timeout(kill9, 60);
	tcase_add_test(kill9, worker_killed_during_a_read);
	tcase_add_test(kill9, worker_killed_during_a_write);
	suite_add_tcase(s, kill9);
	TCase *log = tcase_create("log target full");
	tcase_set_timeout(log, 120);
	tcase_add_test(log, log_to_dev_full);
	tcase_add_test(log, log_to_a_pipe_nobody_reads);
	tcase_add_test(log, log_to_a_pipe_whose_reader_left);
	suite_add_tcase(s, log);
	return test_run_suite(s);
}
