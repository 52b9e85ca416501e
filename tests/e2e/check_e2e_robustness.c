/* Robustness through nginx: every route of docs/openapi.json, called with
 * malformed bodies, odd query strings, bad ids and with or without a token,
 * answers a JSON body and never a server error. A client's mistake is a 4xx:
 * input that is not UTF-8 text, JSON bodies past their caps, a flood of
 * anonymous writes; and the access logs stay JSON whatever a client sends. */
#include "autoconf.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/json.h"
#include "testlib.h"

static cJSON *load_openapi(void)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/docs/openapi.json", test_env("GALA_SRCDIR"));
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *text = malloc((size_t)n + 1);
	ck_assert_int_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	text[n] = '\0';
	fclose(f);
	cJSON *doc = cJSON_Parse(text);
	free(text);
	ck_assert_ptr_nonnull(doc);
	return doc;
}

static char *signed_in_token(const char *role)
{
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"robust-%s-%d@example.com\",\"password\":"
	    "\"Gala-test-pass-42\",\"full_name\":\"Robust\",\"role\":\"%s\"}", role, (int)getpid(), role);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/register", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 201);
	char *t = strdup(cJSON_GetObjectItem(r.json, "access_token")->valuestring);
	char *id = strdup(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "user"), "id")->valuestring);
	http_resp_free(&r);
	PGconn *c = test_db_superuser();
	const char *p[] = { id };
	PQclear(PQexecParams(c, "UPDATE users SET email_verified = true WHERE id = $1", 1, NULL, p,
	    NULL, NULL, 0));
	PQfinish(c);
	free(id);
	return t;
}

/* Replaces every {param} of a path with value. */
static void fill_path(const char *tmpl, const char *value, char *out, size_t outlen)
{
	size_t o = 0;
	for (const char *p = tmpl; *p != '\0' && o + 1 < outlen; p++) {
		if (*p == '{') {
			const char *end = strchr(p, '}');
			o += (size_t)snprintf(out + o, outlen - o, "%s", value);
			p = end;
			continue;
		}
		out[o++] = *p;
	}
	out[o < outlen ? o : outlen - 1] = '\0';
}

static int failures;

/* Whether op documents, for r's status, the media type r was answered
 * with (GET /metrics answers Prometheus' text, not JSON). */
static int documented_type(const cJSON *op, const struct http_resp *r)
{
	char status[8];
	snprintf(status, sizeof status, "%ld", r->status);
	const cJSON *content = cJSON_GetObjectItem(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(op, "responses"), status), "content");
	char *type = http_header(r, "Content-Type");
	int found = type != NULL && cJSON_GetObjectItem(content, type) != NULL;
	free(type);
	return found;
}

/* json: whether the answer must be JSON; the documentation nginx serves
 * itself ("x-gala-served-by": "nginx") is an HTML page to a GET. */
static void check_answer(const cJSON *op, const char *method, const char *path, const char *what,
    bool json, const struct http_resp *r)
{
	int json_ok = !json || r->body_len == 0 || r->json != NULL || documented_type(op, r);
	if (r->status >= 500 || r->status == 0 || !json_ok) {
		fprintf(stderr, "%s %s (%s): %ld %.200s\n", method, path, what, r->status, r->body);
		failures++;
	}
}

