/* End-to-end tests of the shared state in Postgres, through nginx: the rate
 * limiter (GCRA, across worker processes and across two pools), the
 * idempotency keys, the audit log read path and gala maintenance.
 *
 * The test stack runs with limits no test reaches; the limiter tests restart
 * the pool with tight ones, start from an empty rate_limits table, and
 * restore the defaults when they end. */
#include "autoconf.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/arena.h"
#include "core/crypto.h"
#include "http/ratelimit_stage.h"
#include "db/db.h"
#include "testlib.h"

#define PW "Gala-test-pass-42"

static int seq;

static char *unique_email(const char *tag)
{
	char *e = malloc(128);
	snprintf(e, 128, "%s-%d-%d@example.com", tag, (int)getpid(), ++seq);
	return e;
}

static char *register_body(const char *email)
{
	char *b = malloc(512);
	snprintf(b, 512, "{\"email\":\"%s\",\"password\":\"%s\",\"full_name\":\"Limits Test\"}",
	    email, PW);
	return b;
}

static cJSON *jget(const cJSON *j, const char *name)
{
	return cJSON_GetObjectItem(j, name);
}

static void expect_error(const struct http_resp *r, long status, const char *code, const char *param)
{
	ck_assert_msg(r->status == status, "status %ld (want %ld): %s", r->status, status, r->body);
	ck_assert_str_eq(http_error_code(r), code);
	if (param != NULL) {
		cJSON *p = jget(jget(r->json, "error"), "param");
		ck_assert_msg(cJSON_IsString(p) && strcmp(p->valuestring, param) == 0,
		    "param (want %s): %s", param, r->body);
	}
}

/* POST with an optional JSON body, bearer token and extra header lines. */
static void post(const char *path, const char *token, const char *body, const char *const *extra,
    struct http_resp *r)
{
	const char *h[16];
	char auth[4096];
	int n = 0;
	if (body != NULL)
		h[n++] = "Content-Type: application/json";
	if (token != NULL) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		h[n++] = auth;
	}
	for (const char *const *p = extra; p != NULL && *p != NULL && n < 15; p++)
		h[n++] = *p;
	h[n] = NULL;
	ck_assert_int_eq(http_do("POST", path, h, body, r), 0);
}

static void get(const char *path, const char *token, struct http_resp *r)
{
	ck_assert_int_eq(http_json("GET", path, token, NULL, r), 0);
}

static void expect_header(const struct http_resp *r, const char *name, const char *want)
{
	char *v = http_header(r, name);
	if (want == NULL)
		ck_assert_msg(v == NULL, "unexpected %s: %s", name, v);
	else
		ck_assert_msg(v != NULL && strcmp(v, want) == 0, "%s: got \"%s\", want \"%s\" (status %ld)",
		    name, v ? v : "(none)", want, r->status);
	free(v);
}

/* RateLimit is "\"policy\";r=R;t=T". t counts down while the test runs:
 * up to a second may have passed since the bucket was set. */
/* When the limits were last reset: t counts down from then on. */
static long long limits_reset_ms;

static long long elapsed_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - limits_reset_ms) / 1000;
}

/* t is what the bucket says if no time had passed since the reset, less up
 * to the seconds that did pass (and one of rounding). */
static void expect_ratelimit(const struct http_resp *r, const char *policy, int remaining, int t)
{
	char *v = http_header(r, "RateLimit");
	ck_assert_msg(v != NULL, "no RateLimit (status %ld)", r->status);
	char name[32];
	int gr = -1, gt = -1;
	ck_assert_msg(sscanf(v, "\"%31[a-z-]\";r=%d;t=%d", name, &gr, &gt) == 3, "RateLimit: %s", v);
	ck_assert_msg(strcmp(name, policy) == 0 && gr == remaining && gt <= t &&
	    gt >= t - 1 - elapsed_s(), "RateLimit: %s, want \"%s\";r=%d;t=%d (%llds since the reset)",
	    v, policy, remaining, t, elapsed_s());
	free(v);
}

/* Retry-After: whole seconds, at least 1, counting down like t. */
static void expect_retry_after(const struct http_resp *r, int want)
{
	char *v = http_header(r, "Retry-After");
	ck_assert_msg(v != NULL, "no Retry-After (status %ld)", r->status);
	ck_assert_msg(strspn(v, "0123456789") == strlen(v), "Retry-After: %s", v);
	int got = atoi(v);
	ck_assert_msg(got >= 1 && got <= want && got >= want - 1 - elapsed_s(),
	    "Retry-After %d, want %d (%llds since the reset)", got, want, elapsed_s());
	free(v);
}

static long long mail_count(void)
{
	return test_mail_count();
}

/* ---- the database, as superuser ---- */

static PGconn *su;

static PGconn *db(void)
{
	if (su == NULL)
		su = test_db_superuser();
	return su;
}

static void sql(const char *q, int n, const char *const *p)
{
	PGresult *r = PQexecParams(db(), q, n, NULL, p, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
	    "%s: %s", q, PQresultErrorMessage(r));
	PQclear(r);
}

static long long sql_count(const char *q, int n, const char *const *p)
{
	char *v = test_db_value(db(), q, n, p);
	ck_assert_msg(v != NULL, "no value: %s", q);
	long long x = atoll(v);
	free(v);
	return x;
}

static char *sql_text(const char *q, int n, const char *const *p)
{
	char *v = test_db_value(db(), q, n, p);
	ck_assert_msg(v != NULL, "no value: %s", q);
	return v;
}

static void restart(const char *settings)
{
	ck_assert_int_eq(stack_ctl("gala-start %s", settings), 0);
}

static void reset_limits(void)
{
	sql("DELETE FROM rate_limits", 0, NULL);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	limits_reset_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- users ---- */

struct user {
	char *email;
	char *id;
	char *token;
};

static struct user register_user(const char *tag)
{
	struct user u = { .email = unique_email(tag) };
	char *body = register_body(u.email);
	struct http_resp r;
	post("/api/auth/register", NULL, body, NULL, &r);
	ck_assert_msg(r.status == 201, "register: %ld %s", r.status, r.body);
	u.id = strdup(jget(jget(r.json, "user"), "id")->valuestring);
	u.token = strdup(jget(r.json, "access_token")->valuestring);
	http_resp_free(&r);
	free(body);
	return u;
}

static void user_free(struct user *u)
{
	free(u->email);
	free(u->id);
	free(u->token);
}

static long login(const char *email, const char *password, const char *const *extra, char **token)
{
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
	struct http_resp r;
	post("/api/auth/login", NULL, body, extra, &r);
	long st = r.status;
	if (token != NULL)
		*token = st == 200 ? strdup(jget(r.json, "access_token")->valuestring) : NULL;
	http_resp_free(&r);
	return st;
}

/* ---- rate limiter ---- */

/* Forks n processes that POST body to path at the same moment (each with
 * X-Request-ID tag-i) and returns how many were admitted (not 429). */
static int hammer(int n, const char *path, const char *body, const char *tag)
{
	int go[2];
	ck_assert_int_eq(pipe(go), 0);
	pid_t kids[64];
	ck_assert_int_le(n, 64);
	for (int i = 0; i < n; i++) {
		kids[i] = fork();
		ck_assert_int_ge(kids[i], 0);
		if (kids[i] == 0) {
			char c, rid[128];
			close(go[1]);
			/* Every child blocks here until the parent closes the pipe. */
			ssize_t got = read(go[0], &c, 1);
			(void)got;
			snprintf(rid, sizeof rid, "X-Request-ID: %s-%d", tag, i);
			const char *h[] = { "Content-Type: application/json", rid, NULL };
			struct http_resp r;
			int rc = http_do("POST", path, h, body, &r);
			_exit(rc != 0 ? 3 : r.status == 429 ? 1 : r.status == 422 ? 0 : 2);
		}
	}
	close(go[0]);
	usleep(300000);
	close(go[1]);
	int admitted = 0, refused = 0;
	for (int i = 0; i < n; i++) {
		int status;
		ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
		ck_assert(WIFEXITED(status));
		int code = WEXITSTATUS(status);
		ck_assert_msg(code == 0 || code == 1, "request %d: neither 422 nor 429 (%d)", i, code);
		admitted += code == 0;
		refused += code == 1;
	}
	ck_assert_int_eq(admitted + refused, n);
	return admitted;
}

/* Lines of a gala log that are access lines of requests tagged tag with
 * the given status. */
static int access_lines(const char *log, const char *tag, int status)
{
	FILE *f = fopen(log, "r");
	ck_assert_msg(f != NULL, "cannot read %s", log);
	char *line = NULL, st[32];
	size_t cap = 0;
	int n = 0;
	snprintf(st, sizeof st, "\"status_code\":%d", status);
	while (getline(&line, &cap, f) > 0)
		n += strstr(line, "\"gala.access\"") != NULL && strstr(line, tag) != NULL &&
		    strstr(line, st) != NULL;
	free(line);
	fclose(f);
	return n;
}

/* One POST of {} to register: admitted requests get 422 from validation. */
static long try_register(const char *const *extra, struct http_resp *r)
{
	post("/api/auth/register", NULL, "{}", extra, r);
	ck_assert_msg(r->status == 422 || r->status == 429, "register {}: %ld %s", r->status, r->body);
	return r->status;
}

static long try_register_status(const char *const *extra)
{
	struct http_resp r;
	long st = try_register(extra, &r);
	http_resp_free(&r);
	return st;
}

/* Processes with a connection each run the limiter's statement on one key
 * at once, as fast as they can: exactly the burst is admitted. */
START_TEST(limiter_statement_is_atomic)
{
	char key[64];
	snprintf(key, sizeof key, "test:atomic:%d", (int)getpid());
	const char *url = test_env("TEST_DATABASE_URL");
	struct ratelimit_quota q = { 100, 3600 };
	int go[2];
	ck_assert_int_eq(pipe(go), 0);
	pid_t kids[16];
	for (int i = 0; i < 16; i++) {
		kids[i] = fork();
		ck_assert_int_ge(kids[i], 0);
		if (kids[i] == 0) {
			char c;
			close(go[1]);
			db_configure(url, 5, true);
			if (db_connection() == NULL)
				_exit(255);
			ssize_t got = read(go[0], &c, 1);
			(void)got;
			arena_t *a = arena_new(4096);
			int admitted = 0;
			for (int j = 0; j < 40; j++) {
				struct ratelimit_result r;
				if (ratelimit_check(a, key, RL_AUTH, &q, &r) != DB_OK)
					_exit(255);
				admitted += r.allowed;
				arena_reset(a);
			}
			_exit(admitted);
		}
	}
	close(go[0]);
	usleep(500000);
	close(go[1]);
	int admitted = 0;
	for (int i = 0; i < 16; i++) {
		int status;
		ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 255);
		admitted += WEXITSTATUS(status);
	}
	ck_assert_int_eq(admitted, 100);
	const char *p[] = { key };
	sql("DELETE FROM rate_limits WHERE key = $1", 1, p);
}
END_TEST

