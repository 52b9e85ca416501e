/* Unit tests of what a request may bring and take: decoded input that is
 * not text, the caps of JSON bodies, the arena's cap, the response's
 * header table and log lines that stay UTF-8. Nothing running. */
#include "autoconf.h"

#include <check.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/json.h"
#include "core/log.h"
#include "http/json.h"
#include "http/pipeline.h"
#include "http/request.h"
#include "http/response.h"
#include "http/router.h"

static struct config unit_cfg;
static arena_t *A;

static void setup(void)
{
	A = arena_new(4096);
	memset(&unit_cfg, 0, sizeof unit_cfg);
	unit_cfg.max_body_bytes = 1 << 20;
	unit_cfg.trusted_proxies = "";
	gala_config = &unit_cfg;
}

static void teardown(void)
{
	arena_free(A);
}

/* A request as nginx would pass it: uri is DOCUMENT_URI?QUERY_STRING. */
static void make_request(struct request *req, const char *method, const char *uri,
    const char *body, char **extra)
{
	char **envp = arena_calloc(A, 16, sizeof *envp);
	int n = 0;
	const char *q = strchr(uri, '?');
	envp[n++] = arena_printf(A, "REQUEST_METHOD=%s", method);
	envp[n++] = arena_printf(A, "REQUEST_URI=%s", uri);
	envp[n++] = arena_printf(A, "DOCUMENT_URI=%.*s", q ? (int)(q - uri) : (int)strlen(uri), uri);
	envp[n++] = arena_printf(A, "QUERY_STRING=%s", q ? q + 1 : "");
	envp[n++] = arena_strdup(A, "REMOTE_ADDR=203.0.113.7");
	if (body != NULL)
		envp[n++] = arena_strdup(A, "CONTENT_TYPE=application/json");
	for (; extra != NULL && *extra != NULL; extra++)
		envp[n++] = *extra;
	request_init(req, A, envp, body, body ? strlen(body) : 0);
}

static void h_ok(struct request *req)
{
	response_json(req, 200, cJSON_CreateObject());
}

/* Takes 1 MiB from the arena, 4 KiB at a time. */
static void h_greedy(struct request *req)
{
	for (int i = 0; i < 256; i++)
		memset(arena_alloc(req->arena, 4096), 'g', 4096);
	response_json(req, 200, cJSON_CreateObject());
}

static const struct route table[] = {
	{ "GET", "/api/things", h_ok, AUTH_NONE, 0, RATE_NONE, 0, 0 },
	{ "POST", "/api/things", h_ok, AUTH_NONE, 0, RATE_NONE, 0, 0 },
	{ "GET", "/api/things/{id}", h_ok, AUTH_NONE, 0, RATE_NONE, 0, 0 },
	{ "GET", "/api/greedy", h_greedy, AUTH_NONE, 0, RATE_NONE, 0, 0 },
};
#define NT (sizeof table / sizeof table[0])

/* error.<member> of the response, or NULL. */
static const char *error_member(const struct request *req, const char *member)
{
	cJSON *j = json_defer(A, cJSON_ParseWithLength(req->resp.body, req->resp.body_len));
	ck_assert_ptr_nonnull(j);
	cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), member);
	return cJSON_IsString(v) ? arena_strdup(A, v->valuestring) : NULL;
}

static void expect_refusal(const char *uri, char **extra, int status, const char *code,
    const char *param, const char *message)
{
	struct request req;
	make_request(&req, "GET", uri, NULL, extra);
	pipeline_run(&req, table, NT);
	ck_assert_msg(req.resp.status == status, "%s: %d", uri, req.resp.status);
	ck_assert_str_eq(error_member(&req, "code"), code);
	if (param != NULL)
		ck_assert_str_eq(error_member(&req, "param"), param);
	else
		ck_assert_ptr_null(error_member(&req, "param"));
	if (message != NULL)
		ck_assert_str_eq(error_member(&req, "message"), message);
}