START_TEST(every_route_survives_bad_input)
{
	static const char *const bodies[] = { "", "{}", "[]", "null", "\"x\"", "42",
		"{\"email\":null,\"title\":7}", "{\"amount_cents\":1e400}", "{\"amount_cents\":-1}",
		"{\"starts_at\":\"2026-02-30T10:00:00Z\",\"service_provider_id\":\"x\"}",
		"{\"x\":\"\\ud800\"}", "{\"a\":\"\xc3\x28\"}", "{\"status\":\"paid\",\"owner_id\":1}" };
	static const char *const queries[] = { "?limit=", "?limit=0", "?limit=abc&offset=-1",
		"?offset=99999999999999999999", "?owner_id=bad&created_after=nope&category=zzz" };
	static const char *const ids[] = { "6f1c2c9e-8d1b-4a63-9b1e-2f7f6b0e9a10", "not-a-uuid" };
	char *tokens[] = { NULL, signed_in_token("customer"), signed_in_token("provider") };
	cJSON *doc = load_openapi();
	int requests = 0;
	cJSON *path;
	cJSON_ArrayForEach(path, cJSON_GetObjectItem(doc, "paths")) {
		cJSON *op;
		cJSON_ArrayForEach(op, path) {
			char method[8];
			snprintf(method, sizeof method, "%s", op->string);
			for (char *m = method; *m; m++)
				*m = (char)(*m - 32 * (*m >= 'a' && *m <= 'z'));
			if (strcmp(method, "GET") && strcmp(method, "POST") && strcmp(method, "PATCH") &&
			    strcmp(method, "DELETE"))
				continue;
			const cJSON *served_by = cJSON_GetObjectItem(op, "x-gala-served-by");
			bool json = !(cJSON_IsString(served_by) &&
			    strcmp(served_by->valuestring, "nginx") == 0 && strcmp(method, "GET") == 0);
			for (size_t t = 0; t < 3; t++) {
				for (size_t i = 0; i < (strchr(path->string, '{') ? 2u : 1u); i++) {
					char p[512];
					fill_path(path->string, ids[i], p, sizeof p);
					size_t n = strcmp(method, "GET") == 0 ? 5 : 13;
					for (size_t k = 0; k < n; k++) {
						char full[1024];
						const char *body = NULL;
						if (strcmp(method, "GET") == 0)
							snprintf(full, sizeof full, "%s%s", p, queries[k]);
						else {
							snprintf(full, sizeof full, "%s", p);
							body = bodies[k];
						}
						struct http_resp r;
						http_json(method, full, tokens[t], body, &r);
						check_answer(op, method, full, body ? body : "query", json, &r);
						http_resp_free(&r);
						requests++;
					}
				}
			}
		}
	}
	cJSON_Delete(doc);
	free(tokens[1]);
	free(tokens[2]);
	ck_assert_int_gt(requests, 500);
	ck_assert_msg(failures == 0, "%d of %d answers were server errors or not JSON", failures,
	    requests);
}
END_TEST

static void expect_error(const struct http_resp *r, long status, const char *code,
    const char *param)
{
	ck_assert_msg(r->status == status, "status %ld (want %ld): %s", r->status, status, r->body);
	ck_assert_str_eq(http_error_code(r), code);
	cJSON *p = cJSON_GetObjectItem(cJSON_GetObjectItem(r->json, "error"), "param");
	if (param == NULL)
		ck_assert_msg(p == NULL, "unexpected param: %s", r->body);
	else
		ck_assert_msg(cJSON_IsString(p) && strcmp(p->valuestring, param) == 0,
		    "param (want %s): %s", param, r->body);
}

static const char *error_message(const struct http_resp *r)
{
	cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(r->json, "error"), "message");
	return cJSON_IsString(m) ? m->valuestring : "";
}

/* A request with its own header lines (NULL-terminated) and optional JSON
 * body. */
static void request_with(const char *method, const char *path, const char *const *lines,
    const char *body, struct http_resp *r)
{
	const char *h[8];
	int n = 0;
	if (body != NULL)
		h[n++] = "Content-Type: application/json";
	for (const char *const *l = lines; l != NULL && *l != NULL && n < 7; l++)
		h[n++] = *l;
	h[n] = NULL;
	ck_assert_int_eq(http_do(method, path, h, body, r), 0);
}

