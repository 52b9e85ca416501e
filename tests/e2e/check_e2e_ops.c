/* End-to-end tests of what an operator watches:
 * - GET /metrics through nginx: the Prometheus text the pool exposes,
 *   counted by route pattern, kept across worker deaths, read during a
 *   database outage, refused to addresses outside METRICS_ALLOW; promtool
 *   (Debian's prometheus package) checks the exposition;
 * - systemd's notification protocol (Type=notify), heard on a socket of the
 *   test's own as systemd would: READY, RELOADING, STATUS and STOPPING. */
#include "autoconf.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

/* The body of a scrape from loopback; fails the test unless it is 200. */
static char *scrape(void)
{
	struct http_resp r;
	ck_assert_int_eq(http_do("GET", "/metrics", NULL, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "GET /metrics answered %ld: %s", r.status, r.body);
	char *ct = http_header(&r, "Content-Type");
	ck_assert_msg(ct != NULL && strcmp(ct, "text/plain; version=0.0.4; charset=utf-8") == 0,
	    "Content-Type: %s", ct ? ct : "(none)");
	free(ct);
	char *body = strdup(r.body);
	http_resp_free(&r);
	return body;
}

/* The value of the sample whose name and labels are exactly series, or -1. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *line = text; line != NULL && *line != '\0';) {
		if (strncmp(line, series, n) == 0 && line[n] == ' ')
			return strtod(line + n + 1, NULL);
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return -1;
}

/* The value, with an absent series read as 0 (a counter not yet bumped). */
static double counter(const char *text, const char *series)
{
	double v = sample(text, series);
	return v < 0 ? 0 : v;
}

static long get_status(const char *path)
{
	struct http_resp r;
	ck_assert_int_eq(http_do("GET", path, NULL, NULL, &r), 0);
	long s = r.status;
	http_resp_free(&r);
	return s;
}

#define HEALTH_OK "gala_http_requests_total{route=\"/api/health\",method=\"GET\",status=\"200\"}"
#define EVENT_401 "gala_http_requests_total{route=\"/api/events/{id}\",method=\"GET\",status=\"401\"}"
#define HEALTH_COUNT "gala_http_request_duration_seconds_count{route=\"/api/health\",method=\"GET\"}"
#define UNMATCHED_404 "gala_http_requests_total{route=\"unmatched\",method=\"\",status=\"404\"}"

START_TEST(requests_counted_by_route_pattern)
{
	char *before = scrape();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(get_status("/api/health"), 200);
	const char *raw = "/api/events/7d1c4c43-43a5-4f3e-9a55-4b8f0e5f7e21";
	ck_assert_int_eq(get_status(raw), 401);
	ck_assert_int_eq(get_status("/api/no-such-route"), 404);
	char *after = scrape();
	/* The scrape itself is a request of its own route, so the health
	 * route's figures moved by exactly the three requests above. */
	ck_assert_double_eq(counter(after, HEALTH_OK) - counter(before, HEALTH_OK), 3);
	ck_assert_double_eq(counter(after, HEALTH_COUNT) - counter(before, HEALTH_COUNT), 3);
	ck_assert_double_eq(counter(after, EVENT_401) - counter(before, EVENT_401), 1);
	ck_assert_double_eq(counter(after, UNMATCHED_404) - counter(before, UNMATCHED_404), 1);
	/* Labels name patterns, never what a client typed. */
	ck_assert_ptr_null(strstr(after, "7d1c4c43"));
	ck_assert_ptr_null(strstr(after, "no-such-route"));
	/* The histogram's buckets are cumulative and end at the count. */
	double inf = sample(after,
	    "gala_http_request_duration_seconds_bucket{route=\"/api/health\",method=\"GET\",le=\"+Inf\"}");
	ck_assert_double_eq(inf, sample(after, HEALTH_COUNT));
	double small = sample(after,
	    "gala_http_request_duration_seconds_bucket{route=\"/api/health\",method=\"GET\",le=\"0.001\"}");
	ck_assert(small >= 0 && small <= inf);
	free(before);
	free(after);
}
END_TEST

START_TEST(pool_figures_are_exposed)
{
	char *pids = stack_ctl_output("gala-worker-pids");
	ck_assert_ptr_nonnull(pids);
	int workers = 0;
	for (char *tok = strtok(pids, " "); tok != NULL; tok = strtok(NULL, " "))
		workers++;
	free(pids);
	char *m = scrape();
	/* The master's view, refreshed on its every tick (200 ms). */
	double idle = sample(m, "gala_workers{state=\"idle\"}");
	double busy = sample(m, "gala_workers{state=\"busy\"}");
	ck_assert_msg(idle >= 0 && busy >= 0 && idle + busy == workers,
	    "idle %g busy %g, %d workers", idle, busy, workers);
	ck_assert_double_eq(sample(m, "gala_workers{state=\"draining\"}"), 0);
	/* Every label of the small families is listed from the start. */
	const char *series[] = {
		"gala_worker_restarts_total{reason=\"crash\"}",
		"gala_worker_restarts_total{reason=\"recycle\"}",
		"gala_db_errors_total{kind=\"connect\"}",
		"gala_db_errors_total{kind=\"timeout\"}",
		"gala_stripe_requests_total{outcome=\"ok\"}",
		"gala_stripe_requests_total{outcome=\"ambiguous\"}",
		"gala_ratelimit_refusals_total{policy=\"auth\"}",
		"gala_ratelimit_refusals_total{policy=\"write\"}",
		"gala_idempotency_replays_total",
		"gala_payouts_stuck",
		"gala_mail_outbox_pending",
	};
	for (size_t i = 0; i < sizeof series / sizeof series[0]; i++)
		ck_assert_msg(sample(m, series[i]) >= 0, "%s missing", series[i]);
	ck_assert_double_eq(sample(m, "gala_database_up"), 1);
	free(m);
}
END_TEST

START_TEST(promtool_accepts_the_exposition)
{
	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		/* scripts/lib/deps.sh installs it: CI always runs this check. */
		fprintf(stderr, "SKIP promtool_accepts_the_exposition: promtool is not installed\n");
		return;
	}
	char *m = scrape();
	char path[] = "/tmp/gala-metrics-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w");
	fputs(m, f);
	fclose(f);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
	FILE *p = popen(cmd, "r");
	char out[4096] = "";
	size_t n = fread(out, 1, sizeof out - 1, p);
	out[n] = '\0';
	int rc = pclose(p);
	unlink(path);
	/* promtool exits non-zero on errors and also on lint findings. */
	ck_assert_msg(rc == 0, "promtool check metrics: %s", out);
	free(m);
}
END_TEST