START_TEST(limiter_processes_admit_exactly_n)
{
	restart("AUTH_RATE_LIMIT_REQUESTS=5 AUTH_RATE_LIMIT_WINDOW_SECONDS=60 WORKERS=6");
	reset_limits();
	char tag[64];
	snprintf(tag, sizeof tag, "hammer-%d", (int)getpid());
	/* 30 clients, six workers, one key: the burst, not one more. */
	ck_assert_int_eq(hammer(30, "/api/auth/register", "{}", tag), 5);
	const char *p[] = { "auth:ip:127.0.0.1" };
	ck_assert_int_eq(sql_count("SELECT count(*) FROM rate_limits WHERE key = $1", 1, p), 1);
	restart("");
}
END_TEST

START_TEST(limiter_shared_by_two_pools)
{
	const char *tight = "AUTH_RATE_LIMIT_REQUESTS=6 AUTH_RATE_LIMIT_WINDOW_SECONDS=60";
	restart(tight);
	ck_assert_int_eq(stack_ctl("gala2-start %s", tight), 0);
	reset_limits();
	char tag[64];
	snprintf(tag, sizeof tag, "twopools-%d", (int)getpid());
	ck_assert_int_eq(hammer(24, "/api/auth/register", "{}", tag), 6);
	/* Both pools served requests of the burst and refused others: one
	 * count behind one upstream. */
	int a_ok = access_lines(test_env("TEST_GALA_LOG"), tag, 422);
	int b_ok = access_lines(test_env("TEST_GALA2_LOG"), tag, 422);
	int a_no = access_lines(test_env("TEST_GALA_LOG"), tag, 429);
	int b_no = access_lines(test_env("TEST_GALA2_LOG"), tag, 429);
	ck_assert_int_eq(a_ok + b_ok, 6);
	ck_assert_int_eq(a_no + b_no, 18);
	ck_assert_msg(a_ok + a_no > 0 && b_ok + b_no > 0,
	    "one pool got no request (pool 1: %d, pool 2: %d)", a_ok + a_no, b_ok + b_no);
	/* Sequential requests alternate between the pools and stay refused. */
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(try_register_status(NULL), 429);
	ck_assert_int_eq(stack_ctl("gala2-stop"), 0);
	restart("");
}
END_TEST

START_TEST(limiter_window_rolls)
{
	/* Burst 2, one request every 2 s. */
	restart("AUTH_RATE_LIMIT_REQUESTS=2 AUTH_RATE_LIMIT_WINDOW_SECONDS=4");
	reset_limits();
	struct http_resp r;
	ck_assert_int_eq(try_register_status(NULL), 422);
	ck_assert_int_eq(try_register_status(NULL), 422);
	ck_assert_int_eq(try_register(NULL, &r), 429);
	expect_error(&r, 429, "rate_limited", NULL);
	ck_assert_str_eq(jget(jget(r.json, "error"), "type")->valuestring, "rate_limit_error");
	expect_retry_after(&r, 2);
	http_resp_free(&r);
	/* Refused requests do not count: hammering now does not push the
	 * next slot back. */
	usleep(1000000);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(try_register_status(NULL), 429);
	usleep(1300000);
	/* One interval later exactly one request fits, not a new burst. */
	ck_assert_int_eq(try_register_status(NULL), 422);
	ck_assert_int_eq(try_register(NULL, &r), 429);
	expect_retry_after(&r, 2);
	http_resp_free(&r);
	/* After the whole window the full burst is back. */
	usleep(4300000);
	ck_assert_int_eq(try_register_status(NULL), 422);
	ck_assert_int_eq(try_register_status(NULL), 422);
	ck_assert_int_eq(try_register_status(NULL), 429);
	restart("");
}
END_TEST

START_TEST(limiter_headers)
{
	/* A window long enough that a slow machine hashing the passwords of
	 * the logins below does not see a token come back (one every 20 s). */
	restart("AUTH_RATE_LIMIT_REQUESTS=5 AUTH_RATE_LIMIT_WINDOW_SECONDS=100");
	reset_limits();
	struct http_resp r;
	get("/api/health", NULL, &r);
	expect_header(&r, "RateLimit-Policy", NULL);
	expect_header(&r, "RateLimit", NULL);
	http_resp_free(&r);

	try_register(NULL, &r);
	expect_header(&r, "RateLimit-Policy", "\"auth\";q=5;w=100");
	expect_ratelimit(&r, "auth", 4, 20);
	http_resp_free(&r);
	try_register(NULL, &r);
	expect_ratelimit(&r, "auth", 3, 40);
	http_resp_free(&r);
	/* Refused before the limiter (415, malformed JSON): the route's fields
	 * all the same, and the request does not count (the login below still
	 * finds r=2 after it). */
	const char *text[] = { "Content-Type: text/plain", NULL };
	ck_assert_int_eq(http_do("POST", "/api/auth/register", text, "{}", &r), 0);
	expect_error(&r, 415, "unsupported_media_type", NULL);
	expect_header(&r, "RateLimit-Policy", "\"auth\";q=5;w=100");
	expect_ratelimit(&r, "auth", 3, 40);
	http_resp_free(&r);
	post("/api/auth/login", NULL, "{\"email\":", NULL, &r);
	expect_error(&r, 400, "malformed_json", NULL);
	expect_header(&r, "RateLimit-Policy", "\"auth\";q=5;w=100");
	expect_ratelimit(&r, "auth", 3, 40);
	http_resp_free(&r);

	/* Login has two policies; the IP's is the tighter one now. */
	char *victim = unique_email("Victim");
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"wrong-password-1\"}", victim);
	post("/api/auth/login", NULL, body, NULL, &r);
	expect_error(&r, 401, "invalid_credentials", NULL);
	expect_header(&r, "RateLimit-Policy", "\"auth-email\";q=5;w=100, \"auth\";q=5;w=100");
	expect_ratelimit(&r, "auth", 2, 60);
	http_resp_free(&r);

	/* A tie names auth-email. */
	reset_limits();
	post("/api/auth/login", NULL, body, NULL, &r);
	expect_ratelimit(&r, "auth-email", 4, 20);
	http_resp_free(&r);
	for (int i = 0; i < 4; i++) {
		post("/api/auth/login", NULL, body, NULL, &r);
		ck_assert_int_eq(r.status, 401);
		http_resp_free(&r);
	}
	post("/api/auth/login", NULL, body, NULL, &r);
	expect_error(&r, 429, "rate_limited", NULL);
	expect_retry_after(&r, 20);
	expect_header(&r, "RateLimit-Policy", "\"auth-email\";q=5;w=100, \"auth\";q=5;w=100");
	expect_ratelimit(&r, "auth-email", 0, 100);
	http_resp_free(&r);
	free(victim);
	restart("");
}
END_TEST