START_TEST(input_that_is_not_text_is_refused)
{
	char *token = signed_in_token("customer");
	struct http_resp r;
	/* Query values: the parameter's 422, like any malformed value. */
	http_json("GET", "/api/providers?city=%FF", token, NULL, &r);
	expect_error(&r, 422, "validation_failed", "city");
	http_resp_free(&r);
	http_json("GET", "/api/providers?category=music&city=Ly%00on", token, NULL, &r);
	expect_error(&r, 422, "validation_failed", "city");
	http_resp_free(&r);
	http_json("GET", "/api/events?limit=%C0%AF", token, NULL, &r);
	expect_error(&r, 422, "validation_failed", "limit");
	http_resp_free(&r);
	http_json("GET", "/api/providers?ci%FFty=x", token, NULL, &r);
	expect_error(&r, 400, "bad_request", NULL);
	http_resp_free(&r);
	/* Raw bytes, as a client may send them unencoded. */
	http_json("GET", "/api/providers?city=\xff\xfe", token, NULL, &r);
	expect_error(&r, 422, "validation_failed", "city");
	http_resp_free(&r);
	/* UTF-8 text is welcome. */
	http_json("GET", "/api/providers?city=Z%C3%BCrich", token, NULL, &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	http_resp_free(&r);

	/* The path (nginx hands it over decoded). */
	http_json("GET", "/api/providers/%FF%FE", token, NULL, &r);
	expect_error(&r, 400, "bad_request", NULL);
	ck_assert_str_eq(error_message(&r), "the path is not valid UTF-8");
	http_resp_free(&r);

	/* Headers: a login whose User-Agent is not UTF-8 is refused before
	 * anything reads it, with the right password or not. */
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"robust-customer-%d@example.com\","
	    "\"password\":\"Gala-test-pass-42\"}", (int)getpid());
	const char *bad_ua[] = { "User-Agent: Mozilla/5.0 \xff\xfe\xfd", NULL };
	request_with("POST", "/api/auth/login", bad_ua, body, &r);
	expect_error(&r, 400, "bad_request", NULL);
	ck_assert_str_eq(error_message(&r), "the User-Agent header is not valid UTF-8");
	http_resp_free(&r);
	const char *bad_other[] = { "X-Client-Note: caf\xe9", NULL };
	request_with("POST", "/api/auth/login", bad_other, body, &r);
	expect_error(&r, 400, "bad_request", NULL);
	ck_assert_str_eq(error_message(&r), "the X-Client-Note header is not valid UTF-8");
	http_resp_free(&r);
	const char *good_ua[] = { "User-Agent: Gala-Test/1.0 (caf\xc3\xa9)", NULL };
	request_with("POST", "/api/auth/login", good_ua, body, &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	http_resp_free(&r);
	free(token);
}
END_TEST

/* A body of the given members and n more, named "000", "001"... in base
 * 36 (three characters, so that 7,600 of them fit 64 KB); malloc'd. */
static char *wide_body(const char *first, int n)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	size_t cap = strlen(first) + 10 * (size_t)n + 8;
	char *b = malloc(cap);
	size_t o = (size_t)snprintf(b, cap, "{%s", first);
	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(b + o, cap - o, "%s\"%c%c%c\":0", i || *first ? "," : "",
		    digits[i / 1296 % 36], digits[i / 36 % 36], digits[i % 36]);
	snprintf(b + o, cap - o, "}");
	return b;
}

START_TEST(json_bodies_past_their_caps_are_413)
{
	struct http_resp r;
	/* 64 KB with about 7,600 distinct keys, before any authentication. */
	char *wide = wide_body("", 7600);
	ck_assert_uint_ge(strlen(wide), 60000);
	ck_assert_uint_le(strlen(wide), 65536);
	request_with("POST", "/api/auth/login", NULL, wide, &r);
	expect_error(&r, 413, "payload_too_large", NULL);
	ck_assert_str_eq(error_message(&r), "the JSON body has more than 1000 members");
	http_resp_free(&r);
	request_with("POST", "/api/events", NULL, wide, &r);
	expect_error(&r, 413, "payload_too_large", NULL);
	http_resp_free(&r);
	free(wide);

	char deep[128] = "{\"email\":";
	for (int i = 0; i < 32; i++)
		strcat(deep, "[");
	for (int i = 0; i < 32; i++)
		strcat(deep, "]");
	strcat(deep, "}");
	request_with("POST", "/api/auth/login", NULL, deep, &r);
	expect_error(&r, 413, "payload_too_large", NULL);
	ck_assert_str_eq(error_message(&r), "the JSON body nests deeper than 32 levels");
	http_resp_free(&r);

	/* Within the caps the body is read, and judged on what it says. */
	char *many = wide_body("\"email\":\"x@example.com\",\"password\":\"whatever-1\"", 990);
	request_with("POST", "/api/auth/login", NULL, many, &r);
	expect_error(&r, 422, "validation_failed", "000");
	http_resp_free(&r);
	free(many);
	request_with("POST", "/api/auth/login", NULL,
	    "{\"email\":\"x@example.com\",\"password\":[{\"a\":1,\"a\":2}]}", &r);
	expect_error(&r, 400, "malformed_json", NULL);
	http_resp_free(&r);
}
END_TEST

