#include "autoconf.h"

#include "testlib.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>

int http_force_http1;

int test_run_suite(Suite *s)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

const char *test_env(const char *name)
{
	const char *v = getenv(name);
	ck_assert_msg(v != NULL && *v != '\0', "%s is not set: run through tests/stack/run-test", name);
	return v;
}

struct grow {
	char *data;
	size_t len;
};

static size_t grow_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct grow *g = ud;
	size_t n = size * nmemb;
	char *p = realloc(g->data, g->len + n + 1);
	if (p == NULL)
		return 0;
	memcpy(p + g->len, ptr, n);
	g->len += n;
	p[g->len] = '\0';
	g->data = p;
	return n;
}

/* Keeps only the last response's headers (after 100-continue and the like). */
static size_t header_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct grow *g = ud;
	size_t n = size * nmemb;
	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
		g->len = 0;
	return grow_write(ptr, size, nmemb, ud);
}

int http_do_len(const char *method, const char *path, const char *const *headers,
    const char *body, size_t body_len, struct http_resp *out)
{
	memset(out, 0, sizeof *out);
	bool absolute = strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0;
	const char *base = absolute ? "" : test_env("TEST_BASE_URL");
	size_t ulen = strlen(base) + strlen(path) + 1;
	char *url = malloc(ulen);
	snprintf(url, ulen, "%s%s", base, path);
	CURL *c = curl_easy_init();
	if (c == NULL)
		return -1;
	struct grow b = { 0 }, h = { 0 };
	struct curl_slist *hl = NULL;
	for (const char *const *p = headers; p != NULL && *p != NULL; p++)
		hl = curl_slist_append(hl, *p);
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, grow_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_write);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	const char *ca = getenv("TEST_CA_FILE");
	if (ca != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	if (http_force_http1)
		curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	free(url);
	out->body = b.data ? b.data : strdup("");
	out->body_len = b.len;
	out->headers = h.data ? h.data : strdup("");
	out->json = cJSON_ParseWithLength(out->body, out->body_len);
	if (rc != CURLE_OK)
		fprintf(stderr, "http_do %s %s: %s\n", method, path, curl_easy_strerror(rc));
	return rc == CURLE_OK ? 0 : -1;
}

int http_do(const char *method, const char *path, const char *const *headers,
    const char *body, struct http_resp *out)
{
	return http_do_len(method, path, headers, body, body ? strlen(body) : 0, out);
}

int http_json(const char *method, const char *path, const char *token,
    const char *body, struct http_resp *out)
{
	char auth[4096];
	const char *headers[3] = { 0 };
	int n = 0;
	if (body != NULL)
		headers[n++] = "Content-Type: application/json";
	if (token != NULL) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		headers[n++] = auth;
	}
	return http_do(method, path, headers, body, out);
}

char *http_header(const struct http_resp *r, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = r->headers;
	while (p != NULL && *p != '\0') {
		const char *eol = strstr(p, "\r\n");
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		if (len > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			while (*v == ' ')
				v++;
			return strndup(v, len - (size_t)(v - p));
		}
		p = eol ? eol + 2 : NULL;
	}
	return NULL;
}

void http_resp_free(struct http_resp *r)
{
	free(r->body);
	free(r->headers);
	cJSON_Delete(r->json);
	memset(r, 0, sizeof *r);
}

const char *http_error_code(const struct http_resp *r)
{
	cJSON *e = cJSON_GetObjectItem(r->json, "error");
	cJSON *c = cJSON_GetObjectItem(e, "code");
	return cJSON_IsString(c) ? c->valuestring : "";
}

static char *ctl_command(const char *fmt, va_list ap)
{
	char args[2048];
	vsnprintf(args, sizeof args, fmt, ap);
	size_t n = strlen(test_env("TEST_STACK_CTL")) + strlen(args) + 2;
	char *cmd = malloc(n);
	snprintf(cmd, n, "%s %s", test_env("TEST_STACK_CTL"), args);
	return cmd;
}

int stack_ctl(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = ctl_command(fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	free(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

char *stack_ctl_output(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = ctl_command(fmt, ap);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	free(cmd);
	if (p == NULL)
		return NULL;
	struct grow g = { 0 };
	char chunk[1024];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
		grow_write(chunk, 1, n, &g);
	pclose(p);
	if (g.data == NULL)
		return strdup("");
	while (g.len > 0 && isspace((unsigned char)g.data[g.len - 1]))
		g.data[--g.len] = '\0';
	return g.data;
}

PGconn *test_db_superuser(void)
{
	/* The stack trusts local socket connections: same URL, superuser role. */
	const char *app = test_env("TEST_DATABASE_URL");
	const char *at = strchr(app, '@');
	ck_assert_ptr_nonnull(at);
	char url[1024];
	snprintf(url, sizeof url, "postgresql://postgres%s", at);
	PGconn *c = PQconnectdb(url);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "db: %s", PQerrorMessage(c));
	return c;
}

char *test_db_value(PGconn *c, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	char *v = NULL;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strdup(PQgetvalue(r, 0, 0));
	else if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fprintf(stderr, "test_db_value: %s", PQresultErrorMessage(r));
	PQclear(r);
	return v;
}

void test_mail_settle(void)
{
	PGconn *c = test_db_superuser();
	char *left = NULL;
	for (int i = 0; i < TEST_MAIL_SETTLE_SECONDS * 20; i++) {
		free(left);
		left = test_db_value(c, "SELECT count(*) FROM mail_outbox "
		    "WHERE state IN ('pending', 'sending')", 0, NULL);
		if (left != NULL && strcmp(left, "0") == 0)
			break;
		usleep(50000);
	}
	PQfinish(c);
	ck_assert_msg(left != NULL && strcmp(left, "0") == 0,
	    "%s mails still queued after %d s (is gala mailer running?)", left ? left : "?",
	    TEST_MAIL_SETTLE_SECONDS);
	free(left);
}

int test_mail_count(void)
{
	test_mail_settle();
	char *s = stack_ctl_output("mail-count");
	int n = s ? atoi(s) : -1;
	free(s);
	return n;
}

char *test_mail_last(const char *rcpt)
{
	test_mail_settle();
	char *m = rcpt ? stack_ctl_output("mail-last %s 2>/dev/null", rcpt) :
	    stack_ctl_output("mail-last 2>/dev/null");
	if (m != NULL && *m == '\0') {
		free(m);
		return NULL;
	}
	return m;
}
