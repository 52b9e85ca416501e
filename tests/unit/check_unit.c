/* Unit tests: pure functions, nothing running. */
#include "autoconf.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/arena.h"
#include "core/buf.h"
#include "clients/mailer.h"
#include "core/config.h"
#include "core/netmask.h"
#include "core/crypto.h"
#include "core/jwt.h"
#include "core/log.h"
#include "core/password.h"
#include "core/totp.h"
#include "http/idempotency_stage.h"
#include "http/ratelimit_stage.h"
#include "db/db.h"
#include "http/auth.h"
#include "http/validate.h"
#include "http/json.h"
#include "http/pipeline.h"
#include "http/request.h"
#include "http/response.h"
#include "http/router.h"
#include "server/scoreboard.h"
#include "services/outbox.h"

static struct config unit_cfg;
static arena_t *A;

static void setup(void)
{
	A = arena_new(4096);
	memset(&unit_cfg, 0, sizeof unit_cfg);
	unit_cfg.max_body_bytes = 65536;
	unit_cfg.trusted_proxies = "";
	gala_config = &unit_cfg;
}

static void teardown(void)
{
	arena_free(A);
}

/* A request as nginx would pass it. */
static void make_request(struct request *req, const char *method, const char *uri,
    const char *content_type, const char *body, char **extra)
{
	char **envp = arena_calloc(A, 16, sizeof *envp);
	int n = 0;
	envp[n++] = arena_printf(A, "REQUEST_METHOD=%s", method);
	envp[n++] = arena_printf(A, "REQUEST_URI=%s", uri);
	const char *q = strchr(uri, '?');
	envp[n++] = arena_printf(A, "DOCUMENT_URI=%.*s", q ? (int)(q - uri) : (int)strlen(uri), uri);
	envp[n++] = arena_printf(A, "QUERY_STRING=%s", q ? q + 1 : "");
	envp[n++] = arena_strdup(A, "REMOTE_ADDR=203.0.113.7");
	envp[n++] = arena_strdup(A, "REQUEST_ID=0123456789abcdef0123456789abcdef");
	if (content_type != NULL)
		envp[n++] = arena_printf(A, "CONTENT_TYPE=%s", content_type);
	for (; extra != NULL && *extra != NULL; extra++)
		envp[n++] = *extra;
	request_init(req, A, envp, body, body ? strlen(body) : 0);
}

static void h_ok(struct request *req)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", req->npath_params > 0 ? req->path_params[0] : "");
	response_json(req, 200, o);
}

static const struct route table[] = {
	{ "GET", "/api/things", h_ok, AUTH_NONE, 0, RATE_NONE, 0, 0 },
	{ "POST", "/api/things", h_ok, AUTH_NONE, 0, RATE_NONE, 0, 0 },
	{ "GET", "/api/things/{id}", h_ok, AUTH_NONE, 0, RATE_NONE, 0, 0 },
	{ "PATCH", "/api/things/{id}", h_ok, AUTH_NONE, 0, RATE_NONE, 0, 0 },
	{ "POST", "/api/things/{id}/accept", h_ok, AUTH_NONE, 0, RATE_NONE, 0, 0 },
};
#define NT (sizeof table / sizeof table[0])

static cJSON *resp_json(struct request *req)
{
	cJSON *j = cJSON_ParseWithLength(req->resp.body, req->resp.body_len);
	ck_assert_ptr_nonnull(j);
	return j;
}

static const char *err_code(cJSON *j)
{
	return cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code")->valuestring;
}

/* SQL_TS() columns (epoch seconds as text) become RFC 3339 UTC. */
START_TEST(db_time_formats_epoch_seconds)
{
	static const struct { const char *epoch, *want; } cases[] = {
		{ "0", "1970-01-01T00:00:00Z" },
		{ "1733232301", "2024-12-03T13:25:01Z" },
		{ "-1", "1969-12-31T23:59:59Z" },
		{ "951782400", "2000-02-29T00:00:00Z" },
		{ "253402300799", "9999-12-31T23:59:59Z" },
	};
	int n = (int)(sizeof cases / sizeof cases[0]);
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc att = { .name = "t", .format = 0, .typid = 20, .typlen = 8, .atttypmod = -1 };
	ck_assert_int_eq(PQsetResultAttrs(res, 1, &att), 1);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(PQsetvalue(res, i, 0, (char *)cases[i].epoch,
		    (int)strlen(cases[i].epoch)), 1);
	ck_assert_int_eq(PQsetvalue(res, n, 0, NULL, -1), 1);
	char out[DB_TIME_LEN];
	for (int i = 0; i < n; i++)
		ck_assert_str_eq(db_time(res, i, 0, out), cases[i].want);
	ck_assert_ptr_null(db_time(res, n, 0, out));
	PQclear(res);
}
END_TEST

/* Chunks come back after a reset and memory is reused, not leaked. */
START_TEST(arena_reuses_chunks)
{
	arena_t *a = arena_new(1024);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 40; i++) {
			char *p = arena_alloc(a, 200);
			memset(p, 'x', 200);
		}
		char *big = arena_alloc(a, 5000);
		memset(big, 'y', 5000);
		ck_assert_uint_ge(arena_used(a), 40 * 200 + 5000);
		arena_reset(a);
		ck_assert_uint_eq(arena_used(a), 0);
	}
	arena_free(a);
}
END_TEST

START_TEST(router_matches_params)
{
	struct request req;
	make_request(&req, "GET", "/api/things/abc-123", NULL, NULL, NULL);
	char allow[64];
	ck_assert_int_eq(router_match(table, NT, &req, allow, sizeof allow), ROUTER_MATCH);
	ck_assert_str_eq(req.route->pattern, "/api/things/{id}");
	ck_assert_int_eq(req.npath_params, 1);
	ck_assert_str_eq(req.path_params[0], "abc-123");
}
END_TEST

START_TEST(router_unknown_and_wrong_method)
{
	struct request req;
	char allow[64];
	make_request(&req, "GET", "/api/nothing", NULL, NULL, NULL);
	ck_assert_int_eq(router_match(table, NT, &req, allow, sizeof allow), ROUTER_NOT_FOUND);
	make_request(&req, "GET", "/api/things/", NULL, NULL, NULL);
	ck_assert_int_eq(router_match(table, NT, &req, allow, sizeof allow), ROUTER_NOT_FOUND);
	make_request(&req, "GET", "/api/things/x/y", NULL, NULL, NULL);
	ck_assert_int_eq(router_match(table, NT, &req, allow, sizeof allow), ROUTER_NOT_FOUND);
	make_request(&req, "DELETE", "/api/things/x", NULL, NULL, NULL);
	ck_assert_int_eq(router_match(table, NT, &req, allow, sizeof allow),
	    ROUTER_METHOD_NOT_ALLOWED);
	ck_assert_str_eq(allow, "GET, HEAD, PATCH");
	make_request(&req, "HEAD", "/api/things", NULL, NULL, NULL);
	ck_assert_int_eq(router_match(table, NT, &req, allow, sizeof allow), ROUTER_MATCH);
}
END_TEST

START_TEST(pipeline_404_405_envelope)
{
	struct request req;
	make_request(&req, "GET", "/api/nope", NULL, NULL, NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 404);
	cJSON *j = resp_json(&req);
	cJSON *e = cJSON_GetObjectItem(j, "error");
	ck_assert_str_eq(cJSON_GetObjectItem(e, "type")->valuestring, "not_found");
	ck_assert_str_eq(cJSON_GetObjectItem(e, "request_id")->valuestring,
	    "0123456789abcdef0123456789abcdef");
	cJSON_Delete(j);

	make_request(&req, "PUT", "/api/things/1", NULL, NULL, NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 405);
	ck_assert_str_eq(req.resp.headers[0].name, "Allow");
	ck_assert_str_eq(req.resp.headers[0].value, "GET, HEAD, PATCH");
}
END_TEST

START_TEST(pipeline_body_checks)
{
	struct request req;
	make_request(&req, "POST", "/api/things", "text/plain", "{}", NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 415);

	make_request(&req, "POST", "/api/things", "application/json; charset=latin1", "{}", NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 415);

	make_request(&req, "POST", "/api/things", "application/json", "{\"a\": [1, 2,}", NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 400);
	cJSON *j = resp_json(&req);
	ck_assert_str_eq(err_code(j), "malformed_json");
	ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "position")->valueint, 12);
	cJSON_Delete(j);

	make_request(&req, "POST", "/api/things", "application/json", "{} x", NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 400);

	make_request(&req, "POST", "/api/things", "application/json", "{\"a\":1,\"a\":2}", NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 400);

	make_request(&req, "POST", "/api/things", "application/json", "[1]", NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 422);

	make_request(&req, "POST", "/api/things", "Application/JSON; charset=UTF-8", "{\"a\":1}", NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 200);
	ck_assert_ptr_nonnull(req.json);

	make_request(&req, "POST", "/api/things", "application/json", "{}", NULL);
	req.body_too_large = true;
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 413);
	j = resp_json(&req);
	ck_assert_str_eq(err_code(j), "payload_too_large");
	cJSON_Delete(j);
}
END_TEST