START_TEST(query_values_that_are_not_text_are_422)
{
	expect_refusal("/api/things?city=%FF", NULL, 422, "validation_failed", "city",
	    "city must be valid UTF-8 text without NUL");
	expect_refusal("/api/things?limit=5&city=caf%C3%A9%00x", NULL, 422, "validation_failed",
	    "city", NULL);
	expect_refusal("/api/things?city=\xc3(", NULL, 422, "validation_failed", "city", NULL);
	expect_refusal("/api/things?city=%ED%A0%80", NULL, 422, "validation_failed", "city", NULL);
	expect_refusal("/api/things?ci%FFty=x", NULL, 400, "bad_request", NULL, NULL);
	expect_refusal("/api/things?%00", NULL, 400, "bad_request", NULL, NULL);

	struct request req;
	make_request(&req, "GET", "/api/things?city=caf%C3%A9&q=%E2%82%AC+1&flag", NULL, NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 200);
	ck_assert_str_eq(request_query(&req, "city"), "caf\xc3\xa9");
	ck_assert_str_eq(request_query(&req, "q"), "\xe2\x82\xac 1");
	ck_assert_str_eq(request_query(&req, "flag"), "");
}
END_TEST

START_TEST(paths_and_headers_that_are_not_text_are_400)
{
	expect_refusal("/api/things/caf\xc3\xa9\xff", NULL, 400, "bad_request", NULL,
	    "the path is not valid UTF-8");
	struct request req;
	make_request(&req, "GET", "/api/things/caf\xc3\xa9\xff", NULL, NULL);
	ck_assert(utf8_valid(req.path, strlen(req.path)));
	ck_assert_str_eq(req.path, "/api/things/caf\xc3\xa9\xef\xbf\xbd");

	char *ua[] = { "HTTP_USER_AGENT=curl \xff\xfe", NULL };
	expect_refusal("/api/things", ua, 400, "bad_request", NULL,
	    "the User-Agent header is not valid UTF-8");
	char *custom[] = { "HTTP_ACCEPT=*/*", "HTTP_X_TRACE_2=\xc0\xaf", NULL };
	expect_refusal("/api/things", custom, 400, "bad_request", NULL,
	    "the X-Trace-2 header is not valid UTF-8");
	char *ct[] = { "CONTENT_TYPE=application/json; x=\xff", NULL };
	expect_refusal("/api/things", ct, 400, "bad_request", NULL,
	    "the Content-Type header is not valid UTF-8");
	/* The path goes first, whatever else is wrong. */
	expect_refusal("/api/\xff?city=%FF", ua, 400, "bad_request", NULL,
	    "the path is not valid UTF-8");

	char *fine[] = { "HTTP_USER_AGENT=Mozilla/5.0 (caf\xc3\xa9) \xf0\x9f\x8e\x89", NULL };
	make_request(&req, "GET", "/api/things", NULL, fine);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 200);
}
END_TEST

/* A body of n distinct members "k0".."k<n-1>", malloc'd. */
static char *members_body(int n)
{
	buf_t b;
	buf_init(&b, 16u << 20);
	ck_assert_int_eq(buf_puts(&b, "{"), 0);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i), 0);
	ck_assert_int_eq(buf_puts(&b, "}"), 0);
	return b.data;
}

/* {"a":[[[...]]]}: the object and depth - 1 arrays. */
static char *nested_body(int depth)
{
	buf_t b;
	buf_init(&b, 1u << 16);
	ck_assert_int_eq(buf_puts(&b, "{\"a\":"), 0);
	for (int i = 1; i < depth; i++)
		ck_assert_int_eq(buf_puts(&b, "["), 0);
	for (int i = 1; i < depth; i++)
		ck_assert_int_eq(buf_puts(&b, "]"), 0);
	ck_assert_int_eq(buf_puts(&b, "}"), 0);
	return b.data;
}

static int post_status(const char *body)
{
	struct request req;
	make_request(&req, "POST", "/api/things", body, NULL);
	pipeline_run(&req, table, NT);
	return req.resp.status;
}

