/* End-to-end tests of the foundation, through the real nginx and TLS, with
 * the worker pool and PostgreSQL of a throwaway stack (tests/stack). The
 * fault tests stop and start parts of the stack and leave it as they found
 * it. */
#include "autoconf.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "testlib.h"

static cJSON *jget(const struct http_resp *r, const char *name)
{
	return cJSON_GetObjectItem(r->json, name);
}

static void assert_json_error(const struct http_resp *r, long status, const char *code)
{
	ck_assert_int_eq(r->status, status);
	ck_assert_msg(r->json != NULL, "status %ld: body is not JSON: %s", r->status, r->body);
	cJSON *e = jget(r, "error");
	ck_assert_msg(cJSON_IsObject(e), "no error envelope: %s", r->body);
	ck_assert_msg(cJSON_IsString(cJSON_GetObjectItem(e, "type")), "no type: %s", r->body);
	ck_assert_msg(cJSON_IsString(cJSON_GetObjectItem(e, "message")), "no message: %s", r->body);
	if (code != NULL)
		ck_assert_str_eq(http_error_code(r), code);
	char *ct = http_header(r, "Content-Type");
	ck_assert_msg(ct != NULL && strncmp(ct, "application/json", 16) == 0,
	    "Content-Type %s", ct ? ct : "(none)");
	free(ct);
}

static void assert_health(long want)
{
	struct http_resp r;
	ck_assert_int_eq(http_do("GET", "/api/health", NULL, NULL, &r), 0);
	ck_assert_msg(r.status == want, "health %ld (want %ld): %s", r.status, want, r.body);
	http_resp_free(&r);
}

/* Waits up to secs for health to answer want. */
static int wait_health(long want, int secs)
{
	for (int i = 0; i < secs * 10; i++) {
		struct http_resp r;
		int ok = http_do("GET", "/api/health", NULL, NULL, &r) == 0 && r.status == want;
		http_resp_free(&r);
		if (ok)
			return 1;
		usleep(100000);
	}
	return 0;
}