START_TEST(limiter_write_rule_per_user)
{
	restart("WRITE_RATE_LIMIT_REQUESTS=3 WRITE_RATE_LIMIT_WINDOW_SECONDS=30");
	reset_limits();
	struct user u = register_user("writer");
	char *tok[4] = { strdup(u.token) };
	for (int i = 1; i < 4; i++)
		ck_assert_int_eq(login(u.email, PW, NULL, &tok[i]), 200);
	struct http_resp r;
	for (int i = 0; i < 3; i++) {
		post("/api/auth/logout", tok[i], NULL, NULL, &r);
		ck_assert_msg(r.status == 204, "logout %d: %ld %s", i, r.status, r.body);
		expect_header(&r, "RateLimit-Policy", "\"write\";q=3;w=30");
		expect_ratelimit(&r, "write", 2 - i, 10 * (i + 1));
		http_resp_free(&r);
	}
	post("/api/auth/logout", tok[3], NULL, NULL, &r);
	expect_error(&r, 429, "rate_limited", NULL);
	expect_retry_after(&r, 10);
	expect_ratelimit(&r, "write", 0, 30);
	http_resp_free(&r);
	/* Refusals before the limiter carry the fields too: a CSRF failure
	 * shows the user's bucket; a missing token counts against the
	 * anonymous IP's (API.md), so it shows one request taken. */
	const char *browser[] = { "Origin: https://evil.example", NULL };
	post("/api/auth/logout", tok[3], NULL, browser, &r);
	expect_error(&r, 403, "csrf_failed", NULL);
	expect_header(&r, "RateLimit-Policy", "\"write\";q=3;w=30");
	expect_ratelimit(&r, "write", 0, 30);
	http_resp_free(&r);
	post("/api/auth/logout", NULL, NULL, NULL, &r);
	expect_error(&r, 401, "authentication_required", NULL);
	expect_header(&r, "RateLimit-Policy", "\"write\";q=3;w=30");
	expect_ratelimit(&r, "write", 2, 10);
	http_resp_free(&r);
	/* The refused logout did not run. */
	get("/api/auth/me", tok[3], &r);
	ck_assert_int_eq(r.status, 200);
	http_resp_free(&r);
	/* Another user has a bucket of its own. */
	struct user v = register_user("writer2");
	post("/api/auth/logout", v.token, NULL, NULL, &r);
	ck_assert_int_eq(r.status, 204);
	expect_ratelimit(&r, "write", 2, 10);
	http_resp_free(&r);
	for (int i = 0; i < 4; i++)
		free(tok[i]);
	user_free(&u);
	user_free(&v);
	restart("");
}
END_TEST

START_TEST(limiter_per_email_across_ips)
{
	/* A trusted proxy's X-Forwarded-For gives every request its own IP. */
	restart("AUTH_RATE_LIMIT_REQUESTS=3 AUTH_RATE_LIMIT_WINDOW_SECONDS=60 TRUSTED_PROXIES=127.0.0.1");
	reset_limits();
	char *victim = unique_email("target");
	char upper[128];
	snprintf(upper, sizeof upper, "  %s ", victim);
	for (char *p = upper; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	const char *ip1[] = { "X-Forwarded-For: 198.51.100.1", NULL };
	const char *ip2[] = { "X-Forwarded-For: 198.51.100.2", NULL };
	const char *ip3[] = { "X-Forwarded-For: 198.51.100.3", NULL };
	const char *ip4[] = { "X-Forwarded-For: 198.51.100.4", NULL };
	ck_assert_int_eq(login(victim, "wrong-password-1", ip1, NULL), 401);
	ck_assert_int_eq(login(upper, "wrong-password-2", ip2, NULL), 401);
	ck_assert_int_eq(login(victim, "wrong-password-3", ip3, NULL), 401);
	/* The fourth try at one account is refused whatever the address. */
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"x-wrong-pass\"}", victim);
	struct http_resp r;
	post("/api/auth/login", NULL, body, ip4, &r);
	expect_error(&r, 429, "rate_limited", NULL);
	expect_ratelimit(&r, "auth-email", 0, 60);
	http_resp_free(&r);
	const char *k4[] = { "auth:ip:198.51.100.4" };
	ck_assert_int_eq(sql_count("SELECT count(*) FROM rate_limits WHERE key = $1", 1, k4), 0);

	/* An IP over its quota: the per-email slot the refused request took
	 * is given back. */
	const char *ip5[] = { "X-Forwarded-For: 198.51.100.5", NULL };
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(try_register_status(ip5), 422);
	char *other = unique_email("other");
	ck_assert_int_eq(login(other, "wrong-password-1", ip5, NULL), 429);
	const char *ip6[] = { "X-Forwarded-For: 198.51.100.6", NULL };
	const char *ip7[] = { "X-Forwarded-For: 198.51.100.7", NULL };
	ck_assert_int_eq(login(other, "wrong-password-1", ip6, NULL), 401);
	ck_assert_int_eq(login(other, "wrong-password-1", ip7, NULL), 401);
	ck_assert_int_eq(login(other, "wrong-password-1", ip1, NULL), 401);

	/* IPv6 clients are counted per /64. */
	const char *v6a[] = { "X-Forwarded-For: 2001:db8:7:7::1", NULL };
	const char *v6b[] = { "X-Forwarded-For: 2001:db8:7:7:abcd::2", NULL };
	const char *v6c[] = { "X-Forwarded-For: 2001:db8:7:8::1", NULL };
	ck_assert_int_eq(try_register_status(v6a), 422);
	ck_assert_int_eq(try_register_status(v6b), 422);
	ck_assert_int_eq(try_register_status(v6a), 422);
	ck_assert_int_eq(try_register_status(v6b), 429);
	ck_assert_int_eq(try_register_status(v6c), 422);

	/* An address is counted as the database matches accounts: by its
	 * lower(), whose handling of letters outside ASCII is the cluster's
	 * locale. Case variants the database holds for one account are one
	 * bucket; those it tells apart are several. */
	char umlaut_a[128], umlaut_b[128], umlaut_c[128];
	snprintf(umlaut_a, sizeof umlaut_a, "\xc3\xa4rger-%d@example.com", (int)getpid());
	snprintf(umlaut_b, sizeof umlaut_b, "\xc3\x84rger-%d@example.com", (int)getpid());
	snprintf(umlaut_c, sizeof umlaut_c, "\xc3\x84RGER-%d@example.com", (int)getpid());
	const char *ip8[] = { "X-Forwarded-For: 198.51.100.8", NULL };
	const char *ip9[] = { "X-Forwarded-For: 198.51.100.9", NULL };
	const char *ip10[] = { "X-Forwarded-For: 198.51.100.10", NULL };
	const char *ip11[] = { "X-Forwarded-For: 198.51.100.11", NULL };
	const char *variants[] = { umlaut_a, umlaut_b, umlaut_c };
	long long accounts = sql_count("SELECT count(DISTINCT lower(v)) FROM "
	    "unnest(ARRAY[$1, $2, $3]) v", 3, variants);
	long long buckets = sql_count("SELECT count(*) FROM rate_limits WHERE key LIKE 'auth-email:%'",
	    0, NULL);
	ck_assert_int_eq(login(umlaut_a, "wrong-password-1", ip8, NULL), 401);
	ck_assert_int_eq(login(umlaut_b, "wrong-password-1", ip9, NULL), 401);
	ck_assert_int_eq(login(umlaut_c, "wrong-password-1", ip10, NULL), 401);
	ck_assert_int_eq(sql_count("SELECT count(*) FROM rate_limits WHERE key LIKE 'auth-email:%'",
	    0, NULL), buckets + accounts);
	ck_assert_int_eq(login(umlaut_b, "wrong-password-1", ip11, NULL), accounts == 1 ? 429 : 401);
	/* Nothing at rest names the address. */
	const char *pa[] = { umlaut_a };
	ck_assert_int_eq(sql_count("SELECT count(*) FROM rate_limits WHERE position(lower($1) IN "
	    "lower(key)) > 0", 1, pa), 0);
	free(victim);
	free(other);
	restart("");
}
END_TEST

