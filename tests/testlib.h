/* Helpers shared by the integration and end-to-end tests: HTTP through the
 * real nginx with libcurl, the stack controller (tests/stack/ctl), and
 * database access for assertions. */
#ifndef GALA_TESTLIB_H
#define GALA_TESTLIB_H

#include <stddef.h>

#include <check.h>
#include <cjson/cJSON.h>
#include <libpq-fe.h>

struct http_resp {
	long status;
	char *body;
	size_t body_len;
	char *headers;          /* the raw header block of the final response */
	cJSON *json;            /* parsed body, or NULL */
};

/* Set to talk HTTP/1.1 instead of letting TLS negotiate HTTP/2. */
extern int http_force_http1;

/* Runs a suite with libcurl initialised around it; returns the exit status
 * of the test program. */
int test_run_suite(Suite *s);

/* The value of a required environment variable (aborts the test if unset). */
const char *test_env(const char *name);

/* Sends a request to TEST_BASE_URL + path (or to an absolute URL). headers is
 * a NULL-terminated list of "Name: value" lines; body may be NULL. Returns 0
 * when a response arrived (any status). */
int http_do(const char *method, const char *path, const char *const *headers,
    const char *body, struct http_resp *out);
int http_do_len(const char *method, const char *path, const char *const *headers,
    const char *body, size_t body_len, struct http_resp *out);

/* Shorthands: JSON body with Content-Type, optional bearer token. */
int http_json(const char *method, const char *path, const char *token,
    const char *body, struct http_resp *out);

/* The value of a response header (case-insensitive), malloc'd, or NULL. */
char *http_header(const struct http_resp *r, const char *name);
void http_resp_free(struct http_resp *r);

/* error.code of an error envelope, or "" */
const char *http_error_code(const struct http_resp *r);

/* Runs "$TEST_STACK_CTL ARGS" and returns its exit status; _output returns
 * its trimmed stdout (malloc'd). */
int stack_ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *stack_ctl_output(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A connection as the superuser to the stack's database, for assertions. */
PGconn *test_db_superuser(void);
/* Runs a query expected to return one value; returns it malloc'd (NULL for
 * SQL NULL or on error). */
char *test_db_value(PGconn *c, const char *sql, int nparams, const char *const *params);

/* Mail goes out through the outbox (gala mailer), not inside the request.
 * test_mail_settle() waits, polling, until the mailer has finished every
 * mail queued so far (sent or abandoned): the SMTP sink then holds all there
 * is. It fails the test when that takes more than TEST_MAIL_SETTLE_SECONDS. */
#define TEST_MAIL_SETTLE_SECONDS 30
void test_mail_settle(void);
/* The number of mails in the SMTP sink, once settled. */
int test_mail_count(void);
/* The newest mail to rcpt (or to anyone, for NULL) once settled, malloc'd;
 * NULL when there is none. */
char *test_mail_last(const char *rcpt);

#endif