START_TEST(json_bodies_have_caps)
{
	char *body = members_body(JSON_MAX_MEMBERS);
	ck_assert_int_eq(post_status(body), 200);
	free(body);
	/* The body of the issue: 64 KB, about 7,600 distinct keys. */
	body = members_body(7600);
	ck_assert_uint_ge(strlen(body), 60000);
	ck_assert_int_eq(post_status(body), 413);
	struct request req;
	make_request(&req, "POST", "/api/things", body, NULL);
	pipeline_run(&req, table, NT);
	ck_assert_str_eq(error_member(&req, "code"), "payload_too_large");
	ck_assert_str_eq(error_member(&req, "message"), "the JSON body has more than 1000 members");
	free(body);

	body = nested_body(JSON_MAX_DEPTH);
	ck_assert_int_eq(post_status(body), 200);
	free(body);
	body = nested_body(JSON_MAX_DEPTH + 1);
	ck_assert_int_eq(post_status(body), 413);
	free(body);
	/* Brackets and colons inside strings are text, not structure. */
	ck_assert_int_eq(post_status("{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[:::\\\"[[\"}"), 200);
}
END_TEST

START_TEST(duplicate_keys_anywhere_are_400)
{
	ck_assert_int_eq(post_status("{\"a\":1,\"b\":{\"c\":1,\"c\":2}}"), 400);
	ck_assert_int_eq(post_status("{\"a\":[{\"x\":1},{\"y\":1,\"y\":2}]}"), 400);
	ck_assert_int_eq(post_status("{\"a\":[{\"x\":1},{\"x\":1}],\"b\":{\"a\":1}}"), 200);
}
END_TEST

/* Linear: 100,000 members, where pairwise comparison would need five
 * billion. */
START_TEST(duplicate_detection_handles_100k_keys)
{
	char *text = members_body(100000);
	cJSON *o = cJSON_Parse(text);
	free(text);
	ck_assert_ptr_nonnull(o);
	ck_assert(!json_has_duplicate_keys(A, o));
	cJSON_AddNumberToObject(o, "k99999", 1);
	ck_assert(json_has_duplicate_keys(A, o));
	cJSON_Delete(o);
}
END_TEST

static jmp_buf cap_jump;
static int cap_calls;

static void on_cap(void *ctx)
{
	cap_calls++;
	longjmp(cap_jump, *(int *)ctx);
}

START_TEST(arena_cap_calls_its_handler_once_per_reset)
{
	arena_t *a = arena_new(1024);
	int token = 7;
	arena_set_cap(a, 64 * 1024);
	arena_on_cap(a, on_cap, &token);
	cap_calls = 0;
	for (int round = 0; round < 2; round++) {
		volatile int allocated = 0;
		if (setjmp(cap_jump) == 0) {
			for (int i = 0; i < 100; i++) {
				arena_alloc(a, 1024);
				allocated++;
			}
		}
		ck_assert_int_eq(cap_calls, round + 1);
		ck_assert_int_eq(allocated, 64);
		/* The cap rests until the reset: whoever caught it can answer. */
		ck_assert_ptr_nonnull(arena_alloc(a, 100000));
		ck_assert_int_eq(cap_calls, round + 1);
		arena_reset(a);
	}
	arena_free(a);
}
END_TEST

START_TEST(pipeline_abandons_a_request_past_the_arena_cap)
{
	arena_t *a = arena_new(4096);
	arena_t *saved = A;
	A = a;
	arena_set_cap(a, 256 * 1024);
	struct request req;
	make_request(&req, "GET", "/api/greedy", NULL, NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 503);
	ck_assert(req.abandoned);
	ck_assert_str_eq(error_member(&req, "code"), "service_unavailable");
	buf_t out;
	buf_init(&out, 1 << 16);
	ck_assert_int_eq(response_serialize(&req, &out), 0);
	buf_free(&out);
	arena_reset(a);

	/* The next request is served as usual, and the cap holds again. */
	make_request(&req, "GET", "/api/things", NULL, NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 200);
	ck_assert(!req.abandoned);
	arena_reset(a);
	make_request(&req, "GET", "/api/greedy", NULL, NULL);
	pipeline_run(&req, table, NT);
	ck_assert_int_eq(req.resp.status, 503);
	A = saved;
	arena_free(a);
}
END_TEST