START_TEST(limiter_ignores_spoofed_forwarded_for)
{
	restart("AUTH_RATE_LIMIT_REQUESTS=3 AUTH_RATE_LIMIT_WINDOW_SECONDS=60");
	reset_limits();
	int admitted = 0;
	for (int i = 0; i < 6; i++) {
		char xff[64];
		snprintf(xff, sizeof xff, "X-Forwarded-For: 10.9.%d.%d", i, i + 1);
		const char *h[] = { xff, NULL };
		admitted += try_register_status(h) == 422;
	}
	ck_assert_int_eq(admitted, 3);
	ck_assert_int_eq(sql_count("SELECT count(*) FROM rate_limits WHERE key LIKE 'auth:%'", 0, NULL), 1);
	const char *p[] = { "auth:ip:127.0.0.1" };
	ck_assert_int_eq(sql_count("SELECT count(*) FROM rate_limits WHERE key = $1", 1, p), 1);
	restart("");
}
END_TEST

START_TEST(limiter_can_be_disabled)
{
	restart("RATE_LIMIT_ENABLED=false AUTH_RATE_LIMIT_REQUESTS=1");
	reset_limits();
	for (int i = 0; i < 4; i++) {
		struct http_resp r;
		ck_assert_int_eq(try_register(NULL, &r), 422);
		expect_header(&r, "RateLimit-Policy", NULL);
		expect_header(&r, "RateLimit", NULL);
		http_resp_free(&r);
	}
	ck_assert_int_eq(sql_count("SELECT count(*) FROM rate_limits", 0, NULL), 0);
	restart("");
}
END_TEST

START_TEST(limiter_fails_closed_without_postgres)
{
	ck_assert_int_eq(stack_ctl("pg-stop"), 0);
	struct http_resp r;
	post("/api/auth/register", NULL, "{}", NULL, &r);
	expect_error(&r, 503, "database_unavailable", NULL);
	http_resp_free(&r);
	ck_assert_int_eq(stack_ctl("pg-start"), 0);
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "grep -q 'limiter could not reach Postgres' '%s'",
	    test_env("TEST_GALA_LOG"));
	ck_assert_int_eq(system(cmd), 0);
	/* Every worker answers again once Postgres is back and reachable: at
	 * once directly, within server_login_retry through PgBouncer, which
	 * turns clients away for that long after a failed server login. */
	struct http_resp h = { 0 };
	for (int i = 0; i < 50; i++) {
		get("/api/health", NULL, &h);
		long st = h.status;
		http_resp_free(&h);
		if (st == 200)
			break;
		usleep(100000);
	}
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(try_register_status(NULL), 422);
}
END_TEST

/* ---- idempotency ---- */

static char idem_header[320];

static const char *const *with_key(const char *key)
{
	static const char *h[2];
	snprintf(idem_header, sizeof idem_header, "Idempotency-Key: %s", key);
	h[0] = idem_header;
	h[1] = NULL;
	return h;
}

static char *unique_key(const char *tag)
{
	char *k = malloc(96);
	snprintf(k, 96, "%s-%d-%d", tag, (int)getpid(), ++seq);
	return k;
}

/* A user whose email is verified, so that it may create events: the
 * idempotent route with a body, a Location and a row to count. */
static struct user verified_user(const char *tag)
{
	struct user u = register_user(tag);
	const char *p[] = { u.id };
	sql("UPDATE users SET email_verified = true WHERE id = $1", 1, p);
	return u;
}

static char *event_body(const char *title)
{
	char *b = malloc(256);
	snprintf(b, 256, "{\"title\":\"%s\",\"starts_at\":\"2031-05-01T18:00:00Z\"}", title);
	return b;
}

static long long events_of(const struct user *u)
{
	const char *p[] = { u->id };
	return sql_count("SELECT count(*) FROM events WHERE owner_id = $1", 1, p);
}

static char *forgot_body(const char *email)
{
	char *b = malloc(256);
	snprintf(b, 256, "{\"email\":\"%s\"}", email);
	return b;
}

START_TEST(idempotency_replays_and_creates_nothing)
{
	struct user u = verified_user("idem");
	char *body = event_body("Replayed"), *key = unique_key("create");
	char kh[160], rid1[64], rid2[64];
	snprintf(kh, sizeof kh, "Idempotency-Key: %s", key);
	snprintf(rid1, sizeof rid1, "X-Request-ID: first-%d", (int)getpid());
	snprintf(rid2, sizeof rid2, "X-Request-ID: replay-%d", (int)getpid());
	const char *h1[] = { kh, rid1, NULL }, *h2[] = { kh, rid2, NULL };
	struct http_resp a, b;
	post("/api/events", u.token, body, h1, &a);
	ck_assert_msg(a.status == 201, "%ld %s", a.status, a.body);
	expect_header(&a, "Idempotent-Replayed", NULL);
	char *location = http_header(&a, "Location");
	ck_assert_ptr_nonnull(location);

	post("/api/events", u.token, body, h2, &b);
	ck_assert_int_eq(b.status, 201);
	ck_assert_uint_eq(b.body_len, a.body_len);
	ck_assert(memcmp(a.body, b.body, a.body_len) == 0);
	expect_header(&b, "Idempotent-Replayed", "true");
	char *ct = http_header(&a, "Content-Type");
	expect_header(&b, "Content-Type", ct);
	expect_header(&b, "Location", location);
	/* The replay has its own request id. */
	char *x = http_header(&b, "X-Request-ID");
	ck_assert_str_eq(x, rid2 + strlen("X-Request-ID: "));
	free(x);
	/* Nothing new: one event. Without the key the same body is a new one. */
	ck_assert_int_eq(events_of(&u), 1);
	http_resp_free(&b);
	post("/api/events", u.token, body, NULL, &b);
	ck_assert_int_eq(b.status, 201);
	ck_assert_int_eq(events_of(&u), 2);

	/* An anonymous key is scoped to the address, and its replay sends no
	 * second mail. */
	char *fk = unique_key("forgot"), *fb = forgot_body(u.email);
	long long before = mail_count();
	http_resp_free(&a);
	post("/api/auth/forgot-password", NULL, fb, with_key(fk), &a);
	ck_assert_int_eq(a.status, 200);
	for (int i = 0; i < 50 && mail_count() == before; i++)
		usleep(100000);
	long long mails = mail_count();
	ck_assert_int_gt(mails, before);
	http_resp_free(&b);
	post("/api/auth/forgot-password", NULL, fb, with_key(fk), &b);
	ck_assert_int_eq(b.status, 200);
	expect_header(&b, "Idempotent-Replayed", "true");
	usleep(300000);
	ck_assert_int_eq(mail_count(), mails);
	free(fk);
	free(fb);
	free(ct);
	free(location);
	http_resp_free(&a);
	http_resp_free(&b);
	user_free(&u);
	free(body);
	free(key);
}
END_TEST

/* Credentials are never stored for replay: the routes that answer with a
 * session ignore Idempotency-Key, and no stored row keeps a token, a
 * cookie or a plain hash of a body that held a password. */
START_TEST(idempotency_never_keeps_credentials)
{
	char *email = unique_email("cred"), *body = register_body(email);
	char *key = unique_key("cred");
	struct http_resp r;
	post("/api/auth/register", NULL, body, with_key(key), &r);
	ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
	expect_header(&r, "Idempotent-Replayed", NULL);
	char *token = strdup(jget(r.json, "access_token")->valuestring);
	http_resp_free(&r);
	/* Each call is a fresh call. */
	post("/api/auth/register", NULL, body, with_key(key), &r);
	expect_error(&r, 409, "email_taken", NULL);
	expect_header(&r, "Idempotent-Replayed", NULL);
	http_resp_free(&r);
	char login_body[512];
	snprintf(login_body, sizeof login_body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, PW);
	char *t1 = NULL, *t2 = NULL;
	ck_assert_int_eq(login(email, PW, with_key(key), &t1), 200);
	ck_assert_int_eq(login(email, PW, with_key(key), &t2), 200);
	ck_assert_str_ne(t1, t2);
	/* The key names nothing, and nothing at rest holds the credentials. */
	const char *pk[] = { key };
	ck_assert_int_eq(sql_count("SELECT count(*) FROM idempotency_keys WHERE key = $1", 1, pk), 0);
	char plain[65], plain_login[65];
	crypto_sha256_hex(body, strlen(body), plain);
	crypto_sha256_hex(login_body, strlen(login_body), plain_login);
	const char *secrets[] = { token, t1, t2, plain, plain_login, "gala_session" };
	for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
		const char *ps[] = { secrets[i] };
		ck_assert_msg(sql_count("SELECT count(*) FROM idempotency_keys WHERE "
		    "position($1 IN convert_from(coalesce(response_body, ''::bytea), 'UTF8')) > 0 "
		    "OR position($1 IN coalesce(response_headers::text, '')) > 0 "
		    "OR request_fingerprint = $1", 1, ps) == 0, "stored: %s", secrets[i]);
	}
	free(t1);
	free(t2);
	free(token);
	free(email);
	free(body);
	free(key);
}
END_TEST