static void sql(const char *statement)
{
	PGconn *c = test_db_superuser();
	PGresult *res = PQexec(c, statement);
	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", statement,
	    PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
}

static void expect_header(const struct http_resp *r, const char *name, const char *want)
{
	char *v = http_header(r, name);
	ck_assert_msg(v != NULL && strcmp(v, want) == 0, "%s: got \"%s\", want \"%s\" (status %ld)",
	    name, v ? v : "(none)", want, r->status);
	free(v);
}

/* RateLimit: "write";r=R;t=T, where T may have counted down a second. */
static void expect_ratelimit(const struct http_resp *r, int remaining, int t)
{
	char *v = http_header(r, "RateLimit");
	int gr = -1, gt = -1;
	ck_assert_msg(v != NULL && sscanf(v, "\"write\";r=%d;t=%d", &gr, &gt) == 2 &&
	    gr == remaining && gt <= t && gt >= t - 1, "RateLimit: %s, want \"write\";r=%d;t=%d",
	    v ? v : "(none)", remaining, t);
	free(v);
}

/* API.md: a request without valid credentials to a write route is counted
 * per IP before it is refused. */
START_TEST(anonymous_writes_meet_429)
{
	ck_assert_int_eq(stack_ctl("gala-start WRITE_RATE_LIMIT_REQUESTS=3 "
	    "WRITE_RATE_LIMIT_WINDOW_SECONDS=30"), 0);
	sql("DELETE FROM rate_limits");
	char *token = signed_in_token("customer");
	const char *event = "{\"title\":\"Flood\",\"starts_at\":\"2031-06-12T16:00:00Z\"}";
	const char *none[] = { NULL };
	const char *garbage[] = { "Authorization: Bearer not-a-token", NULL };
	char forged[4096];
	/* A well-formed token whose signature is not ours. */
	snprintf(forged, sizeof forged, "Authorization: Bearer %.*sAAAA", (int)(strrchr(token, '.') -
	    token + 1), token);
	const char *badly_signed[] = { forged, NULL };
	const char *const *callers[] = { none, garbage, badly_signed };
	const char *codes[] = { "authentication_required", "invalid_token", "invalid_token" };
	struct http_resp r;
	for (int i = 0; i < 3; i++) {
		request_with("POST", "/api/events", callers[i], event, &r);
		expect_error(&r, 401, codes[i], NULL);
		expect_header(&r, "RateLimit-Policy", "\"write\";q=3;w=30");
		expect_ratelimit(&r, 2 - i, 10 * (i + 1));
		http_resp_free(&r);
	}
	for (int i = 0; i < 3; i++) {
		request_with("POST", "/api/events", callers[i], event, &r);
		expect_error(&r, 429, "rate_limited", NULL);
		char *retry = http_header(&r, "Retry-After");
		ck_assert_msg(retry != NULL && atoi(retry) >= 9 && atoi(retry) <= 10, "Retry-After %s",
		    retry);
		free(retry);
		expect_header(&r, "RateLimit-Policy", "\"write\";q=3;w=30");
		http_resp_free(&r);
	}
	/* A signed-in caller counts in a bucket of its own. */
	http_json("POST", "/api/events", token, event, &r);
	ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
	http_resp_free(&r);
	free(token);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);
}
END_TEST