START_TEST(a_header_past_the_table_fails_the_response)
{
	struct request req;
	make_request(&req, "GET", "/api/things", NULL, NULL);
	response_json(&req, 200, cJSON_CreateObject());
	for (int i = 0; i < RESPONSE_MAX_HEADERS; i++)
		response_header(&req, arena_printf(A, "X-H%d", i), "v");
	buf_t out;
	buf_init(&out, 1 << 16);
	ck_assert_int_eq(response_serialize(&req, &out), 0);
	buf_clear(&out);
	response_header(&req, "X-H0", "replaced, not added");
	ck_assert_int_eq(response_serialize(&req, &out), 0);
	buf_clear(&out);
	response_header(&req, "X-One-Too-Many", "v");
	ck_assert_int_eq(response_serialize(&req, &out), -1);
	buf_free(&out);
}
END_TEST

/* What stderr received while fn ran. */
static char *capture_stderr(void (*fn)(void))
{
	char path[] = "/tmp/gala-unit-log.XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	int saved = dup(STDERR_FILENO);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	fn();
	ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
	close(saved);
	off_t n = lseek(fd, 0, SEEK_END);
	char *text = arena_alloc(A, (size_t)n + 1);
	ck_assert_int_eq(pread(fd, text, (size_t)n, 0), n);
	text[n] = '\0';
	close(fd);
	return text;
}

static void log_bad_bytes(void)
{
	struct log_line l;
	log_line_begin(&l, LOG_LEVEL_INFO, "gala.test", "request");
	log_line_str(&l, "path", "/api/caf\xc3\xa9\xff\xfe");
	log_line_end(&l);
	log_info("gala.test", "user agent %s", "curl \xc0\xaf");
}

START_TEST(log_lines_stay_utf8)
{
	char *text = capture_stderr(log_bad_bytes);
	ck_assert(utf8_valid(text, strlen(text)));
	char *second = strchr(text, '\n');
	ck_assert_ptr_nonnull(second);
	*second++ = '\0';
	cJSON *access = json_defer(A, cJSON_Parse(text));
	cJSON *other = json_defer(A, cJSON_Parse(second));
	ck_assert_ptr_nonnull(access);
	ck_assert_ptr_nonnull(other);
	ck_assert_str_eq(cJSON_GetObjectItem(access, "path")->valuestring,
	    "/api/caf\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd");
	ck_assert_str_eq(cJSON_GetObjectItem(other, "message")->valuestring,
	    "user agent curl \xef\xbf\xbd\xef\xbf\xbd");
}
END_TEST

static Suite *input_suite(void)
{
	Suite *s = suite_create("unit-input");
	TCase *in = tcase_create("input");
	tcase_add_checked_fixture(in, setup, teardown);
	tcase_add_test(in, query_values_that_are_not_text_are_422);
	tcase_add_test(in, paths_and_headers_that_are_not_text_are_400);
	tcase_add_test(in, json_bodies_have_caps);
	tcase_add_test(in, duplicate_keys_anywhere_are_400);
	tcase_add_test(in, duplicate_detection_handles_100k_keys);
	suite_add_tcase(s, in);
	TCase *caps = tcase_create("caps");
	tcase_add_checked_fixture(caps, setup, teardown);
	tcase_add_test(caps, arena_cap_calls_its_handler_once_per_reset);
	tcase_add_test(caps, pipeline_abandons_a_request_past_the_arena_cap);
	tcase_add_test(caps, a_header_past_the_table_fails_the_response);
	tcase_add_test(caps, log_lines_stay_utf8);
	suite_add_tcase(s, caps);
	return s;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	SRunner *sr = srunner_create(input_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