struct bg_post {
	pthread_t thread;
	const char *token;
	const char *body;
	const char *key;
	struct http_resp resp;
};

static void *bg_create(void *arg)
{
	struct bg_post *b = arg;
	char kh[160], auth[4096];
	snprintf(kh, sizeof kh, "Idempotency-Key: %s", b->key);
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", b->token);
	const char *h[] = { "Content-Type: application/json", auth, kh, NULL };
	http_do("POST", "/api/events", h, b->body, &b->resp);
	return NULL;
}

/* Holds inserts into events so that a create stays in flight. */
static PGconn *hold_events(void)
{
	PGconn *c = test_db_superuser();
	PQclear(PQexec(c, "BEGIN"));
	PGresult *res = PQexec(c, "LOCK TABLE events IN SHARE MODE");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	return c;
}

static void release_events(PGconn *c)
{
	PQclear(PQexec(c, "COMMIT"));
	PQfinish(c);
}

static void wait_in_flight(const char *key)
{
	const char *p[] = { key };
	for (int i = 0; i < 50; i++) {
		if (sql_count("SELECT count(*) FROM idempotency_keys WHERE key = $1 "
		    "AND response_status IS NULL", 1, p) == 1)
			return;
		usleep(50000);
	}
	ck_abort_msg("the first request never claimed its key");
}

START_TEST(idempotency_concurrent_duplicates)
{
	struct user u = verified_user("dup");
	char *body = event_body("Duplicate"), *key = unique_key("dup");
	PGconn *lock = hold_events();
	struct bg_post first = { .token = u.token, .body = body, .key = key };
	pthread_create(&first.thread, NULL, bg_create, &first);
	wait_in_flight(key);
	struct http_resp r;
	post("/api/events", u.token, body, with_key(key), &r);
	expect_error(&r, 409, "idempotency_key_in_use", NULL);
	expect_header(&r, "Retry-After", "1");
	http_resp_free(&r);
	/* Another request under a key in flight is still a misuse. */
	char *other = event_body("Something else");
	post("/api/events", u.token, other, with_key(key), &r);
	expect_error(&r, 422, "idempotency_key_reused", NULL);
	http_resp_free(&r);
	release_events(lock);
	pthread_join(first.thread, NULL);
	ck_assert_msg(first.resp.status == 201, "first: %ld %s", first.resp.status, first.resp.body);
	post("/api/events", u.token, body, with_key(key), &r);
	ck_assert_int_eq(r.status, 201);
	expect_header(&r, "Idempotent-Replayed", "true");
	ck_assert_str_eq(r.body, first.resp.body);
	ck_assert_int_eq(events_of(&u), 1);
	http_resp_free(&r);
	http_resp_free(&first.resp);
	user_free(&u);
	free(other);
	free(body);
	free(key);
}
END_TEST

START_TEST(idempotency_key_reuse_and_refusals)
{
	struct user u = verified_user("reuse");
	char *b1 = event_body("First"), *b2 = event_body("Second"), *key = unique_key("reuse");
	struct http_resp r;
	/* A validation refusal is not stored: the corrected retry runs. */
	post("/api/events", u.token, "{\"title\":\"No start\"}", with_key(key), &r);
	expect_error(&r, 422, "validation_failed", "starts_at");
	http_resp_free(&r);
	post("/api/events", u.token, b1, with_key(key), &r);
	ck_assert_int_eq(r.status, 201);
	expect_header(&r, "Idempotent-Replayed", NULL);
	http_resp_free(&r);
	/* Same key, another body or another path. */
	post("/api/events", u.token, b2, with_key(key), &r);
	expect_error(&r, 422, "idempotency_key_reused", NULL);
	http_resp_free(&r);
	post("/api/subscriptions", u.token, "{\"price_id\":\"price_basic\"}", with_key(key), &r);
	expect_error(&r, 422, "idempotency_key_reused", NULL);
	http_resp_free(&r);
	ck_assert_int_eq(events_of(&u), 1);
	/* A request refused before its key was looked at (401) does not pin
	 * it either. */
	char *k2 = unique_key("unauth");
	post("/api/events", "not-a-token", b2, with_key(k2), &r);
	expect_error(&r, 401, "invalid_token", NULL);
	http_resp_free(&r);
	post("/api/events", u.token, b2, with_key(k2), &r);
	ck_assert_int_eq(r.status, 201);
	expect_header(&r, "Idempotent-Replayed", NULL);
	http_resp_free(&r);
	/* Malformed keys. */
	char longkey[300];
	memset(longkey, 'k', 256);
	longkey[256] = '\0';
	const char *bad[] = { "Idempotency-Key;", NULL };
	post("/api/events", u.token, b2, bad, &r);
	expect_error(&r, 400, "invalid_idempotency_key", NULL);
	http_resp_free(&r);
	post("/api/events", u.token, b2, with_key(longkey), &r);
	expect_error(&r, 400, "invalid_idempotency_key", NULL);
	http_resp_free(&r);
	post("/api/events", u.token, b2, with_key("caf\xc3\xa9"), &r);
	expect_error(&r, 400, "invalid_idempotency_key", NULL);
	http_resp_free(&r);
	longkey[255] = '\0';
	post("/api/events", u.token, b2, with_key(longkey), &r);
	ck_assert_int_eq(r.status, 201);
	http_resp_free(&r);
	ck_assert_int_eq(events_of(&u), 3);
	user_free(&u);
	free(k2);
	free(b1);
	free(b2);
	free(key);
}
END_TEST

START_TEST(idempotency_keys_are_per_user)
{
	struct user u = register_user("scope"), v = register_user("scope");
	char *key = unique_key("logout");
	struct http_resp r;
	post("/api/auth/logout", u.token, NULL, with_key(key), &r);
	ck_assert_int_eq(r.status, 204);
	http_resp_free(&r);
	/* The same key from another user runs: v's token is revoked. */
	post("/api/auth/logout", v.token, NULL, with_key(key), &r);
	ck_assert_int_eq(r.status, 204);
	expect_header(&r, "Idempotent-Replayed", NULL);
	http_resp_free(&r);
	get("/api/auth/me", v.token, &r);
	ck_assert_int_eq(r.status, 401);
	http_resp_free(&r);
	const char *p[] = { key };
	ck_assert_int_eq(sql_count("SELECT count(*) FROM idempotency_keys WHERE key = $1", 1, p), 2);
	user_free(&u);
	user_free(&v);
	free(key);
}
END_TEST

START_TEST(idempotency_server_error_does_not_pin)
{
	/* The statement timeout is the database's default for new sessions:
	 * gala migrate sets it, the restarted pool's sessions take it. */
	ck_assert_int_eq(stack_ctl("gala-migrate DB_STATEMENT_TIMEOUT_MS=400"), 0);
	restart("");
	struct user u = verified_user("err");
	char *body = event_body("Timed out"), *key = unique_key("err");
	PGconn *lock = hold_events();
	struct http_resp r;
	post("/api/events", u.token, body, with_key(key), &r);
	release_events(lock);
	/* The statement timeout cancelled it: a server-side failure (503, the
	 * database did not answer in time), long before nginx's 504. */
	expect_error(&r, 503, "database_unavailable", NULL);
	http_resp_free(&r);
	post("/api/events", u.token, body, with_key(key), &r);
	ck_assert_msg(r.status == 201, "retry: %ld %s", r.status, r.body);
	expect_header(&r, "Idempotent-Replayed", NULL);
	http_resp_free(&r);
	ck_assert_int_eq(events_of(&u), 1);
	user_free(&u);
	free(body);
	free(key);
	ck_assert_int_eq(stack_ctl("gala-migrate"), 0);
	restart("");
}
END_TEST

/* The fingerprint a worker stores for body: an HMAC under a key derived
 * from SECRET_KEY (src/http/idempotency_stage.c). */