START_TEST(utf8_validation)
{
	ck_assert(utf8_valid("h\xc3\xa9llo", 6));
	ck_assert(utf8_valid("\xf0\x9f\x8e\x89", 4));
	ck_assert(!utf8_valid("\xc3", 1));
	ck_assert(!utf8_valid("\xc0\xaf", 2));           /* overlong */
	ck_assert(!utf8_valid("\xed\xa0\x80", 3));       /* surrogate */
	ck_assert(!utf8_valid("\xff", 1));
}
END_TEST

START_TEST(utf8_scrub_keeps_text_and_replaces_the_rest)
{
	arena_t *a = arena_new(1024);
	ck_assert_str_eq(utf8_scrub(a, "curl/8.0 h\xc3\xa9", 512), "curl/8.0 h\xc3\xa9");
	ck_assert_str_eq(utf8_scrub(a, "a\xff\xfe" "b", 512), "a\xef\xbf\xbd\xef\xbf\xbd" "b");
	ck_assert_str_eq(utf8_scrub(a, "\xc3(", 512), "\xef\xbf\xbd(");     /* cut sequence */
	ck_assert_str_eq(utf8_scrub(a, "\xed\xa0\x80", 512),                /* surrogate */
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	/* The cut falls between characters. */
	ck_assert_str_eq(utf8_scrub(a, "ab\xc3\xa9", 3), "ab");
	char *s = utf8_scrub(a, "\xff\xff\xff\xff", 7);
	ck_assert_str_eq(s, "\xef\xbf\xbd\xef\xbf\xbd");
	ck_assert(utf8_valid(s, strlen(s)));
	arena_free(a);
}
END_TEST

START_TEST(request_id_rules)
{
	struct request req;
	char *good[] = { "HTTP_X_REQUEST_ID=client-id_1.2", NULL };
	make_request(&req, "GET", "/api/things", NULL, NULL, good);
	ck_assert_str_eq(req.request_id, "client-id_1.2");
	char *bad[] = { "HTTP_X_REQUEST_ID=bad id\"<script>", NULL };
	make_request(&req, "GET", "/api/things", NULL, NULL, bad);
	ck_assert_str_eq(req.request_id, "0123456789abcdef0123456789abcdef");
	ck_assert(!request_id_valid(""));
	char long_id[70];
	memset(long_id, 'a', 65);
	long_id[65] = '\0';
	ck_assert(!request_id_valid(long_id));
	long_id[64] = '\0';
	ck_assert(request_id_valid(long_id));
}
END_TEST

START_TEST(query_and_headers)
{
	struct request req;
	char *extra[] = { "HTTP_X_CSRF_TOKEN=tok", "HTTP_COOKIE=a=1; gala_session=xyz; b=2", NULL };
	make_request(&req, "GET", "/api/things?limit=5&city=New%20York&empty=&plus=a+b", NULL, NULL, extra);
	ck_assert_str_eq(request_query(&req, "limit"), "5");
	ck_assert_str_eq(request_query(&req, "city"), "New York");
	ck_assert_str_eq(request_query(&req, "empty"), "");
	ck_assert_str_eq(request_query(&req, "plus"), "a b");
	ck_assert_ptr_null(request_query(&req, "offset"));
	ck_assert_str_eq(request_header(&req, "X-CSRF-Token"), "tok");
	ck_assert_str_eq(request_cookie(&req, "gala_session"), "xyz");
	ck_assert_ptr_null(request_cookie(&req, "gala"));
}
END_TEST

START_TEST(client_ip_ignores_untrusted_forwarded_for)
{
	struct request req;
	char *xff[] = { "HTTP_X_FORWARDED_FOR=1.2.3.4", NULL };
	make_request(&req, "GET", "/api/things", NULL, NULL, xff);
	ck_assert_str_eq(req.client_ip, "203.0.113.7");
	unit_cfg.trusted_proxies = "10.0.0.1, 203.0.113.7";
	char *chain[] = { "HTTP_X_FORWARDED_FOR=9.9.9.9, 198.51.100.2, 10.0.0.1", NULL };
	make_request(&req, "GET", "/api/things", NULL, NULL, chain);
	ck_assert_str_eq(req.client_ip, "198.51.100.2");
}
END_TEST

START_TEST(response_serialization_is_safe)
{
	struct request req;
	make_request(&req, "GET", "/api/things", NULL, NULL, NULL);
	response_json(&req, 201, cJSON_CreateObject());
	response_header(&req, "Location", "/api/things/1\r\nSet-Cookie: evil=1");
	buf_t out;
	buf_init(&out, 4096);
	ck_assert_int_eq(response_serialize(&req, &out), 0);
	ck_assert_ptr_nonnull(strstr(out.data, "Status: 201 Created\r\n"));
	ck_assert_ptr_nonnull(strstr(out.data, "X-Request-ID: 0123456789abcdef0123456789abcdef\r\n"));
	ck_assert_ptr_null(strstr(out.data, "\r\nSet-Cookie"));
	ck_assert_ptr_nonnull(strstr(out.data, "\r\n\r\n{}"));
	buf_free(&out);
}
END_TEST

/* A body is the same text whether it fits the print buffer or not (a
 * long page is printed the other way). */
START_TEST(response_json_prints_any_length)
{
	static const size_t lengths[] = { 10, 40000, 200000 };
	for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
		struct request req;
		make_request(&req, "GET", "/api/things", NULL, NULL, NULL);
		char *text = malloc(lengths[i] + 1);
		memset(text, 'x', lengths[i]);
		text[lengths[i]] = '\0';
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "a\"b", text);
		cJSON_AddNumberToObject(o, "n", 42);
		char *want = cJSON_PrintUnformatted(o);
		response_json(&req, 200, o);
		ck_assert_uint_eq(req.resp.body_len, strlen(want));
		ck_assert_int_eq(memcmp(req.resp.body, want, req.resp.body_len), 0);
		ck_assert_str_eq(req.resp.content_type, "application/json");
		cJSON_free(want);
		free(text);
	}
}
END_TEST

/* A random tree of depth at most depth: every item type, strings of any
 * byte, numbers integral, fractional, huge and not finite. */
static cJSON *random_tree(unsigned *seed, int depth)
{
	static const double numbers[] = { 0, -1, 42, 2147483647.0, 2147483648.0,
		-2147483649.0, 1e300, -1e-300, 0.1, 1.0 / 3, 123.456, 5e-324, 1e15 + 0.5,
		9007199254740993.0, 1e21, NAN, INFINITY };
	int kind = rand_r(seed) % (depth > 0 ? 8 : 6);
	switch (kind) {
	case 0: return cJSON_CreateNull();
	case 1: return cJSON_CreateBool(rand_r(seed) % 2);
	case 2: return cJSON_CreateNumber(numbers[rand_r(seed) %
		(int)(sizeof numbers / sizeof numbers[0])]);
	case 3: return cJSON_CreateNumber((rand_r(seed) - RAND_MAX / 2) / 7.0);
	case 4: return cJSON_CreateRaw("[1,\"raw\"]");
	case 5: {
		char text[24];
		int n = rand_r(seed) % (int)sizeof text;
		for (int i = 0; i < n; i++)
			text[i] = (char)(1 + rand_r(seed) % 255);
		text[n] = '\0';
		return cJSON_CreateString(text);
	}
	case 6: {
		cJSON *arr = cJSON_CreateArray();
		for (int n = rand_r(seed) % 4; n > 0; n--)
			cJSON_AddItemToArray(arr, random_tree(seed, depth - 1));
		return arr;
	}
	default: {
		cJSON *obj = cJSON_CreateObject();
		for (int n = rand_r(seed) % 4; n > 0; n--) {
			char key[4] = { (char)(1 + rand_r(seed) % 127), 'k', '"', '\0' };
			cJSON_AddItemToObject(obj, key, random_tree(seed, depth - 1));
		}
		return obj;
	}
	}
}