START_TEST(health_ok_with_security_headers)
{
	struct http_resp r;
	ck_assert_int_eq(http_do("GET", "/api/health", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(jget(&r, "status")->valuestring, "ok");
	ck_assert_str_eq(jget(&r, "database")->valuestring, "ok");
	ck_assert(cJSON_IsString(jget(&r, "version")));
	char *hsts = http_header(&r, "Strict-Transport-Security");
	char *nosniff = http_header(&r, "X-Content-Type-Options");
	char *rid = http_header(&r, "X-Request-ID");
	ck_assert_ptr_nonnull(hsts);
	ck_assert_ptr_nonnull(strstr(hsts, "max-age="));
	ck_assert_str_eq(nosniff, "nosniff");
	ck_assert_ptr_nonnull(rid);
	ck_assert_uint_eq(strlen(rid), 32);   /* nginx's $request_id */
	free(hsts);
	free(nosniff);
	free(rid);
	http_resp_free(&r);
}
END_TEST

START_TEST(request_id_from_client_or_nginx)
{
	struct http_resp r;
	const char *good[] = { "X-Request-ID: trace-abc.123_X", NULL };
	ck_assert_int_eq(http_do("GET", "/api/nope", good, NULL, &r), 0);
	char *rid = http_header(&r, "X-Request-ID");
	ck_assert_str_eq(rid, "trace-abc.123_X");
	ck_assert_str_eq(cJSON_GetObjectItem(jget(&r, "error"), "request_id")->valuestring,
	    "trace-abc.123_X");
	free(rid);
	http_resp_free(&r);

	/* nginx's own answers (a path outside the API, a body over its
	 * limit) carry the client's id as well. */
	const char *mine[] = { "X-Request-ID: nginx-side.1", "Content-Type: application/json", NULL };
	ck_assert_int_eq(http_do("GET", "/index.html", mine, NULL, &r), 0);
	assert_json_error(&r, 404, NULL);
	rid = http_header(&r, "X-Request-ID");
	ck_assert_str_eq(rid, "nginx-side.1");
	ck_assert_str_eq(cJSON_GetObjectItem(jget(&r, "error"), "request_id")->valuestring, rid);
	free(rid);
	http_resp_free(&r);
	char *big = malloc(100 * 1024 + 1);
	memset(big, ' ', 100 * 1024);
	big[0] = '{';
	big[100 * 1024 - 1] = '}';
	big[100 * 1024] = '\0';
	ck_assert_int_eq(http_do("POST", "/api/auth/login", mine, big, &r), 0);
	assert_json_error(&r, 413, NULL);
	rid = http_header(&r, "X-Request-ID");
	ck_assert_str_eq(rid, "nginx-side.1");
	ck_assert_str_eq(cJSON_GetObjectItem(jget(&r, "error"), "request_id")->valuestring, rid);
	free(rid);
	free(big);
	http_resp_free(&r);

	const char *bad[] = { "X-Request-ID: has spaces and <tags>", NULL };
	ck_assert_int_eq(http_do("GET", "/api/nope", bad, NULL, &r), 0);
	rid = http_header(&r, "X-Request-ID");
	ck_assert_ptr_nonnull(rid);
	ck_assert_uint_eq(strlen(rid), 32);
	ck_assert_str_eq(cJSON_GetObjectItem(jget(&r, "error"), "request_id")->valuestring, rid);
	free(rid);
	http_resp_free(&r);
}
END_TEST

START_TEST(unknown_routes_are_json_404)
{
	struct http_resp r;
	ck_assert_int_eq(http_do("GET", "/api/no/such/route", NULL, NULL, &r), 0);
	assert_json_error(&r, 404, "not_found");
	http_resp_free(&r);
	/* Outside the API nginx answers itself, still in JSON. */
	ck_assert_int_eq(http_do("GET", "/index.html", NULL, NULL, &r), 0);
	assert_json_error(&r, 404, NULL);
	http_resp_free(&r);
	ck_assert_int_eq(http_do("GET", "/", NULL, NULL, &r), 0);
	assert_json_error(&r, 404, NULL);
	http_resp_free(&r);
	/* The base path itself is not a resource either: no HTML redirect. */
	ck_assert_int_eq(http_do("GET", "/api", NULL, NULL, &r), 0);
	assert_json_error(&r, 404, NULL);
	char *loc = http_header(&r, "Location");
	ck_assert_msg(loc == NULL, "Location: %s", loc);
	http_resp_free(&r);
}
END_TEST

START_TEST(wrong_method_is_405_with_allow)
{
	struct http_resp r;
	ck_assert_int_eq(http_do("DELETE", "/api/health", NULL, NULL, &r), 0);
	assert_json_error(&r, 405, "method_not_allowed");
	char *allow = http_header(&r, "Allow");
	ck_assert_ptr_nonnull(allow);
	ck_assert_str_eq(allow, "GET, HEAD");
	free(allow);
	http_resp_free(&r);

	ck_assert_int_eq(http_do("HEAD", "/api/health", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, 0);
	http_resp_free(&r);
}
END_TEST

START_TEST(plain_http_redirects_to_https)
{
	char url[512];
	snprintf(url, sizeof url, "%s/api/health", test_env("TEST_HTTP_URL"));
	struct http_resp r;
	const char *rid[] = { "X-Request-ID: plain-http.1", NULL };
	ck_assert_int_eq(http_do("GET", url, rid, NULL, &r), 0);
	ck_assert(r.status == 301 || r.status == 308);
	char *loc = http_header(&r, "Location");
	ck_assert_ptr_nonnull(loc);
	ck_assert_msg(strncmp(loc, "https://", 8) == 0, "Location %s", loc);
	ck_assert_ptr_nonnull(strstr(loc, "/api/health"));
	free(loc);
	/* The redirect is a response like any other. */
	char *echoed = http_header(&r, "X-Request-ID");
	ck_assert_msg(echoed != NULL && strcmp(echoed, "plain-http.1") == 0, "X-Request-ID %s",
	    echoed ? echoed : "(none)");
	free(echoed);
	char *nosniff = http_header(&r, "X-Content-Type-Options");
	ck_assert_msg(nosniff != NULL && strcmp(nosniff, "nosniff") == 0, "nosniff %s",
	    nosniff ? nosniff : "(none)");
	free(nosniff);
	http_resp_free(&r);
}
END_TEST

START_TEST(nginx_limits_answer_json)
{
	struct http_resp r;
	/* A body above client_max_body_size never reaches the app. */
	size_t n = 200 * 1024;
	char *big = malloc(n + 1);
	memset(big, 'a', n);
	big[0] = '"';
	big[n - 1] = '"';
	big[n] = '\0';
	const char *json[] = { "Content-Type: application/json", NULL };
	ck_assert_int_eq(http_do("POST", "/api/health", json, big, &r), 0);
	assert_json_error(&r, 413, NULL);
	http_resp_free(&r);

	/* A URI longer than the header buffers: 414 (HTTP/1.1 clients). */
	http_force_http1 = 1;
	char *path = malloc(20000);
	strcpy(path, "/api/");
	memset(path + 5, 'x', 19000);
	path[19005] = '\0';
	ck_assert_int_eq(http_do("GET", path, NULL, NULL, &r), 0);
	assert_json_error(&r, 414, NULL);
	http_resp_free(&r);

	/* One header larger than the buffers: 400 (nginx's 494). */
	char *hdr = malloc(40000);
	strcpy(hdr, "X-Huge: ");
	memset(hdr + 8, 'y', 39000);
	hdr[39008] = '\0';
	const char *huge[] = { hdr, NULL };
	ck_assert_int_eq(http_do("GET", "/api/health", huge, NULL, &r), 0);
	assert_json_error(&r, 400, NULL);
	http_resp_free(&r);
	http_force_http1 = 0;
	free(big);
	free(path);
	free(hdr);
}
END_TEST

START_TEST(app_body_limit_is_413)
{
	ck_assert_int_eq(stack_ctl("gala-start MAX_BODY_BYTES=2048"), 0);
	struct http_resp r;
	char body[4096];
	memset(body, ' ', sizeof body - 1);
	body[0] = '{';
	body[sizeof body - 2] = '}';
	body[sizeof body - 1] = '\0';
	const char *json[] = { "Content-Type: application/json", NULL };
	ck_assert_int_eq(http_do("POST", "/api/health", json, body, &r), 0);
	assert_json_error(&r, 413, "payload_too_large");
	ck_assert_ptr_nonnull(strstr(r.body, "2048"));
	http_resp_free(&r);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
}
END_TEST

static pid_t master_pid(void)
{
	char *s = stack_ctl_output("gala-master-pid");
	pid_t pid = s ? (pid_t)atoi(s) : 0;
	free(s);
	return pid;
}

static int worker_count(char **pids_out)
{
	char *s = stack_ctl_output("gala-worker-pids");
	int n = 0;
	for (char *p = s; p != NULL && *p != '\0';) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		n++;
		while (*p != ' ' && *p != '\0')
			p++;
	}
	if (pids_out != NULL)
		*pids_out = s;
	else
		free(s);
	return n;
}

START_TEST(killed_worker_is_replaced)
{
	char *pids;
	int before = worker_count(&pids);
	ck_assert_int_ge(before, 1);
	pid_t victim = (pid_t)atoi(pids);
	free(pids);
	ck_assert_int_eq(kill(victim, SIGKILL), 0);
	for (int i = 0; i < 10; i++)
		assert_health(200);
	int back = 0;
	for (int i = 0; i < 50 && !back; i++) {
		char *now;
		int n = worker_count(&now);
		char needle[32];
		snprintf(needle, sizeof needle, "%d", victim);
		back = n == before && strstr(now, needle) == NULL;
		free(now);
		if (!back)
			usleep(100000);
	}
	ck_assert_msg(back, "the pool did not get back to %d workers", before);
	/* The master logged the death with the signal. */
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "grep -q '\"signal\":9' '%s'", test_env("TEST_GALA_LOG"));
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(database_outage_is_503_then_recovers)
{
	ck_assert_int_eq(stack_ctl("pg-stop"), 0);
	struct http_resp r;
	ck_assert_int_eq(http_do("GET", "/api/health", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(jget(&r, "database")->valuestring, "unavailable");
	ck_assert_str_eq(http_error_code(&r), "database_unavailable");
	ck_assert_ptr_null(strstr(r.body, "PGSQL"));    /* no internals */
	http_resp_free(&r);
	ck_assert_int_eq(stack_ctl("pg-start"), 0);
	/* Every worker's next request after recovery succeeds: at once
	 * directly, within server_login_retry through PgBouncer (which turns
	 * clients away for that long after a failed server login). */
	ck_assert(wait_health(200, 5));
	for (int i = 0; i < 12; i++)
		assert_health(200);
}
END_TEST

struct bg_request {
	pthread_t thread;
	long status;
	char body[512];
};

static void *bg_health(void *arg)
{
	struct bg_request *b = arg;
	struct http_resp r;
	b->status = http_do("GET", "/api/health", NULL, NULL, &r) == 0 ? r.status : -1;
	snprintf(b->body, sizeof b->body, "%s", r.body ? r.body : "");
	http_resp_free(&r);
	return NULL;
}

/* Holds the table health reads so that a request stays in flight. */
static PGconn *hold_schema_lock(void)
{
	PGconn *su = test_db_superuser();
	PQclear(PQexec(su, "BEGIN"));
	PGresult *res = PQexec(su, "LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	return su;
}

static void release_lock(PGconn *su)
{
	PQclear(PQexec(su, "COMMIT"));
	PQfinish(su);
}

START_TEST(sigterm_lets_inflight_request_finish)
{
	pid_t master = master_pid();
	ck_assert_int_gt(master, 0);
	PGconn *lock = hold_schema_lock();
	struct bg_request b = { 0 };
	pthread_create(&b.thread, NULL, bg_health, &b);
	usleep(700000);
	ck_assert_int_eq(kill(master, SIGTERM), 0);
	usleep(700000);
	ck_assert_msg(kill(master, 0) == 0, "master exited before its request finished");
	release_lock(lock);
	pthread_join(b.thread, NULL);
	ck_assert_msg(b.status == 200, "in-flight request got %ld: %s", b.status, b.body);
	int gone = 0;
	for (int i = 0; i < 100 && !gone; i++) {
		gone = kill(master, 0) != 0;
		if (!gone)
			usleep(100000);
	}
	ck_assert_msg(gone, "master did not exit after draining");
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
	assert_health(200);
}
END_TEST

START_TEST(stuck_request_is_504_and_worker_replaced)
{
	/* No statement_timeout, so that only REQUEST_TIMEOUT_SECONDS (5 s in the
	 * test stack, nginx's fastcgi_read_timeout too) can end the request. */
	ck_assert_int_eq(stack_ctl("gala-migrate DB_STATEMENT_TIMEOUT_MS=0"), 0);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
	PGconn *lock = hold_schema_lock();
	char *before;
	worker_count(&before);
	struct bg_request b = { 0 };
	pthread_create(&b.thread, NULL, bg_health, &b);
	pthread_join(b.thread, NULL);
	ck_assert_msg(b.status == 504, "stuck request got %ld: %s", b.status, b.body);
	ck_assert_ptr_nonnull(strstr(b.body, "\"error\""));
	/* The master kills the stuck worker shortly after nginx gave up. */
	int replaced = 0;
	for (int i = 0; i < 60 && !replaced; i++) {
		char *now;
		worker_count(&now);
		replaced = strcmp(now, before) != 0;
		free(now);
		if (!replaced)
			usleep(100000);
	}
	release_lock(lock);
	ck_assert_msg(replaced, "stuck worker was not replaced");
	free(before);
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "grep -q 'REQUEST_TIMEOUT_SECONDS' '%s'", test_env("TEST_GALA_LOG"));
	ck_assert_int_eq(system(cmd), 0);
	ck_assert(wait_health(200, 10));
	ck_assert_int_eq(stack_ctl("gala-migrate"), 0);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
}
END_TEST

static volatile int load_stop;
static int load_failures, load_total;

static void *load_loop(void *arg)
{
	(void)arg;
	while (!load_stop) {
		struct http_resp r;
		int ok = http_do("GET", "/api/health", NULL, NULL, &r) == 0 && r.status == 200;
		http_resp_free(&r);
		__atomic_add_fetch(&load_total, 1, __ATOMIC_SEQ_CST);
		if (!ok)
			__atomic_add_fetch(&load_failures, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

START_TEST(sighup_replaces_workers_without_refusing)
{
	char *before;
	int n = worker_count(&before);
	pthread_t t[3];
	load_stop = 0;
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, load_loop, NULL);
	usleep(300000);
	ck_assert_int_eq(stack_ctl("gala-sighup LOG_LEVEL=info"), 0);
	int rolled = 0;
	for (int i = 0; i < 150 && !rolled; i++) {
		usleep(100000);
		char *now;
		int m = worker_count(&now);
		rolled = m == n;
		char *copy = strdup(before);
		for (char *p = strtok(copy, " "); rolled && p != NULL; p = strtok(NULL, " ")) {
			char needle[32];
			snprintf(needle, sizeof needle, " %s ", p);
			char padded[1024];
			snprintf(padded, sizeof padded, " %s ", now);
			rolled = strstr(padded, needle) == NULL;
		}
		free(copy);
		free(now);
	}
	usleep(300000);
	load_stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	free(before);
	ck_assert_msg(rolled, "workers were not replaced after SIGHUP");
	ck_assert_msg(load_failures == 0, "%d of %d requests failed during the reload",
	    load_failures, load_total);
	ck_assert_int_gt(load_total, 10);
}
END_TEST

START_TEST(workers_recycle_after_max_requests)
{
	ck_assert_int_eq(stack_ctl("gala-start WORKERS=1 MAX_REQUESTS_PER_WORKER=5"), 0);
	char *first;
	ck_assert_int_eq(worker_count(&first), 1);
	for (int i = 0; i < 20; i++)
		assert_health(200);
	/* The recycled worker leaves once nginx stops using the connections it
	 * holds (idle for a second); a replacement has been serving meanwhile. */
	int gone = 0;
	for (int i = 0; i < 150 && !gone; i++) {
		char *now;
		worker_count(&now);
		gone = strstr(now, first) == NULL && now[0] != '\0';
		free(now);
		if (!gone)
			usleep(100000);
	}
	ck_assert_msg(gone, "worker %s was not recycled", first);
	for (int i = 0; i < 5; i++)
		assert_health(200);
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "grep -q 'recycling after 5 requests' '%s'", test_env("TEST_GALA_LOG"));
	ck_assert_int_eq(system(cmd), 0);
	free(first);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-foundation");
	TCase *tc = tcase_create("http");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, health_ok_with_security_headers);
	tcase_add_test(tc, request_id_from_client_or_nginx);
	tcase_add_test(tc, unknown_routes_are_json_404);
	tcase_add_test(tc, wrong_method_is_405_with_allow);
	tcase_add_test(tc, plain_http_redirects_to_https);
	tcase_add_test(tc, nginx_limits_answer_json);
	tcase_add_test(tc, app_body_limit_is_413);
	suite_add_tcase(s, tc);
	TCase *faults = tcase_create("faults");
	tcase_set_timeout(faults, 120);
	tcase_add_test(faults, killed_worker_is_replaced);
	tcase_add_test(faults, database_outage_is_503_then_recovers);
	tcase_add_test(faults, sigterm_lets_inflight_request_finish);
	tcase_add_test(faults, stuck_request_is_504_and_worker_replaced);
	tcase_add_test(faults, sighup_replaces_workers_without_refusing);
	tcase_add_test(faults, workers_recycle_after_max_requests);
	suite_add_tcase(s, faults);
	return test_run_suite(s);
}