static void fingerprint_of(const char *body, char out[65])
{
	static const char label[] = "gala idempotency fingerprint v1";
	char key[65];
	crypto_hmac_sha256_hex(test_env("TEST_SECRET_KEY"), label, strlen(label), key);
	crypto_hmac_sha256_hex(key, body, strlen(body), out);
}

/* Waits until a statement waits for a lock on table. */
static void wait_lock_waiter(const char *table)
{
	const char *p[] = { table };
	for (int i = 0; i < 100; i++) {
		if (sql_count("SELECT count(*) FROM pg_locks WHERE relation = $1::regclass "
		    "AND NOT granted", 1, p) > 0)
			return;
		usleep(50000);
	}
	ck_abort_msg("nothing came to wait for %s", table);
}

/* Stalls a create of bg where it settles its key: after the handler's work,
 * before anything of it is committed with the stored response. Inserts into
 * events wait first (the key is claimed by then), then the key table is
 * locked and events let go. Returns the session holding the key table. */
static PGconn *stall_at_settle(struct bg_post *bg)
{
	PGconn *events = hold_events();
	pthread_create(&bg->thread, NULL, bg_create, bg);
	wait_in_flight(bg->key);
	wait_lock_waiter("events");
	PGconn *keys = test_db_superuser();
	PQclear(PQexec(keys, "BEGIN"));
	PGresult *res = PQexec(keys, "LOCK TABLE idempotency_keys IN ACCESS EXCLUSIVE MODE");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	release_events(events);
	wait_lock_waiter("idempotency_keys");
	return keys;
}

/* Ends the session of the request waiting to settle its key: what reaches
 * Postgres when the worker (or its host) dies before its settling
 * statements are sent. Postgres may have ended it first, when its client
 * was killed (client_connection_check_interval): then found is 0. */
static void cut_settling_session(PGconn *keys, int found)
{
	PGconn *c = test_db_superuser();
	PGresult *res = PQexec(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
	    "WHERE relation = 'idempotency_keys'::regclass AND NOT granted");
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	ck_assert_int_ge(atoi(PQgetvalue(res, 0, 0)), found);
	PQclear(res);
	PQfinish(c);
	release_events(keys);
}

/* The handler's work commits together with the stored response, never
 * without it: when that commit fails, the client hears 503, nothing was
 * created, and the key is free for the retry, which runs once. */
START_TEST(idempotency_work_commits_with_its_response)
{
	struct user u = verified_user("atomic");
	char *body = event_body("Atomic"), *key = unique_key("atomic");
	struct bg_post first = { .token = u.token, .body = body, .key = key };
	cut_settling_session(stall_at_settle(&first), 1);
	pthread_join(first.thread, NULL);
	expect_error(&first.resp, 503, "database_unavailable", NULL);
	ck_assert_int_eq(events_of(&u), 0);
	struct http_resp r;
	post("/api/events", u.token, body, with_key(key), &r);
	ck_assert_msg(r.status == 201, "retry: %ld %s", r.status, r.body);
	expect_header(&r, "Idempotent-Replayed", NULL);
	http_resp_free(&r);
	post("/api/events", u.token, body, with_key(key), &r);
	ck_assert_int_eq(r.status, 201);
	expect_header(&r, "Idempotent-Replayed", "true");
	ck_assert_int_eq(events_of(&u), 1);
	http_resp_free(&r);
	http_resp_free(&first.resp);
	user_free(&u);
	free(body);
	free(key);
}
END_TEST

/* A worker killed (kill -9) after its handler's work and before the
 * response is stored: the work is gone with it, so the retry after the
 * stale period creates the event once; it is never created twice. */
START_TEST(idempotency_killed_worker_runs_once)
{
	struct user u = verified_user("killed");
	char *body = event_body("Killed"), *key = unique_key("killed");
	struct bg_post first = { .token = u.token, .body = body, .key = key };
	PGconn *keys = stall_at_settle(&first);
	char *pids = stack_ctl_output("gala-worker-pids");
	ck_assert_ptr_nonnull(pids);
	for (char *tok = strtok(pids, " "); tok != NULL; tok = strtok(NULL, " "))
		ck_assert_int_eq(kill((pid_t)atoi(tok), SIGKILL), 0);
	free(pids);
	cut_settling_session(keys, 0);
	pthread_join(first.thread, NULL);
	ck_assert_msg(first.resp.status >= 500, "the killed request answered %ld: %s",
	    first.resp.status, first.resp.body);
	/* In flight until the claim is stale; then as good as new. */
	struct http_resp r = { 0 };
	for (int i = 0; i < 100; i++) {
		http_resp_free(&r);
		post("/api/events", u.token, body, with_key(key), &r);
		if (r.status != 502 && r.status != 503)
			break;
		usleep(100000);
	}
	expect_error(&r, 409, "idempotency_key_in_use", NULL);
	http_resp_free(&r);
	const char *p[] = { key };
	sql("UPDATE idempotency_keys SET locked_at = now() - interval '1 hour' WHERE key = $1", 1, p);
	post("/api/events", u.token, body, with_key(key), &r);
	ck_assert_msg(r.status == 201, "retry: %ld %s", r.status, r.body);
	ck_assert_int_eq(events_of(&u), 1);
	http_resp_free(&r);
	http_resp_free(&first.resp);
	user_free(&u);
	free(body);
	free(key);
}
END_TEST

START_TEST(idempotency_stale_claims_and_stored_headers)
{
	/* The claim of a worker that died: 409 while it may still be running,
	 * taken over once it is older than the request timeout. */
	struct user u = verified_user("stale");
	char *body = event_body("Taken over"), *key = unique_key("stale");
	char scope[64];
	snprintf(scope, sizeof scope, "user:%s", u.id);
	char fp[65];
	fingerprint_of(body, fp);
	const char *p[] = { key, fp, scope };
	sql("INSERT INTO idempotency_keys (scope, key, request_method, request_path, "
	    "request_fingerprint, lock_token, locked_at) "
	    "VALUES ($3, $1, 'POST', '/api/events', $2, 'dead-worker', now())", 3, p);
	struct http_resp r;
	post("/api/events", u.token, body, with_key(key), &r);
	expect_error(&r, 409, "idempotency_key_in_use", NULL);
	http_resp_free(&r);
	sql("UPDATE idempotency_keys SET locked_at = now() - interval '1 hour' WHERE key = $1", 1, p);
	post("/api/events", u.token, body, with_key(key), &r);
	ck_assert_msg(r.status == 201, "takeover: %ld %s", r.status, r.body);
	http_resp_free(&r);
	ck_assert_int_eq(sql_count("SELECT response_status FROM idempotency_keys WHERE key = $1", 1, p), 201);

	/* A stored answer comes back byte for byte, with its Location. */
	char *key2 = unique_key("loc");
	char *body2 = event_body("Stored");
	fingerprint_of(body2, fp);
	const char *q[] = { key2, fp, scope };
	sql("INSERT INTO idempotency_keys (scope, key, request_method, request_path, "
	    "request_fingerprint, response_status, response_content_type, response_body, "
	    "response_headers, completed_at) VALUES ($3, $1, 'POST', '/api/events', "
	    "$2, 201, 'application/json', convert_to('{\"id\":\"x\",  \"n\":1}', 'UTF8'), "
	    "'{\"Location\":\"/api/things/x\"}', now())", 3, q);
	post("/api/events", u.token, body2, with_key(key2), &r);
	ck_assert_int_eq(r.status, 201);
	ck_assert_str_eq(r.body, "{\"id\":\"x\",  \"n\":1}");
	expect_header(&r, "Location", "/api/things/x");
	expect_header(&r, "Idempotent-Replayed", "true");
	http_resp_free(&r);
	ck_assert_int_eq(events_of(&u), 1);
	user_free(&u);
	free(body);
	free(body2);
	free(key);
	free(key2);
}
END_TEST

