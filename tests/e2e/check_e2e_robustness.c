/* Robustness through nginx: every route of docs/openapi.json, called with
 * malformed bodies, odd query strings, bad ids and with or without a token,
 * answers a JSON body and never a server error. A client's mistake is a 4xx. */
#include "autoconf.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

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

/* json: whether the answer must be JSON; the documentation nginx serves
 * itself ("x-gala-served-by": "nginx") is an HTML page to a GET. */
static void check_answer(const char *method, const char *path, const char *what, bool json,
    const struct http_resp *r)
{
	int json_ok = !json || r->body_len == 0 || r->json != NULL;
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
						check_answer(method, full, body ? body : "query", json, &r);
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

int main(void)
{
	Suite *s = suite_create("e2e-robustness");
	TCase *tc = tcase_create("bad-input");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, every_route_survives_bad_input);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