START_TEST(counters_survive_a_worker_killed)
{
	char *before = scrape();
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(get_status("/api/health"), 200);
	char *pids = stack_ctl_output("gala-worker-pids");
	ck_assert_ptr_nonnull(pids);
	int killed = 0;
	for (char *tok = strtok(pids, " "); tok != NULL; tok = strtok(NULL, " "))
		if (kill((pid_t)atoi(tok), SIGKILL) == 0)
			killed++;
	free(pids);
	ck_assert_int_ge(killed, 1);
	/* The master replaces them; the next scrape is answered by a new worker. */
	int up = 0;
	for (int i = 0; i < 100 && !up; i++) {
		up = get_status("/api/health") == 200;
		if (!up)
			usleep(100000);
	}
	ck_assert(up);
	char *after = scrape();
	ck_assert_msg(counter(after, HEALTH_OK) >= counter(before, HEALTH_OK) + 5,
	    "health 200 went from %g to %g", counter(before, HEALTH_OK), counter(after, HEALTH_OK));
	const char *crash = "gala_worker_restarts_total{reason=\"crash\"}";
	ck_assert_double_eq(counter(after, crash) - counter(before, crash), killed);
	free(before);
	free(after);
}
END_TEST

START_TEST(scrape_answers_during_a_database_outage)
{
	ck_assert_int_eq(stack_ctl("pg-stop"), 0);
	ck_assert_int_eq(get_status("/api/health"), 503);
	char *m = scrape();
	ck_assert_double_eq(sample(m, "gala_database_up"), 0);
	/* Stale backlog figures are left out rather than shown as 0. */
	ck_assert_double_eq(sample(m, "gala_payouts_stuck"), -1);
	double failures = counter(m, "gala_db_errors_total{kind=\"connect\"}") +
	    counter(m, "gala_db_errors_total{kind=\"lost\"}");
	ck_assert_msg(failures >= 1, "no database failure counted:\n%s", m);
	free(m);
	ck_assert_int_eq(stack_ctl("pg-start"), 0);
	int up = 0;
	for (int i = 0; i < 50 && !up; i++) {
		up = get_status("/api/health") == 200;
		if (!up)
			usleep(100000);
	}
	ck_assert(up);
}
END_TEST

START_TEST(limiter_refusals_and_replays_are_counted)
{
	ck_assert_int_eq(stack_ctl("gala-start AUTH_RATE_LIMIT_REQUESTS=2"), 0);
	ck_assert_int_eq(system("\"$TEST_STACK_CTL\" psql -qc 'DELETE FROM rate_limits' >/dev/null"), 0);
	char *before = scrape();
	const char *h[] = { "Content-Type: application/json", "Idempotency-Key: metrics-replay-1", NULL };
	const char *body = "{\"email\":\"nobody-metrics@example.com\"}";
	long st[3];
	for (int i = 0; i < 3; i++) {
		struct http_resp r;
		ck_assert_int_eq(http_do("POST", "/api/auth/forgot-password", h, body, &r), 0);
		st[i] = r.status;
		http_resp_free(&r);
	}
	/* The first runs, the second replays its answer, the third is one
	 * request too many for the auth policy (replays count too). */
	ck_assert_int_eq(st[0], 200);
	ck_assert_int_eq(st[1], 200);
	ck_assert_int_eq(st[2], 429);
	char *after = scrape();
	const char *refused = "gala_ratelimit_refusals_total{policy=\"auth\"}";
	ck_assert_double_eq(counter(after, refused) - counter(before, refused), 1);
	ck_assert_double_eq(counter(after, "gala_idempotency_replays_total") -
	    counter(before, "gala_idempotency_replays_total"), 1);
	free(before);
	free(after);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
}
END_TEST