START_TEST(maintenance_purges_expired_state)
{
	struct user u = register_user("purge"), keep = register_user("keep");
	char *b_old = forgot_body("nobody-old@example.com"), *b_mid = forgot_body("nobody-mid@example.com");
	char *k_old = unique_key("old"), *k_mid = unique_key("mid");
	struct http_resp r;
	post("/api/auth/forgot-password", NULL, b_old, with_key(k_old), &r);
	ck_assert_int_eq(r.status, 200);
	http_resp_free(&r);
	post("/api/auth/forgot-password", NULL, b_mid, with_key(k_mid), &r);
	ck_assert_int_eq(r.status, 200);
	http_resp_free(&r);
	const char *ko[] = { k_old }, *km[] = { k_mid };
	sql("UPDATE idempotency_keys SET created_at = now() - interval '73 hours' WHERE key = $1", 1, ko);
	sql("UPDATE idempotency_keys SET created_at = now() - interval '71 hours' WHERE key = $1", 1, km);
	sql("INSERT INTO rate_limits (key, tat, allowed) VALUES ('test:expired', now() - interval '1 minute', true), "
	    "('test:live', now() + interval '1 hour', true) ON CONFLICT (key) DO UPDATE SET tat = excluded.tat", 0, NULL);
	const char *pu[] = { u.id }, *pk[] = { keep.id };
	sql("INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES "
	    "(gen_random_uuid(), $1, now() - interval '1 hour'), (gen_random_uuid(), $1, now() + interval '1 hour')", 1, pu);
	sql("INSERT INTO password_reset_tokens (token_hash, user_id, expires_at, used_at) VALUES "
	    "(md5(random()::text), $1, now() + interval '20 minutes', now()), "
	    "(md5(random()::text), $1, now() - interval '1 minute', NULL), "
	    "(md5(random()::text), $1, now() + interval '20 minutes', NULL)", 1, pu);
	sql("UPDATE email_otps SET expires_at = now() - interval '2 days' WHERE user_id = $1", 1, pu);
	sql("INSERT INTO mfa_tokens (token_hash, user_id, expires_at, used_at) VALUES "
	    "(md5(random()::text), $1, now() + interval '4 minutes', now()), "
	    "(md5(random()::text), $1, now() - interval '1 minute', NULL), "
	    "(md5(random()::text), $1, now() + interval '4 minutes', NULL)", 1, pu);

	char *out = stack_ctl_output("gala maintenance 2>&1; echo \"exit=$?\"");
	ck_assert_msg(strstr(out, "exit=0") != NULL, "gala maintenance: %s", out);
	ck_assert_msg(strstr(out, "maintenance finished") != NULL && strstr(out, "\"idempotency_keys\":") != NULL,
	    "no report: %s", out);
	free(out);

	ck_assert_int_eq(sql_count("SELECT count(*) FROM idempotency_keys WHERE key = $1", 1, ko), 0);
	ck_assert_int_eq(sql_count("SELECT count(*) FROM idempotency_keys WHERE key = $1", 1, km), 1);
	ck_assert_int_eq(sql_count("SELECT count(*) FROM rate_limits WHERE key = 'test:expired'", 0, NULL), 0);
	ck_assert_int_eq(sql_count("SELECT count(*) FROM rate_limits WHERE key = 'test:live'", 0, NULL), 1);
	ck_assert_int_eq(sql_count("SELECT count(*) FROM revoked_tokens WHERE user_id = $1", 1, pu), 1);
	ck_assert_int_eq(sql_count("SELECT count(*) FROM revoked_tokens WHERE user_id = $1 "
	    "AND expires_at > now()", 1, pu), 1);
	ck_assert_int_eq(sql_count("SELECT count(*) FROM password_reset_tokens WHERE user_id = $1", 1, pu), 1);
	ck_assert_int_eq(sql_count("SELECT count(*) FROM mfa_tokens WHERE user_id = $1 "
	    "AND used_at IS NULL AND expires_at > now()", 1, pu), 1);
	ck_assert_int_eq(sql_count("SELECT count(*) FROM mfa_tokens WHERE user_id = $1", 1, pu), 1);
	ck_assert_int_eq(sql_count("SELECT count(*) FROM email_otps WHERE user_id = $1", 1, pu), 0);
	ck_assert_int_eq(sql_count("SELECT count(*) FROM email_otps WHERE user_id = $1", 1, pk), 1);
	sql("DELETE FROM rate_limits WHERE key = 'test:live'", 0, NULL);

	/* The purged key is free again; the younger one still guards. */
	char *b_new = forgot_body("nobody@example.com");
	post("/api/auth/forgot-password", NULL, b_new, with_key(k_old), &r);
	ck_assert_msg(r.status == 200, "purged key: %ld %s", r.status, r.body);
	expect_header(&r, "Idempotent-Replayed", NULL);
	http_resp_free(&r);
	post("/api/auth/forgot-password", NULL, b_new, with_key(k_mid), &r);
	expect_error(&r, 422, "idempotency_key_reused", NULL);
	http_resp_free(&r);
	user_free(&u);
	user_free(&keep);
	free(b_old);
	free(b_mid);
	free(b_new);
	free(k_old);
	free(k_mid);
}
END_TEST

/* ---- audit log read path ---- */

static struct http_resp audit_get(const char *token, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static struct http_resp audit_get(const char *token, const char *fmt, ...)
{
	char path[1024] = "/api/admin/audit-logs";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path + strlen(path), sizeof path - strlen(path), fmt, ap);
	va_end(ap);
	struct http_resp r;
	get(path, token, &r);
	return r;
}

static long long total_of(const struct http_resp *r)
{
	ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
	return (long long)jget(r->json, "total")->valuedouble;
}

static int items_of(const struct http_resp *r)
{
	return cJSON_GetArraySize(jget(r->json, "items"));
}