/* The nginx line of the request with this id, waiting for its buffer to be
 * flushed (flush=1s); malloc'd, or NULL. */
static char *log_line_of(const char *file, const char *request_id)
{
	char needle[128];
	snprintf(needle, sizeof needle, "\"request_id\":\"%s\"", request_id);
	for (int tries = 0; tries < 50; tries++) {
		FILE *f = fopen(file, "r");
		char line[8192];
		while (f != NULL && fgets(line, sizeof line, f) != NULL) {
			if (strstr(line, needle) != NULL) {
				fclose(f);
				line[strcspn(line, "\n")] = '\0';
				return strdup(line);
			}
		}
		if (f != NULL)
			fclose(f);
		usleep(100000);
	}
	return NULL;
}

/* The line is JSON: UTF-8 text that parses; returns the object. */
static cJSON *json_line(const char *what, const char *line)
{
	ck_assert_msg(line != NULL, "no %s line", what);
	ck_assert_msg(utf8_valid(line, strlen(line)), "%s line is not UTF-8: %s", what, line);
	cJSON *j = cJSON_Parse(line);
	ck_assert_msg(cJSON_IsObject(j), "%s line is not JSON: %s", what, line);
	return j;
}

START_TEST(access_logs_stay_json)
{
	char ua_id[64], uri_id[64], ua_line[128], uri_line[128];
	snprintf(ua_id, sizeof ua_id, "log-ua-%d", (int)getpid());
	snprintf(uri_id, sizeof uri_id, "log-uri-%d", (int)getpid());
	snprintf(ua_line, sizeof ua_line, "X-Request-ID: %s", ua_id);
	snprintf(uri_line, sizeof uri_line, "X-Request-ID: %s", uri_id);
	const char *ua[] = { ua_line, "User-Agent: caf\xc3\xa9 \"quoted\" \xff\xfe rest", NULL };
	const char *plain[] = { uri_line, NULL };
	struct http_resp r;
	request_with("GET", "/api/health", ua, NULL, &r);
	expect_error(&r, 400, "bad_request", NULL);
	http_resp_free(&r);
	request_with("GET", "/api/health?note=\xc3\xa9\xff\"x", plain, NULL, &r);
	expect_error(&r, 422, "validation_failed", "note");
	http_resp_free(&r);

	char nginx_log[4096];
	snprintf(nginx_log, sizeof nginx_log, "%s/nginx/access.log", test_env("TEST_STACK_DIR"));
	char *line = log_line_of(nginx_log, ua_id);
	cJSON *j = json_line("nginx access", line);
	/* Up to the first byte that is not UTF-8, then U+FFFD. */
	ck_assert_str_eq(cJSON_GetObjectItem(j, "user_agent")->valuestring,
	    "caf\xc3\xa9 \"quoted\" \xef\xbf\xbd");
	cJSON_Delete(j);
	free(line);
	line = log_line_of(nginx_log, uri_id);
	j = json_line("nginx access", line);
	ck_assert_str_eq(cJSON_GetObjectItem(j, "uri")->valuestring,
	    "/api/health?note=\xc3\xa9\xef\xbf\xbd");
	cJSON_Delete(j);
	free(line);

	/* gala's own lines for them are JSON too. */
	line = log_line_of(test_env("TEST_GALA_LOG"), uri_id);
	j = json_line("gala", line);
	ck_assert_int_eq(cJSON_GetObjectItem(j, "status_code")->valueint, 422);
	cJSON_Delete(j);
	free(line);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-robustness");
	TCase *tc = tcase_create("bad-input");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, every_route_survives_bad_input);
	suite_add_tcase(s, tc);
	TCase *input = tcase_create("input");
	tcase_set_timeout(input, 120);
	tcase_add_test(input, input_that_is_not_text_is_refused);
	tcase_add_test(input, json_bodies_past_their_caps_are_413);
	tcase_add_test(input, access_logs_stay_json);
	tcase_add_test(input, anonymous_writes_meet_429);
	suite_add_tcase(s, input);
	return test_run_suite(s);
}