START_TEST(outbox_backlog_is_a_gauge)
{
	test_mail_settle();
	ck_assert_int_eq(stack_ctl("smtp-stop"), 0);
	char body[256];
	snprintf(body, sizeof body, "{\"email\":\"ops-%d@example.com\",\"password\":"
	    "\"Gala-test-pass-42\",\"full_name\":\"Ops Test\"}", (int)getpid());
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/register", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 201);
	http_resp_free(&r);
	/* The verification mail waits while SMTP is down. */
	char *m = scrape();
	ck_assert_msg(sample(m, "gala_mail_outbox_pending") >= 1, "%s", m);
	free(m);
	ck_assert_int_eq(stack_ctl("smtp-start"), 0);
	test_mail_settle();
	m = scrape();
	ck_assert_double_eq(sample(m, "gala_mail_outbox_pending"), 0);
	free(m);
}
END_TEST

START_TEST(other_addresses_get_not_found)
{
	ck_assert_int_eq(stack_ctl("gala-start METRICS_ALLOW=10.11.12.0/24"), 0);
	struct http_resp r;
	ck_assert_int_eq(http_do("GET", "/metrics", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 404);
	ck_assert_str_eq(http_error_code(&r), "not_found");
	ck_assert_ptr_null(strstr(r.body, "gala_"));
	http_resp_free(&r);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
	char *m = scrape();
	free(m);
}
END_TEST

/* A datagram socket where the pool sends its notifications. */
static int notify_bind(char *path, size_t len)
{
	snprintf(path, len, "/tmp/gala-notify-%d.sock", (int)getpid());
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads notifications until one holds the line want, for up to timeout_ms;
 * the message is copied to msg. */
static int notify_wait(int fd, const char *want, int timeout_ms, char *msg, size_t msglen)
{
	long long end = now_ms() + timeout_ms;
	for (long long left; (left = end - now_ms()) > 0;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t n = recv(fd, msg, msglen - 1, 0);
		if (n <= 0)
			continue;
		msg[n] = '\0';
		for (const char *line = msg; line != NULL; line = strchr(line, '\n')) {
			if (*line == '\n')
				line++;
			if (strncmp(line, want, strlen(want)) == 0 &&
			    (line[strlen(want)] == '\n' || line[strlen(want)] == '\0'))
				return 1;
		}
	}
	return 0;
}

START_TEST(systemd_hears_ready_reloading_and_stopping)
{
	char path[108], msg[512];
	int fd = notify_bind(path, sizeof path);
	ck_assert_int_eq(stack_ctl("gala-start NOTIFY_SOCKET=%s", path), 0);
	ck_assert_msg(notify_wait(fd, "READY=1", 10000, msg, sizeof msg), "no READY=1");
	ck_assert_msg(strstr(msg, "STATUS=") != NULL && strstr(msg, "workers") != NULL,
	    "READY without the pool's status: %s", msg);
	/* A reload: RELOADING=1 (with the time systemd asks for), then READY=1
	 * once the new workers serve and the old ones left. */
	ck_assert_int_eq(stack_ctl("gala-sighup NOTIFY_SOCKET=%s", path), 0);
	ck_assert_msg(notify_wait(fd, "RELOADING=1", 10000, msg, sizeof msg), "no RELOADING=1");
	ck_assert_ptr_nonnull(strstr(msg, "MONOTONIC_USEC="));
	ck_assert_msg(notify_wait(fd, "READY=1", 20000, msg, sizeof msg), "no READY=1 after the reload");
	ck_assert_int_eq(get_status("/api/health"), 200);
	ck_assert_int_eq(stack_ctl("gala-stop"), 0);
	ck_assert_msg(notify_wait(fd, "STOPPING=1", 10000, msg, sizeof msg), "no STOPPING=1");
	close(fd);
	unlink(path);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-ops");
	TCase *tc = tcase_create("metrics");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, requests_counted_by_route_pattern);
	tcase_add_test(tc, pool_figures_are_exposed);
	tcase_add_test(tc, promtool_accepts_the_exposition);
	tcase_add_test(tc, counters_survive_a_worker_killed);
	tcase_add_test(tc, scrape_answers_during_a_database_outage);
	tcase_add_test(tc, limiter_refusals_and_replays_are_counted);
	tcase_add_test(tc, outbox_backlog_is_a_gauge);
	tcase_add_test(tc, other_addresses_get_not_found);
	suite_add_tcase(s, tc);
	TCase *sd = tcase_create("systemd");
	tcase_set_timeout(sd, 90);
	tcase_add_test(sd, systemd_hears_ready_reloading_and_stopping);
	suite_add_tcase(s, sd);
	return test_run_suite(s);
}