static const char *item_str(const struct http_resp *r, int i, const char *name)
{
	cJSON *v = jget(cJSON_GetArrayItem(jget(r->json, "items"), i), name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

START_TEST(audit_logs_access)
{
	struct user admin = register_user("auditor"), plain = register_user("plain");
	const char *p[] = { admin.id };
	sql("UPDATE users SET role = 'admin', email_verified = true WHERE id = $1", 1, p);
	struct http_resp r = audit_get(NULL, "%s", "");
	expect_error(&r, 401, "authentication_required", NULL);
	http_resp_free(&r);
	r = audit_get(plain.token, "%s", "");
	expect_error(&r, 403, "forbidden", NULL);
	http_resp_free(&r);
	r = audit_get(admin.token, "%s", "");
	ck_assert_int_eq(total_of(&r), sql_count("SELECT count(*) FROM audit_logs", 0, NULL));
	ck_assert_int_eq(jget(r.json, "limit")->valueint, 50);
	ck_assert_int_eq(jget(r.json, "offset")->valueint, 0);
	ck_assert_int_le(items_of(&r), 50);
	http_resp_free(&r);

	static const char *const bad[][2] = {
		{ "?limit=0", "limit" }, { "?limit=101", "limit" }, { "?limit=abc", "limit" },
		{ "?limit=", "limit" }, { "?offset=-1", "offset" }, { "?offset=x", "offset" },
		{ "?actor_user_id=nope", "actor_user_id" }, { "?target_user_id=123", "target_user_id" },
		{ "?actor_user_id=", "actor_user_id" },
		{ "?created_after=yesterday", "created_after" },
		{ "?created_before=2026-02-30T00:00:00Z", "created_before" },
		{ "?created_after=2026-05-01", "created_after" },
		/* Offsets RFC 3339 does not have: 422, not a database error. */
		{ "?created_after=2026-05-01T00:00:00%2B24:00", "created_after" },
		{ "?created_before=2026-05-01T00:00:00-05:60", "created_before" },
		{ "?created_after=0000-06-01T00:00:00Z", "created_after" },
		{ "?status=maybe", "status" }, { "?action=", "action" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		r = audit_get(admin.token, "%s", bad[i][0]);
		expect_error(&r, 422, "validation_failed", bad[i][1]);
		http_resp_free(&r);
	}
	user_free(&admin);
	user_free(&plain);
}
END_TEST

START_TEST(audit_logs_filters_and_pages)
{
	struct user admin = register_user("auditor");
	const char *pa[] = { admin.id };
	sql("UPDATE users SET role = 'admin', email_verified = true WHERE id = $1", 1, pa);
	struct user a = register_user("subject");
	char *mid = sql_text("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", 0, NULL);
	ck_assert_int_eq(login(a.email, "wrong-password-1", NULL, NULL), 401);
	ck_assert_int_eq(login(a.email, PW, NULL, NULL), 200);

	/* Everything about a, newest first, in the database's own order. */
	struct http_resp r = audit_get(admin.token, "?target_user_id=%s", a.id);
	ck_assert_int_eq(total_of(&r), 3);
	ck_assert_int_eq(items_of(&r), 3);
	const char *pt[] = { a.id };
	for (int i = 0; i < 3; i++) {
		char off[8];
		snprintf(off, sizeof off, "%d", i);
		const char *q[] = { a.id, off };
		char *id = sql_text("SELECT id FROM audit_logs WHERE target_user_id = $1 "
		    "ORDER BY created_at DESC, id DESC OFFSET $2::int LIMIT 1", 2, q);
		ck_assert_str_eq(item_str(&r, i, "id"), id);
		free(id);
	}
	ck_assert_str_eq(item_str(&r, 0, "action"), "auth.login");
	ck_assert_str_eq(item_str(&r, 0, "status"), "success");
	ck_assert_str_eq(item_str(&r, 1, "status"), "failure");
	ck_assert_str_eq(item_str(&r, 2, "action"), "auth.register");
	/* The entry's shape: exactly these members, metadata an object. */
	static const char *const members[] = { "id", "actor_user_id", "target_user_id", "action",
		"status", "ip", "user_agent", "request_id", "metadata", "created_at" };
	cJSON *failure = cJSON_GetArrayItem(jget(r.json, "items"), 1);
	ck_assert_int_eq(cJSON_GetArraySize(failure), 10);
	for (size_t i = 0; i < 10; i++)
		ck_assert_msg(cJSON_HasObjectItem(failure, members[i]), "no %s", members[i]);
	ck_assert(cJSON_IsNull(jget(failure, "actor_user_id")));
	ck_assert_str_eq(jget(failure, "ip")->valuestring, "127.0.0.1");
	ck_assert(cJSON_IsObject(jget(failure, "metadata")));
	ck_assert(cJSON_IsString(jget(jget(failure, "metadata"), "reason")));
	ck_assert_uint_eq(strlen(jget(failure, "created_at")->valuestring), 20);
	http_resp_free(&r);

	/* Each filter, alone and combined; totals count the filtered rows. */
	r = audit_get(admin.token, "?actor_user_id=%s", a.id);
	ck_assert_int_eq(total_of(&r), sql_count("SELECT count(*) FROM audit_logs WHERE actor_user_id = $1", 1, pt));
	ck_assert_int_eq(total_of(&r), 2);
	for (int i = 0; i < items_of(&r); i++)
		ck_assert_str_eq(item_str(&r, i, "actor_user_id"), a.id);
	http_resp_free(&r);
	r = audit_get(admin.token, "?target_user_id=%s&status=failure", a.id);
	ck_assert_int_eq(total_of(&r), 1);
	ck_assert_str_eq(item_str(&r, 0, "action"), "auth.login");
	http_resp_free(&r);
	r = audit_get(admin.token, "?status=failure&limit=100");
	ck_assert_int_eq(total_of(&r), sql_count("SELECT count(*) FROM audit_logs WHERE status = 'failure'", 0, NULL));
	for (int i = 0; i < items_of(&r); i++)
		ck_assert_str_eq(item_str(&r, i, "status"), "failure");
	http_resp_free(&r);
	r = audit_get(admin.token, "?action=auth.login&target_user_id=%s", a.id);
	ck_assert_int_eq(total_of(&r), 2);
	http_resp_free(&r);
	r = audit_get(admin.token, "?action=auth.register&limit=100");
	ck_assert_int_eq(total_of(&r), sql_count("SELECT count(*) FROM audit_logs WHERE action = 'auth.register'", 0, NULL));
	for (int i = 0; i < items_of(&r); i++)
		ck_assert_str_eq(item_str(&r, i, "action"), "auth.register");
	http_resp_free(&r);
	r = audit_get(admin.token, "?action=auth.register&status=success&actor_user_id=%s&target_user_id=%s",
	    a.id, a.id);
	ck_assert_int_eq(total_of(&r), 1);
	http_resp_free(&r);
	r = audit_get(admin.token, "?action=no.such.action");
	ck_assert_int_eq(total_of(&r), 0);
	ck_assert_int_eq(items_of(&r), 0);
	http_resp_free(&r);
	r = audit_get(admin.token, "?target_user_id=%s&created_before=%s", a.id, mid);
	ck_assert_int_eq(total_of(&r), 1);
	ck_assert_str_eq(item_str(&r, 0, "action"), "auth.register");
	http_resp_free(&r);
	r = audit_get(admin.token, "?target_user_id=%s&created_after=%s", a.id, mid);
	ck_assert_int_eq(total_of(&r), 2);
	http_resp_free(&r);
	r = audit_get(admin.token, "?target_user_id=%s&created_after=%s&created_before=2999-01-01T00:00:00%%2B02:00",
	    a.id, mid);
	ck_assert_int_eq(total_of(&r), 2);
	http_resp_free(&r);
	r = audit_get(admin.token, "?target_user_id=%s&created_after=2999-01-01T00:00:00Z", a.id);
	ck_assert_int_eq(total_of(&r), 0);
	http_resp_free(&r);
	/* Any RFC 3339 offset, also those beyond Postgres' +-15:59: mid written
	 * as local time at +20:00 is the same instant. */
	const char *pm[] = { mid };
	char *mid20 = sql_text("SELECT to_char(($1::timestamptz AT TIME ZONE 'UTC') + interval '20 hours', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '%2B20:00'", 1, pm);
	r = audit_get(admin.token, "?target_user_id=%s&created_after=%s", a.id, mid20);
	ck_assert_int_eq(total_of(&r), 2);
	http_resp_free(&r);
	r = audit_get(admin.token, "?target_user_id=%s&created_before=%s", a.id, mid20);
	ck_assert_int_eq(total_of(&r), 1);
	http_resp_free(&r);
	free(mid20);
	r = audit_get(admin.token, "?target_user_id=%s&created_before=2999-01-01T00:00:00-23:59", a.id);
	ck_assert_int_eq(total_of(&r), 3);
	http_resp_free(&r);

	/* Pages: consecutive, and past the end an empty page with the total. */
	struct http_resp all = audit_get(admin.token, "?target_user_id=%s&limit=2", a.id);
	ck_assert_int_eq(items_of(&all), 2);
	ck_assert_int_eq(jget(all.json, "limit")->valueint, 2);
	for (int i = 0; i < 3; i++) {
		r = audit_get(admin.token, "?target_user_id=%s&limit=1&offset=%d", a.id, i);
		ck_assert_int_eq(total_of(&r), 3);
		ck_assert_int_eq(items_of(&r), 1);
		ck_assert_int_eq(jget(r.json, "offset")->valueint, i);
		if (i < 2)
			ck_assert_str_eq(item_str(&r, 0, "id"), item_str(&all, i, "id"));
		http_resp_free(&r);
	}
	http_resp_free(&all);
	r = audit_get(admin.token, "?target_user_id=%s&offset=3", a.id);
	ck_assert_int_eq(total_of(&r), 3);
	ck_assert_int_eq(items_of(&r), 0);
	http_resp_free(&r);
	r = audit_get(admin.token, "?target_user_id=%s&offset=1000&limit=100", a.id);
	ck_assert_int_eq(total_of(&r), 3);
	ck_assert_int_eq(items_of(&r), 0);
	http_resp_free(&r);
	free(mid);
	user_free(&admin);
	user_free(&a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-limits");
	/* With the stack's own (generous) limits first, then the tests that
	 * restart the pool with settings of their own. */
	TCase *idem = tcase_create("idempotency-and-audit");
	tcase_set_timeout(idem, 60);
	tcase_add_test(idem, idempotency_replays_and_creates_nothing);
	tcase_add_test(idem, idempotency_never_keeps_credentials);
	tcase_add_test(idem, idempotency_concurrent_duplicates);
	tcase_add_test(idem, idempotency_work_commits_with_its_response);
	tcase_add_test(idem, idempotency_killed_worker_runs_once);
	tcase_add_test(idem, idempotency_key_reuse_and_refusals);
	tcase_add_test(idem, idempotency_keys_are_per_user);
	tcase_add_test(idem, idempotency_stale_claims_and_stored_headers);
	tcase_add_test(idem, maintenance_purges_expired_state);
	tcase_add_test(idem, audit_logs_access);
	tcase_add_test(idem, audit_logs_filters_and_pages);
	suite_add_tcase(s, idem);
	TCase *lim = tcase_create("limiter");
	tcase_set_timeout(lim, 90);
	tcase_add_test(lim, idempotency_server_error_does_not_pin);
	tcase_add_test(lim, limiter_statement_is_atomic);
	tcase_add_test(lim, limiter_processes_admit_exactly_n);
	tcase_add_test(lim, limiter_shared_by_two_pools);
	tcase_add_test(lim, limiter_window_rolls);
	tcase_add_test(lim, limiter_headers);
	tcase_add_test(lim, limiter_write_rule_per_user);
	tcase_add_test(lim, limiter_per_email_across_ips);
	tcase_add_test(lim, limiter_ignores_spoofed_forwarded_for);
	tcase_add_test(lim, limiter_can_be_disabled);
	tcase_add_test(lim, limiter_fails_closed_without_postgres);
	suite_add_tcase(s, lim);
	return test_run_suite(s);
}