/* json_print writes the very text cJSON_PrintUnformatted does. */
START_TEST(json_print_matches_cjson)
{
	arena_t *a = arena_new(4096);
	unsigned seed = 20261204;
	for (int i = 0; i < 2000; i++) {
		cJSON *tree = random_tree(&seed, 4);
		char *want = cJSON_PrintUnformatted(tree);
		size_t len = 0;
		char *got = json_print(a, tree, &len);
		ck_assert_ptr_nonnull(got);
		ck_assert_uint_eq(len, strlen(want));
		ck_assert_str_eq(got, want);
		cJSON_free(want);
		cJSON_Delete(tree);
		arena_reset(a);
	}
	cJSON *bad = cJSON_CreateObject();
	cJSON *raw = cJSON_CreateRaw("1");
	cJSON_AddItemToObject(bad, "raw", raw);
	cJSON_free(raw->valuestring);
	raw->valuestring = NULL;
	size_t len = 0;
	ck_assert_ptr_null(json_print(a, bad, &len));
	cJSON_Delete(bad);
	arena_free(a);
}
END_TEST

/* What stderr (a file here) received since the test began. */
static char *stderr_text(int fd)
{
	static char text[16384];
	ssize_t n = pread(fd, text, sizeof text - 1, 0);
	text[n > 0 ? n : 0] = '\0';
	return text;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* A new connection is left only to a worker that has slept for want of
 * work since before the given time and holds fewer: not to one between
 * two requests (awake, or asleep only just), nor to itself, one leaving,
 * or one not ready. */
START_TEST(scoreboard_finds_a_worker_long_asleep)
{
	struct scoreboard *board = scoreboard_create();
	ck_assert_ptr_nonnull(board);
	struct worker_slot *self = &board->slots[0], *other = &board->slots[1];
	board->high = 2;
	self->pid = 100, self->ready = 1, self->conns = 2;
	other->pid = 101, other->ready = 1, other->conns = 1;
	ck_assert(!scoreboard_idle_worker_holds_fewer(board, self, 2, 1000));
	other->asleep_since_ms = 999;
	ck_assert(scoreboard_idle_worker_holds_fewer(board, self, 2, 1000));
	ck_assert(!scoreboard_idle_worker_holds_fewer(board, self, 2, 999));
	ck_assert(!scoreboard_idle_worker_holds_fewer(board, self, 1, 1000));
	other->draining = 1;
	ck_assert(!scoreboard_idle_worker_holds_fewer(board, self, 2, 1000));
	other->draining = 0, other->ready = 0;
	ck_assert(!scoreboard_idle_worker_holds_fewer(board, self, 2, 1000));
	other->ready = 1, other->pid = 0;
	ck_assert(!scoreboard_idle_worker_holds_fewer(board, self, 2, 1000));
	other->pid = 101;
	ck_assert(!scoreboard_idle_worker_holds_fewer(board, other, 2, 1000));
	munmap(board, sizeof *board);
}
END_TEST

/* Batched lines reach the log whole and in order: held until a flush, a
 * full batch, or a warning (which comes after them). */
START_TEST(log_batch_keeps_lines_whole_and_in_order)
{
	char path[] = "/tmp/gala-log-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);

	log_batch(true);
	log_info("gala.test", "first");
	log_info("gala.test", "second");
	ck_assert(log_pending());
	ck_assert_str_eq(stderr_text(fd), "");
	log_flush();
	ck_assert(!log_pending());
	char *text = stderr_text(fd);
	ck_assert_int_eq(count_lines(text), 2);
	ck_assert(strstr(text, "\"first\"") < strstr(text, "\"second\""));

	log_info("gala.test", "third");
	log_warn("gala.test", "fourth");
	text = stderr_text(fd);
	ck_assert_int_eq(count_lines(text), 4);
	ck_assert(strstr(text, "\"third\"") < strstr(text, "\"fourth\""));

	/* Forty lines of 300 bytes are three batches: written whole as each
	 * fills, the rest at the end of batching. */
	char msg[300];
	memset(msg, 'm', sizeof msg - 1);
	msg[sizeof msg - 1] = '\0';
	for (int i = 0; i < 40; i++)
		log_info("gala.test", "%s", msg);
	int written = count_lines(stderr_text(fd));
	ck_assert_int_gt(written, 4);
	ck_assert_int_lt(written, 44);
	log_batch(false);
	text = stderr_text(fd);
	ck_assert_int_eq(count_lines(text), 44);
	for (char *line = text; *line; line = strchr(line, '\n') + 1) {
		cJSON *o = cJSON_ParseWithLength(line, (size_t)(strchr(line, '\n') - line));
		ck_assert_ptr_nonnull(o);
		cJSON_Delete(o);
	}
	log_info("gala.test", "unbatched");
	ck_assert_int_eq(count_lines(stderr_text(fd)), 45);

	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
}
END_TEST

START_TEST(buf_has_a_hard_maximum)
{
	buf_t b;
	buf_init(&b, 8);
	ck_assert_int_eq(buf_puts(&b, "12345678"), 0);
	ck_assert_int_eq(buf_puts(&b, "9"), -1);
	ck_assert_str_eq(b.data, "12345678");
	buf_free(&b);
}
END_TEST

static int deferred_runs;
static void count_defer(void *p)
{
	(void)p;
	deferred_runs++;
}

START_TEST(arena_reset_runs_deferred)
{
	arena_t *a = arena_new(1024);
	deferred_runs = 0;
	char *big = arena_alloc(a, 100000);
	memset(big, 1, 100000);
	arena_defer(a, count_defer, big);
	ck_assert_str_eq(arena_printf(a, "%s-%d", "x", 42), "x-42");
	arena_reset(a);
	ck_assert_int_eq(deferred_runs, 1);
	ck_assert_uint_eq(arena_used(a), 0);
	arena_free(a);
}
END_TEST

static void set_env(const char *k, const char *v)
{
	if (v)
		setenv(k, v, 1);
	else
		unsetenv(k);
}

START_TEST(config_defaults_and_validation)
{
	struct config c;
	char err[256];
	set_env("ENV_FILE", NULL);
	set_env("ENVIRONMENT", "development");
	set_env("SECRET_KEY", NULL);
	set_env("WORKERS", NULL);
	set_env("MAX_BODY_BYTES", NULL);
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert_int_eq(c.max_body_bytes, 65536);
	ck_assert(c.workers >= 2);
	ck_assert(c.secret_key_generated);
	ck_assert_uint_eq(strlen(c.secret_key), 64);
	ck_assert(c.rate_limit_enabled);
	config_free(&c);

	set_env("WORKERS", "zero");
	ck_assert_int_eq(config_load(&c, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "WORKERS"));
	set_env("WORKERS", NULL);
	set_env("RATE_LIMIT_ENABLED", "maybe");
	ck_assert_int_eq(config_load(&c, err, sizeof err), -1);
	set_env("RATE_LIMIT_ENABLED", "false");
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert(!c.rate_limit_enabled);
	config_free(&c);
	set_env("RATE_LIMIT_ENABLED", NULL);

	/* ADMIN_MFA_REQUIRED follows ENVIRONMENT unless set. */
	set_env("ADMIN_MFA_REQUIRED", NULL);
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert(!c.admin_mfa_required);
	config_free(&c);
	set_env("ENVIRONMENT", "production");
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert(c.admin_mfa_required);
	config_free(&c);
	set_env("ADMIN_MFA_REQUIRED", "false");
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert(!c.admin_mfa_required);
	config_free(&c);
	set_env("ENVIRONMENT", "development");
	set_env("ADMIN_MFA_REQUIRED", "true");
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert(c.admin_mfa_required);
	config_free(&c);
	set_env("ADMIN_MFA_REQUIRED", "maybe");
	ck_assert_int_eq(config_load(&c, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "ADMIN_MFA_REQUIRED"));
	set_env("ADMIN_MFA_REQUIRED", NULL);

	/* METRICS_ALLOW: loopback unless set; a list that does not parse is refused. */
	set_env("METRICS_ALLOW", NULL);
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert(netmask_list_contains(c.metrics_allow, "127.0.0.1"));
	ck_assert(netmask_list_contains(c.metrics_allow, "::1"));
	ck_assert(!netmask_list_contains(c.metrics_allow, "10.0.0.1"));
	config_free(&c);
	set_env("METRICS_ALLOW", "10.0.0.0/8, not-an-address");
	ck_assert_int_eq(config_load(&c, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "METRICS_ALLOW"));
	set_env("METRICS_ALLOW", NULL);
}
END_TEST

START_TEST(netmask_lists)
{
	const char *list = "10.0.0.0/8, 192.168.1.7 ,2001:db8::/32, 172.16.0.0/12";
	ck_assert(netmask_list_valid(list));
	ck_assert(netmask_list_valid(""));
	ck_assert(netmask_list_contains(list, "10.255.0.1"));
	ck_assert(netmask_list_contains(list, "192.168.1.7"));
	ck_assert(!netmask_list_contains(list, "192.168.1.8"));
	ck_assert(netmask_list_contains(list, "172.31.255.255"));
	ck_assert(!netmask_list_contains(list, "172.32.0.0"));
	ck_assert(netmask_list_contains(list, "2001:db8:ffff::1"));
	ck_assert(!netmask_list_contains(list, "2001:db9::1"));
	/* An IPv4-mapped IPv6 peer is its IPv4 address. */
	ck_assert(netmask_list_contains(list, "::ffff:10.1.2.3"));
	ck_assert(!netmask_list_contains("", "127.0.0.1"));
	ck_assert(!netmask_list_contains(list, "10.0.0.0/8"));
	ck_assert(!netmask_list_contains(list, "localhost"));
	ck_assert(!netmask_list_contains(list, NULL));
	ck_assert(netmask_list_contains("0.0.0.0/0", "203.0.113.9"));
	ck_assert(!netmask_list_contains("0.0.0.0/0", "2001:db8::1"));
	const char *bad[] = { "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/8x", "1.2.3",
		"10.0.0.1,,garbage" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(!netmask_list_valid(bad[i]), "%s accepted", bad[i]);
}
END_TEST

START_TEST(config_production_guards)
{
	struct config c;
	char err[256];
	set_env("ENV_FILE", NULL);
	set_env("ENVIRONMENT", "production");
	set_env("STRIPE_SECRET_KEY", "sk_live_x");
	set_env("STRIPE_WEBHOOK_SECRET", "whsec_x");
	set_env("FRONTEND_URL", "https://gala.example");
	static const char *const bad[] = { NULL, "changeme", "short-but-random-ish",
		"secret", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		set_env("SECRET_KEY", bad[i]);
		ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
		ck_assert_msg(config_check_production(&c, err, sizeof err) == -1,
		    "accepted SECRET_KEY %s", bad[i] ? bad[i] : "(unset)");
		ck_assert_ptr_nonnull(strstr(err, "SECRET_KEY"));
		config_free(&c);
	}
	set_env("SECRET_KEY", "Zq3v9LmP0xT7wRk2Hs5nB8yC4dF6gJ1e");
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert_int_eq(config_check_production(&c, err, sizeof err), 0);
	config_free(&c);
	set_env("STRIPE_SECRET_KEY", NULL);
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert_int_eq(config_check_production(&c, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "STRIPE_SECRET_KEY"));
	config_free(&c);
	set_env("ENVIRONMENT", NULL);
	set_env("SECRET_KEY", NULL);
	set_env("STRIPE_WEBHOOK_SECRET", NULL);
	set_env("FRONTEND_URL", NULL);
}
END_TEST

/* gala mailer needs SMTP_URL and the pool's SECRET_KEY (never a generated
 * one: it could open nothing), and in production the key and transport
 * rules, but not the Stripe secrets its unit never loads. */
START_TEST(config_mailer_guards)
{
	struct config c;
	char err[256];
	set_env("ENV_FILE", NULL);
	set_env("SMTP_URL", NULL);
	set_env("SECRET_KEY", "Zq3v9LmP0xT7wRk2Hs5nB8yC4dF6gJ1e");
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert_int_eq(config_check_mailer(&c, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "SMTP_URL"));
	config_free(&c);
	set_env("SMTP_URL", "smtp://127.0.0.1:2525");
	set_env("SECRET_KEY", NULL);
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert_int_eq(config_check_mailer(&c, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "SECRET_KEY"));
	config_free(&c);
	set_env("ENVIRONMENT", "production");
	set_env("SECRET_KEY", "changeme");
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert_int_eq(config_check_mailer(&c, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "SECRET_KEY"));
	config_free(&c);
	set_env("SECRET_KEY", "Zq3v9LmP0xT7wRk2Hs5nB8yC4dF6gJ1e");
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert_msg(config_check_mailer(&c, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(config_check_production(&c, err, sizeof err), -1);
	config_free(&c);
	set_env("SMTP_URL", "smtp://mail.example.com:587");
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert_int_eq(config_check_mailer(&c, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "SMTP_URL"));
	config_free(&c);
	set_env("ENVIRONMENT", NULL);
	set_env("SECRET_KEY", NULL);
	set_env("SMTP_URL", NULL);
}
END_TEST

/* Writes text to a new file named from path (a mkstemp template). */
static void write_temp_file(char *path, const char *text)
{
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

START_TEST(config_env_file_overrides)
{
	struct config c;
	char err[256];
	char path[] = "/tmp/gala-envXXXXXX";
	write_temp_file(path, "# comment\nWORKERS=7\nMAIL_FROM=\"Gala <hi@example.com>\"\n");
	set_env("WORKERS", "3");
	set_env("ENV_FILE", path);
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert_int_eq(c.workers, 7);
	ck_assert_str_eq(c.mail_from, "Gala <hi@example.com>");
	config_free(&c);
	unlink(path);
	ck_assert_int_eq(config_load(&c, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "ENV_FILE"));
	set_env("ENV_FILE", NULL);
	set_env("WORKERS", NULL);
}
END_TEST

/* LoadCredential=NAME:... puts a setting in $CREDENTIALS_DIRECTORY/NAME; it
 * wins over the environment and ENV_FILE. */
START_TEST(config_systemd_credentials)
{
	struct config c;
	char err[256];
	char dir[] = "/tmp/gala-credsXXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[512];
	snprintf(path, sizeof path, "%s/STRIPE_WEBHOOK_SECRET", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("whsec_from_credential\n", f);
	fclose(f);
	set_env("ENV_FILE", NULL);
	set_env("ENVIRONMENT", "test");
	set_env("STRIPE_WEBHOOK_SECRET", "whsec_from_environment");
	set_env("STRIPE_SECRET_KEY", "sk_test_from_environment");
	set_env("CREDENTIALS_DIRECTORY", dir);
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert_str_eq(c.stripe_webhook_secret, "whsec_from_credential");
	ck_assert_str_eq(c.stripe_secret_key, "sk_test_from_environment");
	config_free(&c);
	/* A credential that is not a readable text file stops the load. */
	snprintf(path, sizeof path, "%s/SECRET_KEY", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(config_load(&c, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "SECRET_KEY"));
	ck_assert_int_eq(rmdir(path), 0);
	snprintf(path, sizeof path, "%s/STRIPE_WEBHOOK_SECRET", dir);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	set_env("CREDENTIALS_DIRECTORY", NULL);
	set_env("STRIPE_WEBHOOK_SECRET", NULL);
	set_env("STRIPE_SECRET_KEY", NULL);
	set_env("ENVIRONMENT", NULL);
}
END_TEST

/* One production setting changed from a passing configuration: name=value
 * must make config_check_production fail with want in the message (want
 * NULL: pass). */
static void production_case(const char *name, const char *value, const char *want)
{
	struct config c;
	char err[256] = "";
	set_env(name, value);
	ck_assert_msg(config_load(&c, err, sizeof err) == 0, "%s=%s: %s", name, value, err);
	int rc = config_check_production(&c, err, sizeof err);
	if (want == NULL)
		ck_assert_msg(rc == 0, "%s=%s refused: %s", name, value, err);
	else
		ck_assert_msg(rc == -1 && strstr(err, want) != NULL, "%s=%s accepted (%s)", name,
		    value, err);
	config_free(&c);
	set_env(name, NULL);
}

START_TEST(config_production_transport_guards)
{
	set_env("ENV_FILE", NULL);
	set_env("ENVIRONMENT", "production");
	set_env("SECRET_KEY", "Zq3v9LmP0xT7wRk2Hs5nB8yC4dF6gJ1e");
	set_env("STRIPE_SECRET_KEY", "sk_live_x");
	set_env("STRIPE_WEBHOOK_SECRET", "whsec_x");
	set_env("FRONTEND_URL", "https://gala.example");
	production_case("STRIPE_API_BASE", "http://api.stripe.com", "STRIPE_API_BASE");
	production_case("STRIPE_API_BASE", "https://api.stripe.com", NULL);
	production_case("STRIPE_WEBHOOK_UNSIGNED_INSECURE_ALLOW", "true",
	    "STRIPE_WEBHOOK_UNSIGNED_INSECURE_ALLOW");
	/* Plaintext (or strippable STARTTLS) SMTP leaves only for loopback. */
	production_case("SMTP_URL", "smtp://mail.example.com:587", "SMTP_URL");
	production_case("SMTP_URL", "smtp://relay@10.0.0.5:25", "SMTP_URL");
	production_case("SMTP_URL", "smtp://127.0.0.1.example.com:25", "SMTP_URL");
	production_case("SMTP_URL", "smtp://localhost.example.com", "SMTP_URL");
	production_case("SMTP_URL", "smtps://mail.example.com:465", NULL);
	production_case("SMTP_URL", "smtp://127.0.0.1:2525", NULL);
	production_case("SMTP_URL", "smtp://localhost:25", NULL);
	production_case("SMTP_URL", "smtp://[::1]:25", NULL);
	set_env("SMTP_USERNAME", "gala");
	production_case("SMTP_URL", "smtp://mail.example.com:587", NULL);
	set_env("SMTP_USERNAME", NULL);

	/* Outside production the same settings load and pass; the opt-in is
	 * read. */
	set_env("ENVIRONMENT", "test");
	production_case("SMTP_URL", "smtp://mail.example.com:587", NULL);
	production_case("STRIPE_API_BASE", "http://127.0.0.1:12111", NULL);
	struct config c;
	char err[256];
	set_env("STRIPE_WEBHOOK_UNSIGNED_INSECURE_ALLOW", "true");
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert(c.stripe_webhook_unsigned_insecure_allow);
	ck_assert_int_eq(config_check_production(&c, err, sizeof err), 0);
	config_free(&c);
	set_env("STRIPE_WEBHOOK_UNSIGNED_INSECURE_ALLOW", NULL);
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert(!c.stripe_webhook_unsigned_insecure_allow);
	config_free(&c);
	set_env("ENVIRONMENT", NULL);
	set_env("SECRET_KEY", NULL);
	set_env("STRIPE_SECRET_KEY", NULL);
	set_env("STRIPE_WEBHOOK_SECRET", NULL);
	set_env("FRONTEND_URL", NULL);
}
END_TEST

START_TEST(config_smtp_tls_requirement)
{
	struct config c = { 0 };
	c.smtp_url = "smtp://127.0.0.1:2525";
	ck_assert(!config_smtp_tls_required(&c));
	c.smtp_url = "smtps://mail.example.com";
	ck_assert(config_smtp_tls_required(&c));
	c.smtp_url = "smtp://mail.example.com:587";
	c.smtp_username = "gala";
	ck_assert(config_smtp_tls_required(&c));
	c.smtp_username = NULL;
	c.smtp_password = "pw";
	ck_assert(config_smtp_tls_required(&c));
}
END_TEST

/* config_load leaves migration_database_url unset, config_load_migrate
 * reads want. */
static void assert_migration_url(const char *want)
{
	struct config c;
	char err[256];
	ck_assert_int_eq(config_load(&c, err, sizeof err), 0);
	ck_assert_ptr_null(c.migration_database_url);
	config_free(&c);
	ck_assert_int_eq(config_load_migrate(&c, err, sizeof err), 0);
	ck_assert_str_eq(c.migration_database_url, want);
	config_free(&c);
}

/* Only gala migrate reads the schema owner's URL: neither from the
 * environment nor from ENV_FILE does it reach any other command. */
START_TEST(config_migration_url_read_by_migrate_only)
{
	char path[] = "/tmp/gala-envXXXXXX";
	write_temp_file(path, "MIGRATION_DATABASE_URL=postgresql://gala_owner@/from-file\n");
	set_env("ENVIRONMENT", "test");
	set_env("DATABASE_URL", "postgresql://gala_app@/gala");
	set_env("MIGRATION_DATABASE_URL", "postgresql://gala_owner@/gala");
	assert_migration_url("postgresql://gala_owner@/gala");
	set_env("ENV_FILE", path);
	assert_migration_url("postgresql://gala_owner@/from-file");
	set_env("ENV_FILE", NULL);
	set_env("MIGRATION_DATABASE_URL", NULL);
	assert_migration_url("postgresql://gala_app@/gala");
	unlink(path);
	set_env("DATABASE_URL", NULL);
	set_env("ENVIRONMENT", NULL);
}
END_TEST


static cJSON *load_json_file(const char *rel)
{
	const char *src = getenv("GALA_SRCDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", src ? src : ".", rel);
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	static char text[65536];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	cJSON *j = cJSON_Parse(text);
	ck_assert_ptr_nonnull(j);
	return j;
}

/* Tokens made by PyJWT (tests/data/make_jwt_vectors.py). */
START_TEST(jwt_independent_vectors)
{
	cJSON *doc = load_json_file("tests/data/jwt_vectors.json");
	const char *key = cJSON_GetObjectItem(doc, "key")->valuestring;
	long long now = (long long)cJSON_GetObjectItem(doc, "now")->valuedouble;
	static const struct { const char *name; enum jwt_result r; } results[] = {
		{ "ok", JWT_OK }, { "expired", JWT_EXPIRED }, { "bad_signature", JWT_BAD_SIGNATURE },
		{ "bad_algorithm", JWT_BAD_ALGORITHM }, { "malformed", JWT_MALFORMED },
	};
	int checked = 0;
	cJSON *v;
	cJSON_ArrayForEach(v, cJSON_GetObjectItem(doc, "vectors")) {
		const char *want = cJSON_GetObjectItem(v, "result")->valuestring;
		enum jwt_result expect = JWT_MALFORMED;
		for (size_t i = 0; i < sizeof results / sizeof results[0]; i++)
			if (strcmp(results[i].name, want) == 0)
				expect = results[i].r;
		struct jwt_claims c;
		enum jwt_result got = jwt_verify(cJSON_GetObjectItem(v, "token")->valuestring, key, now, &c);
		ck_assert_msg(got == expect, "%s: got %d, want %d",
		    cJSON_GetObjectItem(v, "name")->valuestring, got, expect);
		if (expect == JWT_OK) {
			ck_assert_str_eq(c.sub, "3bdfb64a-e138-4ad6-b618-625a589582e3");
			ck_assert_str_eq(c.role, "customer");
			ck_assert_int_eq(c.exp, now + 3600);
		}
		checked++;
	}
	ck_assert_int_ge(checked, 8);

	/* Signing the same claims gives PyJWT's token byte for byte. */
	cJSON *claims = cJSON_GetObjectItem(doc, "claims");
	struct jwt_claims c = { 0 };
	snprintf(c.sub, sizeof c.sub, "%s", cJSON_GetObjectItem(claims, "sub")->valuestring);
	snprintf(c.role, sizeof c.role, "%s", cJSON_GetObjectItem(claims, "role")->valuestring);
	snprintf(c.jti, sizeof c.jti, "%s", cJSON_GetObjectItem(claims, "jti")->valuestring);
	snprintf(c.csrf, sizeof c.csrf, "%s", cJSON_GetObjectItem(claims, "csrf")->valuestring);
	c.iat = (long long)cJSON_GetObjectItem(claims, "iat")->valuedouble;
	c.exp = (long long)cJSON_GetObjectItem(claims, "exp")->valuedouble;
	c.tv = 0;
	char token[JWT_MAX];
	ck_assert_int_eq(jwt_sign(&c, key, token, sizeof token), 0);
	const char *pyjwt = cJSON_GetObjectItem(cJSON_GetArrayItem(
	    cJSON_GetObjectItem(doc, "vectors"), 0), "token")->valuestring;
	ck_assert_str_eq(token, pyjwt);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(jwt_round_trip_and_garbage)
{
	struct jwt_claims c = { .iat = 100, .exp = 200, .tv = 3 };
	strcpy(c.sub, "s");
	strcpy(c.role, "admin");
	strcpy(c.jti, "j");
	strcpy(c.csrf, "x");
	char token[JWT_MAX];
	ck_assert_int_eq(jwt_sign(&c, "k1", token, sizeof token), 0);
	struct jwt_claims out;
	ck_assert_int_eq(jwt_verify(token, "k1", 150, &out), JWT_OK);
	ck_assert_int_eq(out.tv, 3);
	ck_assert(!out.otp);
	c.otp = true;
	char otp_token[JWT_MAX];
	ck_assert_int_eq(jwt_sign(&c, "k1", otp_token, sizeof otp_token), 0);
	ck_assert_int_eq(jwt_verify(otp_token, "k1", 150, &out), JWT_OK);
	ck_assert(out.otp);
	ck_assert_int_eq(jwt_verify(token, "k2", 150, &out), JWT_BAD_SIGNATURE);
	ck_assert_int_eq(jwt_verify(token, "k1", 200, &out), JWT_EXPIRED);
	static const char *const garbage[] = { "", "a", "a.b", "a.b.c.d", "....", "!!.!!.!!",
		"eyJhbGciOiJIUzI1NiJ9..", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA" };
	for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
		ck_assert_int_ne(jwt_verify(garbage[i], "k1", 150, &out), JWT_OK);
}
END_TEST

START_TEST(csrf_decisions)
{
	const char *fe = "https://app.gala.test";
	/* Safe methods and clients without Origin are not checked. */
	ck_assert(csrf_allows("GET", "https://evil.test", fe, NULL, "t", false));
	ck_assert(csrf_allows("HEAD", "https://evil.test", fe, NULL, "t", true));
	ck_assert(csrf_allows("POST", NULL, fe, NULL, "t", false));
	/* A cookie session needs the token even without an Origin. */
	ck_assert(!csrf_allows("POST", NULL, fe, NULL, "t0k", true));
	ck_assert(!csrf_allows("DELETE", NULL, fe, "nope", "t0k", true));
	ck_assert(csrf_allows("POST", NULL, fe, "t0k", "t0k", true));
	ck_assert(csrf_allows("GET", NULL, fe, NULL, "t0k", true));
	/* Unsafe with Origin: both the origin and the token must match. */
	ck_assert(csrf_allows("POST", fe, fe, "t0k", "t0k", false));
	ck_assert(csrf_allows("DELETE", fe, fe, "t0k", "t0k", true));
	ck_assert(!csrf_allows("POST", "https://evil.test", fe, "t0k", "t0k", false));
	ck_assert(!csrf_allows("POST", "https://evil.test", fe, "t0k", "t0k", true));
	ck_assert(!csrf_allows("POST", "null", fe, "t0k", "t0k", false));
	ck_assert(!csrf_allows("PATCH", fe, fe, NULL, "t0k", false));
	ck_assert(!csrf_allows("PUT", fe, fe, "t0K", "t0k", false));
	ck_assert(!csrf_allows("POST", fe, fe, "t0k0", "t0k", false));
	ck_assert(!csrf_allows("POST", fe, fe, "", "", false));
}
END_TEST

START_TEST(password_rules)
{
	ck_assert_ptr_nonnull(password_policy_error("short"));
	ck_assert_ptr_nonnull(password_policy_error("password"));
	ck_assert_ptr_nonnull(password_policy_error("PassWord1"));
	ck_assert_ptr_nonnull(password_policy_error("12345678"));
	ck_assert_ptr_null(password_policy_error("Gala-test-pass-42"));
	/* Characters, not bytes: 8 two-byte characters pass, 7 do not. */
	ck_assert_ptr_null(password_policy_error("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"));
	ck_assert_ptr_nonnull(password_policy_error("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"));
	char long_pw[200];
	memset(long_pw, 'q', 129);
	long_pw[129] = '\0';
	ck_assert_ptr_nonnull(password_policy_error(long_pw));
	long_pw[128] = '\0';
	ck_assert_ptr_null(password_policy_error(long_pw));
	/* The list is sorted, or bsearch would miss entries. */
	for (size_t i = 1; i < common_passwords_count; i++)
		ck_assert_msg(strcmp(common_passwords[i - 1], common_passwords[i]) < 0,
		    "common_passwords not sorted at %zu", i);
}
END_TEST

START_TEST(password_hash_verify)
{
	char hash[PASSWORD_HASH_MAX];
	ck_assert_int_eq(password_hash("Gala-test-pass-42", hash), 0);
	ck_assert_ptr_nonnull(strstr(hash, "$argon2id$"));
	ck_assert(password_verify("Gala-test-pass-42", hash));
	ck_assert(!password_verify("Gala-test-pass-43", hash));
	ck_assert(!password_verify("anything", NULL));
	ck_assert(!password_needs_rehash(hash));
}
END_TEST

/* RFC 6238, Appendix B: the SHA-1 rows, whose 8-digit values taken mod
 * 10^6 are the 6-digit codes; the secret is the ASCII "1234567890" twice. */
START_TEST(totp_rfc6238_vectors)
{
	static const struct { long long t; const char *code; } v[] = {
		{ 59, "287082" }, { 1111111109, "081804" }, { 1111111111, "050471" },
		{ 1234567890, "005924" }, { 2000000000, "279037" }, { 20000000000LL, "353130" },
	};
	const unsigned char *key = (const unsigned char *)"12345678901234567890";
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char got[8];
		snprintf(got, sizeof got, "%06ld", totp_code(key, 20, totp_step(v[i].t)));
		ck_assert_str_eq(got, v[i].code);
		long long step = 0;
		ck_assert(totp_check(key, 20, v[i].code, v[i].t, -1, &step));
		ck_assert_int_eq(step, totp_step(v[i].t));
		/* One step either side is accepted, two are not. */
		ck_assert(totp_check(key, 20, v[i].code, v[i].t + 30, -1, &step));
		ck_assert(totp_check(key, 20, v[i].code, v[i].t - 30, -1, &step));
		ck_assert(!totp_check(key, 20, v[i].code, v[i].t + 61, -1, &step));
		ck_assert(v[i].t < 61 || !totp_check(key, 20, v[i].code, v[i].t - 61, -1, &step));
		/* A step already accepted is never accepted again. */
		ck_assert(!totp_check(key, 20, v[i].code, v[i].t, totp_step(v[i].t), &step));
	}
	long long step;
	ck_assert(!totp_check(key, 20, "28708", 59, -1, &step));
	ck_assert(!totp_check(key, 20, "2870820", 59, -1, &step));
	ck_assert(!totp_check(key, 20, "28708a", 59, -1, &step));
	ck_assert(!totp_check(key, 20, "", 59, -1, &step));
}
END_TEST

START_TEST(base32_round_trip)
{
	char b32[64];
	ck_assert_int_eq(base32_encode((const unsigned char *)"12345678901234567890", 20, b32,
	    sizeof b32), 0);
	ck_assert_str_eq(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	unsigned char raw[32];
	ck_assert_int_eq(base32_decode(b32, raw, sizeof raw), 20);
	ck_assert_int_eq(memcmp(raw, "12345678901234567890", 20), 0);
	/* RFC 4648, section 10, without padding; either case decodes. */
	ck_assert_int_eq(base32_encode((const unsigned char *)"foobar", 6, b32, sizeof b32), 0);
	ck_assert_str_eq(b32, "MZXW6YTBOI");
	ck_assert_int_eq(base32_decode("mzxw6ytboi======", raw, sizeof raw), 6);
	ck_assert_int_eq(memcmp(raw, "foobar", 6), 0);
	ck_assert_int_eq(base32_encode((const unsigned char *)"f", 1, b32, sizeof b32), 0);
	ck_assert_str_eq(b32, "MY");
	ck_assert_int_eq(base32_encode((const unsigned char *)"foobar", 6, b32, 10), -1);
	ck_assert_int_eq(base32_decode("MZXW1", raw, sizeof raw), -1);
	ck_assert_int_eq(base32_decode("MZXW6YTBOI", raw, 5), -1);
}
END_TEST

START_TEST(tokens_and_ids)
{
	char a[37], b[37];
	crypto_uuid4(a);
	crypto_uuid4(b);
	ck_assert(uuid_valid(a));
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(a[14], '4');
	ck_assert(!uuid_valid("not-a-uuid"));
	ck_assert(!uuid_valid("3bdfb64a-e138-4ad6-b618-625a589582e"));
	ck_assert(!uuid_valid("3bdfb64a-e138-4ad6-b618-625a589582eZ"));
	char t[64];
	crypto_random_token(t, sizeof t, 32);
	ck_assert_uint_eq(strlen(t), 43);    /* 256 bits, base64url without padding */
	char h[65];
	crypto_sha256_hex("abc", 3, h);
	ck_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	crypto_hmac_sha256_hex("key", "The quick brown fox jumps over the lazy dog", 43, h);
	ck_assert_str_eq(h, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
	ck_assert(crypto_str_equal("abc", "abc"));
	ck_assert(!crypto_str_equal("abc", "abd"));
	ck_assert(!crypto_str_equal("abc", "abcd"));
}
END_TEST

START_TEST(rfc3339_and_email_validation)
{
	ck_assert(rfc3339_valid("2026-05-01T18:00:00Z"));
	ck_assert(rfc3339_valid("2026-05-01T18:00:00.123+02:00"));
	ck_assert(!rfc3339_valid("2026-05-01"));
	ck_assert(!rfc3339_valid("2026-13-01T18:00:00Z"));
	ck_assert(!rfc3339_valid("2026-05-01T18:00:00"));
	ck_assert(!rfc3339_valid("2026-05-01T18:00:00Zjunk"));
	ck_assert(!rfc3339_valid("2026-05-01T18:00:00+24:00"));
	ck_assert(!rfc3339_valid("2026-05-01T18:00:00-05:60"));
	/* Times reach SQL as UTC, whatever offset RFC 3339 allowed. */
	arena_t *ta = arena_new(1024);
	ck_assert_str_eq(rfc3339_to_utc(ta, "2026-05-01T18:00:00.123+02:00"), "2026-05-01T16:00:00.123Z");
	ck_assert_str_eq(rfc3339_to_utc(ta, "2026-03-01T00:00:00+23:59"), "2026-02-28T00:01:00Z");
	ck_assert_str_eq(rfc3339_to_utc(ta, "2024-12-31t23:30:00-01:00"), "2025-01-01T00:30:00Z");
	ck_assert_str_eq(rfc3339_to_utc(ta, "2026-12-31T23:59:60Z"), "2027-01-01T00:00:00Z");
	ck_assert_str_eq(rfc3339_to_utc(ta, "2024-02-29T12:00:00.1234567Z"), "2024-02-29T12:00:00.123456Z");
	ck_assert_ptr_null(rfc3339_to_utc(ta, "2026-02-29T12:00:00Z"));
	ck_assert_ptr_null(rfc3339_to_utc(ta, "0001-01-01T00:00:00+00:01"));
	ck_assert_ptr_null(rfc3339_to_utc(ta, "9999-12-31T23:59:59-00:01"));
	arena_free(ta);

	struct request req;
	make_request(&req, "POST", "/api/things", "application/json", NULL, NULL);
	static const char *const bodies[] = { "{\"email\":\"a@b.co\"}", "{\"email\":\"no-at.example\"}",
		"{\"email\":\"a@b\"}", "{\"email\":\"a b@c.de\"}", "{\"email\":42}", "{}" };
	static const bool ok[] = { true, false, false, false, false, false };
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		make_request(&req, "POST", "/api/things", "application/json", bodies[i], NULL);
		ck_assert_int_eq(json_parse_request(&req), 0);
		struct validator v;
		v_init(&v, &req);
		v_email(&v, "email");
		ck_assert_msg(v.failed == !ok[i], "%s", bodies[i]);
		if (!ok[i]) {
			ck_assert_int_eq(req.resp.status, 422);
			cJSON *j = resp_json(&req);
			ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "param")->valuestring,
			    "email");
			cJSON_Delete(j);
		}
	}
	make_request(&req, "POST", "/api/things", "application/json", "{\"email\":\"a@b.co\",\"role\":\"admin\"}", NULL);
	ck_assert_int_eq(json_parse_request(&req), 0);
	struct validator v;
	v_init(&v, &req);
	static const char *const only_email[] = { "email", NULL };
	v_only(&v, only_email);
	ck_assert(v.failed);
}
END_TEST

START_TEST(mail_format_headers)
{
	buf_t b;
	buf_init(&b, 65536);
	struct mail m = { .id = "5f0c2b6e-8a41-4b6e-9d7a-0c1e2f3a4b5c", .date = 1800000000,
		.to = "ann@example.com", .subject = "Caf\xc3\xa9 code", .text = "line one\nline two\n" };
	ck_assert_int_eq(mailer_format(&b, "Gala <no-reply@gala.test>", &m), 0);
	ck_assert_ptr_nonnull(strstr(b.data, "Date: Fri, 15 Jan 2027 08:00:00 +0000\r\n"));
	ck_assert_ptr_nonnull(strstr(b.data, "From: Gala <no-reply@gala.test>\r\n"));
	ck_assert_ptr_nonnull(strstr(b.data, "To: <ann@example.com>\r\n"));
	ck_assert_ptr_nonnull(strstr(b.data, "Subject: =?UTF-8?B?Q2Fmw6kgY29kZQ==?=\r\n"));
	/* The same on every attempt: a copy sent twice is known as one. */
	ck_assert_ptr_nonnull(strstr(b.data, "Message-ID: <5f0c2b6e-8a41-4b6e-9d7a-0c1e2f3a4b5c@gala.test>"
	    "\r\nMIME-Version: 1.0\r\n"));
	ck_assert_ptr_nonnull(strstr(b.data, "Content-Type: text/plain; charset=UTF-8\r\n"));
	ck_assert_ptr_nonnull(strstr(b.data, "\r\n\r\nline one\r\nline two\r\n"));
	char addr[64];
	ck_assert_int_eq(mailer_address("Gala <x@y.z>", addr, sizeof addr), 0);
	ck_assert_str_eq(addr, "x@y.z");
	ck_assert_int_eq(mailer_address("bare@y.z", addr, sizeof addr), 0);
	ck_assert_str_eq(addr, "bare@y.z");
	ck_assert_int_eq(mailer_address("Nobody", addr, sizeof addr), -1);
	buf_free(&b);
}
END_TEST

/* Retries back off: doubling from the base, never past the cap, each
 * delay jittered within [d/2, d] and never zero. */
START_TEST(outbox_retry_backoff)
{
	const uint32_t rnd[] = { 0, 1, 7, 0x7fffffffu, 0xffffffffu };
	for (size_t i = 0; i < sizeof rnd / sizeof rnd[0]; i++) {
		int d1 = outbox_retry_delay(1, 30, rnd[i]);
		int d2 = outbox_retry_delay(2, 30, rnd[i]);
		int d5 = outbox_retry_delay(5, 30, rnd[i]);
		ck_assert_msg(d1 >= 15 && d1 <= 30, "first retry %d", d1);
		ck_assert_msg(d2 >= 30 && d2 <= 60, "second retry %d", d2);
		ck_assert_msg(d5 >= 240 && d5 <= 480, "fifth retry %d", d5);
		for (int n = 12; n <= 2000; n += 997) {
			int d = outbox_retry_delay(n, 30, rnd[i]);
			ck_assert_msg(d >= OUTBOX_RETRY_MAX_SECONDS / 2 && d <= OUTBOX_RETRY_MAX_SECONDS,
			    "retry %d: %d", n, d);
		}
		ck_assert_int_eq(outbox_retry_delay(1, 1, rnd[i]), 1);
	}
	/* The jitter spreads: not every draw gives the same delay. */
	ck_assert_int_ne(outbox_retry_delay(3, 30, 0), outbox_retry_delay(3, 30, 17));
	/* Within a day, retries keep coming at least hourly: 24 h of tries. */
	int total = 0, tries = 0;
	while (total < OUTBOX_GIVE_UP_SECONDS)
		total += outbox_retry_delay(++tries, 30, 0xffffffffu);
	ck_assert_int_ge(tries, 24);
}
END_TEST

/* ---- limits: GCRA arithmetic, RateLimit fields, idempotency rules ---- */

static struct ratelimit_result rl(enum ratelimit_policy p, int n, int w, long long ahead_us)
{
	return (struct ratelimit_result){ p, { n, w }, true, ahead_us };
}

START_TEST(ratelimit_gcra_arithmetic)
{
	struct ratelimit_quota q = { 10, 60 };
	ck_assert_int_eq(ratelimit_emission_us(&q), 6000000);
	struct ratelimit_quota q3 = { 3, 1 };
	ck_assert_int_eq(ratelimit_emission_us(&q3), 333333);
	/* A full bucket, then after one request, then drained. */
	struct ratelimit_result r = rl(RL_AUTH, 10, 60, 0);
	ck_assert_int_eq(ratelimit_remaining(&r), 10);
	ck_assert_int_eq(ratelimit_reset_seconds(&r), 0);
	r.ahead_us = 6000000;
	ck_assert_int_eq(ratelimit_remaining(&r), 9);
	ck_assert_int_eq(ratelimit_reset_seconds(&r), 6);
	r.ahead_us = 6000001;
	ck_assert_int_eq(ratelimit_remaining(&r), 8);
	ck_assert_int_eq(ratelimit_reset_seconds(&r), 7);
	r.ahead_us = 60000000;
	ck_assert_int_eq(ratelimit_remaining(&r), 0);
	ck_assert_int_eq(ratelimit_reset_seconds(&r), 60);
	/* Drained: the next slot opens one emission interval later. */
	ck_assert_int_eq(ratelimit_retry_after(&r), 6);
	/* Half an interval of room is not a request, and Retry-After is
	 * rounded up and never 0. */
	r.ahead_us = 57000000;
	ck_assert_int_eq(ratelimit_remaining(&r), 0);
	ck_assert_int_eq(ratelimit_retry_after(&r), 3);
	r.ahead_us = 54000001;
	ck_assert_int_eq(ratelimit_retry_after(&r), 1);
	r.ahead_us = 54000000;
	ck_assert_int_eq(ratelimit_remaining(&r), 1);
	ck_assert_int_eq(ratelimit_retry_after(&r), 1);
}
END_TEST

START_TEST(ratelimit_fields_format)
{
	struct ratelimit_result two[] = { rl(RL_AUTH_EMAIL, 10, 60, 6000000), rl(RL_AUTH, 10, 60, 6000000) };
	char policy[256], state[128];
	ratelimit_format_policy(two, 2, policy, sizeof policy);
	ck_assert_str_eq(policy, "\"auth-email\";q=10;w=60, \"auth\";q=10;w=60");
	/* A tie names auth-email; otherwise the least remaining wins. */
	ck_assert_int_eq(ratelimit_tightest(two, 2)->policy, RL_AUTH_EMAIL);
	two[1].ahead_us = 18000000;
	ck_assert_int_eq(ratelimit_tightest(two, 2)->policy, RL_AUTH);
	ratelimit_format_state(ratelimit_tightest(two, 2), state, sizeof state);
	ck_assert_str_eq(state, "\"auth\";r=7;t=18");
	/* The second factor's pair: a tie names auth-user. */
	struct ratelimit_result mfa[] = { rl(RL_AUTH_USER, 10, 60, 6000000), rl(RL_AUTH, 10, 60, 6000000) };
	ratelimit_format_policy(mfa, 2, policy, sizeof policy);
	ck_assert_str_eq(policy, "\"auth-user\";q=10;w=60, \"auth\";q=10;w=60");
	ck_assert_int_eq(ratelimit_tightest(mfa, 2)->policy, RL_AUTH_USER);
	struct ratelimit_result w = rl(RL_WRITE, 60, 60, 0);
	ratelimit_format_policy(&w, 1, policy, sizeof policy);
	ck_assert_str_eq(policy, "\"write\";q=60;w=60");
	ratelimit_format_state(&w, state, sizeof state);
	ck_assert_str_eq(state, "\"write\";r=60;t=0");
}
END_TEST

START_TEST(ratelimit_client_ids)
{
	char out[64];
	ratelimit_client_id("203.0.113.7", out, sizeof out);
	ck_assert_str_eq(out, "203.0.113.7");
	/* One subscriber's /64 is one client. */
	ratelimit_client_id("2001:db8:1:2:3:4:5:6", out, sizeof out);
	ck_assert_str_eq(out, "2001:db8:1:2::/64");
	ratelimit_client_id("2001:DB8:1:2:ffff::1", out, sizeof out);
	ck_assert_str_eq(out, "2001:db8:1:2::/64");
	ratelimit_client_id("::ffff:192.0.2.1", out, sizeof out);
	ck_assert_str_eq(out, "192.0.2.1");
	ratelimit_client_id("unix:", out, sizeof out);
	ck_assert_str_eq(out, "unix:");
	ratelimit_client_id("", out, sizeof out);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(idempotency_key_syntax)
{
	char k[300];
	ck_assert(idempotency_key_valid("a"));
	ck_assert(idempotency_key_valid("order 42 / retry:1"));
	ck_assert(!idempotency_key_valid(""));
	memset(k, 'k', 255);
	k[255] = '\0';
	ck_assert(idempotency_key_valid(k));
	k[255] = 'k';
	k[256] = '\0';
	ck_assert(!idempotency_key_valid(k));
	ck_assert(!idempotency_key_valid("a\tb"));
	ck_assert(!idempotency_key_valid("a\x7f"));
	ck_assert(!idempotency_key_valid("caf\xc3\xa9"));
}
END_TEST

START_TEST(idempotency_what_is_stored)
{
	ck_assert(idempotency_should_store(200, GE_OK));
	ck_assert(idempotency_should_store(201, GE_OK));
	ck_assert(idempotency_should_store(204, GE_OK));
	ck_assert(idempotency_should_store(403, GE_FORBIDDEN));
	ck_assert(idempotency_should_store(404, GE_NOT_FOUND));
	ck_assert(idempotency_should_store(409, GE_INVALID_STATE));
	ck_assert(idempotency_should_store(409, GE_EMAIL_TAKEN));
	ck_assert(idempotency_should_store(502, GE_STRIPE_ERROR));
	ck_assert(!idempotency_should_store(400, GE_MALFORMED_JSON));
	ck_assert(!idempotency_should_store(400, GE_INVALID_OTP));
	ck_assert(!idempotency_should_store(401, GE_INVALID_CREDENTIALS));
	ck_assert(!idempotency_should_store(403, GE_CSRF_FAILED));
	ck_assert(!idempotency_should_store(403, GE_EMAIL_NOT_VERIFIED));
	ck_assert(!idempotency_should_store(403, GE_MFA_REQUIRED));
	ck_assert(!idempotency_should_store(409, GE_PAYOUT_IN_PROGRESS));
	ck_assert(!idempotency_should_store(413, GE_PAYLOAD_TOO_LARGE));
	ck_assert(!idempotency_should_store(415, GE_UNSUPPORTED_MEDIA_TYPE));
	ck_assert(!idempotency_should_store(422, GE_VALIDATION));
	ck_assert(!idempotency_should_store(429, GE_RATE_LIMITED));
	ck_assert(!idempotency_should_store(500, GE_INTERNAL));
	ck_assert(!idempotency_should_store(502, GE_PAYOUT_UNCONFIRMED));
	ck_assert(!idempotency_should_store(502, GE_STRIPE_UNAVAILABLE));
	ck_assert(!idempotency_should_store(503, GE_DB_UNAVAILABLE));
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("unit");
	TCase *tc = tcase_create("http");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, router_matches_params);
	tcase_add_test(tc, router_unknown_and_wrong_method);
	tcase_add_test(tc, pipeline_404_405_envelope);
	tcase_add_test(tc, response_json_prints_any_length);
	tcase_add_test(tc, json_print_matches_cjson);
	tcase_add_test(tc, pipeline_body_checks);
	tcase_add_test(tc, utf8_validation);
	tcase_add_test(tc, utf8_scrub_keeps_text_and_replaces_the_rest);
	tcase_add_test(tc, request_id_rules);
	tcase_add_test(tc, query_and_headers);
	tcase_add_test(tc, client_ip_ignores_untrusted_forwarded_for);
	tcase_add_test(tc, response_serialization_is_safe);
	suite_add_tcase(s, tc);
	TCase *core = tcase_create("core");
	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_test(core, buf_has_a_hard_maximum);
	tcase_add_test(core, log_batch_keeps_lines_whole_and_in_order);
	tcase_add_test(core, scoreboard_finds_a_worker_long_asleep);
	tcase_add_test(core, arena_reset_runs_deferred);
	tcase_add_test(core, arena_reuses_chunks);
	tcase_add_test(core, db_time_formats_epoch_seconds);
	tcase_add_test(core, config_defaults_and_validation);
	tcase_add_test(core, netmask_lists);
	tcase_add_test(core, config_production_guards);
	tcase_add_test(core, config_mailer_guards);
	tcase_add_test(core, config_env_file_overrides);
	tcase_add_test(core, config_systemd_credentials);
	tcase_add_test(core, config_production_transport_guards);
	tcase_add_test(core, config_smtp_tls_requirement);
	tcase_add_test(core, config_migration_url_read_by_migrate_only);
	suite_add_tcase(s, core);
	TCase *auth = tcase_create("auth");
	tcase_add_checked_fixture(auth, setup, teardown);
	tcase_set_timeout(auth, 30);
	tcase_add_test(auth, jwt_independent_vectors);
	tcase_add_test(auth, jwt_round_trip_and_garbage);
	tcase_add_test(auth, csrf_decisions);
	tcase_add_test(auth, password_rules);
	tcase_add_test(auth, password_hash_verify);
	tcase_add_test(auth, tokens_and_ids);
	tcase_add_test(auth, totp_rfc6238_vectors);
	tcase_add_test(auth, base32_round_trip);
	tcase_add_test(auth, rfc3339_and_email_validation);
	tcase_add_test(auth, mail_format_headers);
	tcase_add_test(auth, outbox_retry_backoff);
	suite_add_tcase(s, auth);

	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, ratelimit_gcra_arithmetic);
	tcase_add_test(limits, ratelimit_fields_format);
	tcase_add_test(limits, ratelimit_client_ids);
	tcase_add_test(limits, idempotency_key_syntax);
	tcase_add_test(limits, idempotency_what_is_stored);
	suite_add_tcase(s, limits);
	return s;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	SRunner *sr = srunner_create(unit_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
