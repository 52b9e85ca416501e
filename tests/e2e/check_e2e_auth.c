/* End-to-end tests of every Auth route of API.md through nginx, with real
 * mail delivered over SMTP to the stack's sink. */
#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "services/accounts.h"
#include "testlib.h"

#define PW "Gala-test-pass-42"
#define PW2 "Another-good-pass-77"

static int seq;

static char *unique_email(const char *tag)
{
	char *e = malloc(128);
	snprintf(e, 128, "%s-%d-%d@example.com", tag, (int)getpid(), ++seq);
	return e;
}

static cJSON *jpath(const cJSON *j, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItem(j, a);
	return b ? cJSON_GetObjectItem(x, b) : (cJSON *)x;
}

static void expect_error(const struct http_resp *r, long status, const char *code, const char *param)
{
	ck_assert_msg(r->status == status, "status %ld (want %ld): %s", r->status, status, r->body);
	ck_assert_str_eq(http_error_code(r), code);
	if (param != NULL) {
		cJSON *p = jpath(r->json, "error", "param");
		ck_assert_msg(cJSON_IsString(p) && strcmp(p->valuestring, param) == 0,
		    "param (want %s): %s", param, r->body);
	}
}

static int mail_count(void)
{
	return test_mail_count();
}

/* The newest mail to email, once the mailer has sent what was queued. */
static char *last_mail(const char *email)
{
	char *m = test_mail_last(email);
	ck_assert_msg(m != NULL, "no mail for %s", email);
	return m;
}

/* The line of the mail that is exactly a 6-digit code. */
static char *mail_code(const char *mail)
{
	char *copy = strdup(mail), *save = NULL;
	for (char *line = strtok_r(copy, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		if (strlen(line) == 6 && strspn(line, "0123456789") == 6) {
			char *code = strdup(line);
			free(copy);
			return code;
		}
	}
	free(copy);
	ck_abort_msg("no code in mail: %s", mail);
	return NULL;
}

struct user {
	char *email;
	char *id;
	char *token;
	char *csrf;
};

static void user_free(struct user *u)
{
	free(u->email);
	free(u->id);
	free(u->token);
	free(u->csrf);
}

static struct user register_user(const char *tag, const char *role)
{
	struct user u = { .email = unique_email(tag) };
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\",\"full_name\":\"Test %s\"%s%s%s}",
	    u.email, PW, tag, role ? ",\"role\":\"" : "", role ? role : "", role ? "\"" : "");
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/register", NULL, body, &r), 0);
	ck_assert_msg(r.status == 201, "register: %ld %s", r.status, r.body);
	u.id = strdup(jpath(r.json, "user", "id")->valuestring);
	u.token = strdup(jpath(r.json, "access_token", NULL)->valuestring);
	u.csrf = strdup(jpath(r.json, "csrf_token", NULL)->valuestring);
	http_resp_free(&r);
	return u;
}

static long login(const char *email, const char *password, char **token)
{
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/login", NULL, body, &r), 0);
	long st = r.status;
	if (token != NULL)
		*token = st == 200 ? strdup(jpath(r.json, "access_token", NULL)->valuestring) : NULL;
	http_resp_free(&r);
	return st;
}

static long me_status(const char *token)
{
	struct http_resp r;
	ck_assert_int_eq(http_json("GET", "/api/auth/me", token, NULL, &r), 0);
	long st = r.status;
	http_resp_free(&r);
	return st;
}

static long verify(const char *email, const char *otp, struct http_resp *out)
{
	char body[256];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"otp\":\"%s\"}", email, otp);
	ck_assert_int_eq(http_json("POST", "/api/auth/verify-email", NULL, body, out), 0);
	return out->status;
}

static int audit_rows(const char *action, const char *status, const char *target)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { action, status, target };
	char *n = test_db_value(c, "SELECT count(*) FROM audit_logs WHERE action = $1 AND status = $2 "
	    "AND target_user_id IS NOT DISTINCT FROM $3::uuid", 3, p);
	PQfinish(c);
	int x = n ? atoi(n) : -1;
	free(n);
	return x;
}

static void db_exec_su(const char *sql, const char *param)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { param };
	PGresult *r = PQexecParams(c, sql, param ? 1 : 0, NULL, p, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

static long login_as_agent(const char *email, const char *password, const char *agent)
{
	char body[512], ua[128];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
	snprintf(ua, sizeof ua, "User-Agent: %s", agent);
	const char *h[] = { "Content-Type: application/json", ua, NULL };
	struct http_resp r;
	ck_assert_int_eq(http_do("POST", "/api/auth/login", h, body, &r), 0);
	long st = r.status;
	http_resp_free(&r);
	return st;
}

/* A User-Agent that is not UTF-8 is refused before anything reads it
 * (issue 14: no header that is not text reaches SQL or a log): no login,
 * no audit row. A UTF-8 one is audited as sent. */
START_TEST(user_agent_that_is_not_utf8)
{
	struct user u = register_user("agent", NULL);
	ck_assert_int_eq(login_as_agent(u.email, PW, "bot/1.0 \xff\xfe\xc3("), 400);
	ck_assert_int_eq(login_as_agent(u.email, "wrong-password-9", "bot/1.0 \xff\xfe"), 400);
	ck_assert_int_eq(audit_rows("auth.login", "success", u.id), 0);
	ck_assert_int_eq(audit_rows("auth.login", "failure", u.id), 0);
	ck_assert_int_eq(login_as_agent(u.email, "wrong-password-9", "bot/1.0 (caf\xc3\xa9)"), 401);
	ck_assert_int_eq(audit_rows("auth.login", "failure", u.id), 1);
	PGconn *c = test_db_superuser();
	const char *p[] = { u.id };
	char *ua = test_db_value(c, "SELECT user_agent FROM audit_logs WHERE target_user_id = $1 "
	    "AND action = 'auth.login' AND status = 'failure'", 1, p);
	PQfinish(c);
	ck_assert_str_eq(ua, "bot/1.0 (caf\xc3\xa9)");
	free(ua);
	ck_assert_int_eq(login_as_agent(u.email, PW, "bot/1.0"), 200);
	user_free(&u);
}
END_TEST

/* A code is six ASCII digits before anything reads it. 32 four-byte
 * characters once made the keyed hash read past its buffer (the
 * AddressSanitizer pass of the suite saw the worker die: 502). */
START_TEST(otp_must_be_six_digits)
{
	struct user u = register_user("sixdigits", NULL);
	char otp[32 * 4 + 1] = "";
	for (int i = 0; i < 32; i++)
		strcat(otp, "\xf0\x9f\x8e\x89");
	const char *bad[] = { otp, "12345", "1234567", "12 345", "\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct http_resp r;
		verify(u.email, bad[i], &r);
		expect_error(&r, 400, "invalid_otp", NULL);
		http_resp_free(&r);
	}
	/* None of them cost a try: the right code still works. */
	char *mail = last_mail(u.email), *code = mail_code(mail);
	struct http_resp r;
	ck_assert_int_eq(verify(u.email, code, &r), 200);
	http_resp_free(&r);
	free(code);
	free(mail);
	user_free(&u);
}
END_TEST

static long change_password(const char *token, const char *current, const char *next,
    struct http_resp *r)
{
	char body[512];
	snprintf(body, sizeof body, "{\"current_password\":\"%s\",\"new_password\":\"%s\"}", current,
	    next);
	ck_assert_int_eq(http_json("POST", "/api/auth/change-password", token, body, r), 0);
	return r->status;
}

START_TEST(change_password_ends_the_other_sessions)
{
	struct user u = register_user("change", NULL);
	char *other = NULL;
	ck_assert_int_eq(login(u.email, PW, &other), 200);
	int mails = mail_count();
	struct http_resp r;
	/* A wrong current password changes nothing and is audited. */
	change_password(u.token, "not-the-password-1", PW2, &r);
	expect_error(&r, 422, "invalid_current_password", "current_password");
	char *policy = http_header(&r, "RateLimit-Policy");
	ck_assert_msg(policy != NULL && strstr(policy, "\"auth-user\"") != NULL &&
	    strstr(policy, "\"auth\"") != NULL, "RateLimit-Policy: %s", policy ? policy : "(none)");
	free(policy);
	http_resp_free(&r);
	ck_assert_int_eq(audit_rows("auth.change_password", "failure", u.id), 1);
	ck_assert_int_eq(me_status(u.token), 200);
	/* The new one follows the register rules. */
	change_password(u.token, PW, "short", &r);
	expect_error(&r, 422, "validation_failed", "new_password");
	http_resp_free(&r);
	change_password(u.token, PW, PW2, &r);
	ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
	char *fresh = strdup(jpath(r.json, "access_token", NULL)->valuestring);
	ck_assert_str_eq(jpath(r.json, "user", "id")->valuestring, u.id);
	char *cookie = http_header(&r, "Set-Cookie");
	ck_assert_msg(cookie != NULL && strstr(cookie, fresh) != NULL, "Set-Cookie: %s", cookie);
	free(cookie);
	http_resp_free(&r);
	/* Every session before it ends; the fresh one works. */
	ck_assert_int_eq(me_status(u.token), 401);
	ck_assert_int_eq(me_status(other), 401);
	ck_assert_int_eq(me_status(fresh), 200);
	ck_assert_int_eq(login(u.email, PW, NULL), 401);
	ck_assert_int_eq(login(u.email, PW2, NULL), 200);
	ck_assert_int_eq(audit_rows("auth.change_password", "success", u.id), 1);
	/* The owner of the address hears of it. */
	for (int i = 0; i < 50 && mail_count() == mails; i++)
		usleep(100000);
	char *mail = last_mail(u.email);
	ck_assert_msg(strstr(mail, "password of your Gala account was just changed") != NULL,
	    "mail: %s", mail);
	free(mail);
	free(fresh);
	free(other);
	user_free(&u);
}
END_TEST

START_TEST(register_verify_login_me_logout)
{
	struct user u = register_user("flow", NULL);
	struct http_resp r;
	/* The session object and the cookie. */
	char body[512];
	char *email2 = unique_email("shape");
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\",\"full_name\":\"  Ann  \",\"role\":\"provider\"}",
	    email2, PW);
	ck_assert_int_eq(http_json("POST", "/api/auth/signup", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 201);
	ck_assert_str_eq(jpath(r.json, "token_type", NULL)->valuestring, "bearer");
	ck_assert_int_eq(jpath(r.json, "expires_in", NULL)->valueint, 3600);
	ck_assert_str_eq(jpath(r.json, "user", "role")->valuestring, "provider");
	ck_assert_str_eq(jpath(r.json, "user", "full_name")->valuestring, "Ann");
	ck_assert(cJSON_IsFalse(jpath(r.json, "user", "email_verified")));
	ck_assert(cJSON_IsString(jpath(r.json, "user", "created_at")));
	ck_assert(cJSON_IsString(jpath(r.json, "csrf_token", NULL)));
	char *cookie = http_header(&r, "Set-Cookie");
	ck_assert_ptr_nonnull(cookie);
	ck_assert_msg(strncmp(cookie, "__Host-gala_session=", 20) == 0, "Set-Cookie: %s", cookie);
	ck_assert_ptr_nonnull(strstr(cookie, "; Path=/;"));
	ck_assert_ptr_null(strstr(cookie, "Domain"));
	ck_assert_ptr_nonnull(strstr(cookie, "HttpOnly"));
	ck_assert_ptr_nonnull(strstr(cookie, "Secure"));
	ck_assert_ptr_nonnull(strstr(cookie, "SameSite=Lax"));
	free(cookie);
	free(email2);
	http_resp_free(&r);

	/* The OTP arrives by SMTP, on a line of its own. */
	char *mail = last_mail(u.email);
	ck_assert_ptr_nonnull(strstr(mail, "Subject: "));
	ck_assert_ptr_nonnull(strstr(mail, "Message-ID: <"));
	ck_assert_ptr_nonnull(strstr(mail, "Date: "));
	char *code = mail_code(mail);
	free(mail);
	ck_assert_int_eq(verify(u.email, code, &r), 200);
	ck_assert(cJSON_IsTrue(jpath(r.json, "verified", NULL)));
	http_resp_free(&r);
	/* Verified now, with the token issued before verification. */
	ck_assert_int_eq(http_json("GET", "/api/auth/me", u.token, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert(cJSON_IsTrue(jpath(jpath(r.json, "user", NULL), "email_verified", NULL)));
	ck_assert_str_eq(jpath(jpath(r.json, "user", NULL), "id", NULL)->valuestring, u.id);
	http_resp_free(&r);
	/* Once verified, any code answers verified. */
	ck_assert_int_eq(verify(u.email, "000000", &r), 200);
	http_resp_free(&r);
	free(code);

	/* Emails match case-insensitively. */
	char upper[128];
	snprintf(upper, sizeof upper, "%s", u.email);
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 32);
	char *t2;
	ck_assert_int_eq(login(upper, PW, &t2), 200);
	ck_assert_int_eq(me_status(t2), 200);

	ck_assert_int_eq(http_json("POST", "/api/auth/logout", t2, NULL, &r), 0);
	ck_assert_int_eq(r.status, 204);
	http_resp_free(&r);
	ck_assert_int_eq(me_status(t2), 401);
	ck_assert_int_eq(me_status(u.token), 200);   /* only that token */
	free(t2);

	ck_assert_int_ge(audit_rows("auth.register", "success", u.id), 1);
	ck_assert_int_ge(audit_rows("auth.verify_email", "success", u.id), 1);
	ck_assert_int_ge(audit_rows("auth.login", "success", u.id), 1);
	ck_assert_int_ge(audit_rows("auth.logout", "success", u.id), 1);
	user_free(&u);
}
END_TEST

START_TEST(register_validation)
{
	struct http_resp r;
	static const struct { const char *body; const char *param; } bad[] = {
		{ "{\"email\":\"nope\",\"password\":\"" PW "\",\"full_name\":\"A\"}", "email" },
		{ "{\"email\":\"a@example.com\",\"password\":\"short\",\"full_name\":\"A\"}", "password" },
		{ "{\"email\":\"a@example.com\",\"password\":\"password1\",\"full_name\":\"A\"}", "password" },
		{ "{\"email\":\"a@example.com\",\"password\":\"" PW "\",\"full_name\":\"\"}", "full_name" },
		{ "{\"email\":\"a@example.com\",\"password\":\"" PW "\"}", "full_name" },
		{ "{\"email\":\"a@example.com\",\"password\":\"" PW "\",\"full_name\":\"A\",\"role\":\"admin\"}", "role" },
		{ "{\"email\":\"a@example.com\",\"password\":\"" PW "\",\"full_name\":\"A\",\"role\":\"boss\"}", "role" },
		{ "{\"email\":\"a@example.com\",\"password\":\"" PW "\",\"full_name\":\"A\",\"email_verified\":true}", "email_verified" },
		{ "{\"email\":\"a@example.com\",\"password\":12345678,\"full_name\":\"A\"}", "password" },
		/* Among the commonest passwords, whatever the case. */
		{ "{\"email\":\"a@example.com\",\"password\":\"password123\",\"full_name\":\"A\"}", "password" },
		{ "{\"email\":\"a@example.com\",\"password\":\"P@ssw0rd\",\"full_name\":\"A\"}", "password" },
		/* An escaped NUL is a control character, not the end of the name. */
		{ "{\"email\":\"a@example.com\",\"password\":\"" PW "\",\"full_name\":\"Ann\\u0000Evil\"}", "full_name" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(http_json("POST", "/api/auth/register", NULL, bad[i].body, &r), 0);
		expect_error(&r, 422, "validation_failed", bad[i].param);
		http_resp_free(&r);
	}
	const char *text[] = { "Content-Type: text/plain", NULL };
	ck_assert_int_eq(http_do("POST", "/api/auth/register", text, "{}", &r), 0);
	expect_error(&r, 415, "unsupported_media_type", NULL);
	http_resp_free(&r);
	ck_assert_int_eq(http_json("POST", "/api/auth/register", NULL, "{\"email\": \"a@b.c\",", &r), 0);
	expect_error(&r, 400, "malformed_json", NULL);
	ck_assert_ptr_nonnull(strstr(jpath(r.json, "error", "message")->valuestring, "byte"));
	http_resp_free(&r);

	/* Duplicate email, whatever its case. */
	struct user u = register_user("dup", NULL);
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"  %c%s\",\"password\":\"%s\",\"full_name\":\"B\"}",
	    u.email[0] - 32, u.email + 1, PW2);
	ck_assert_int_eq(http_json("POST", "/api/auth/register", NULL, body, &r), 0);
	expect_error(&r, 409, "email_taken", NULL);
	http_resp_free(&r);
	ck_assert_int_ge(audit_rows("auth.register", "failure", u.id), 1);
	user_free(&u);
}
END_TEST

static double seconds_of_login(const char *email, const char *pw)
{
	struct timeval a, b;
	gettimeofday(&a, NULL);
	ck_assert_int_eq(login(email, pw, NULL), 401);
	gettimeofday(&b, NULL);
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_usec - a.tv_usec) / 1e6;
}

START_TEST(login_failures_look_alike)
{
	struct user u = register_user("login", NULL);
	struct http_resp r;
	char body[256];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"wrong-password-1\"}", u.email);
	ck_assert_int_eq(http_json("POST", "/api/auth/login", NULL, body, &r), 0);
	expect_error(&r, 401, "invalid_credentials", NULL);
	char *wrong_msg = strdup(jpath(r.json, "error", "message")->valuestring);
	http_resp_free(&r);
	ck_assert_int_eq(http_json("POST", "/api/auth/login", NULL,
	    "{\"email\":\"nobody-here@example.com\",\"password\":\"wrong-password-1\"}", &r), 0);
	expect_error(&r, 401, "invalid_credentials", NULL);
	ck_assert_str_eq(jpath(r.json, "error", "message")->valuestring, wrong_msg);
	http_resp_free(&r);
	free(wrong_msg);

	/* Both spend a password hash: an unknown email is not answered faster. */
	double known = 0, unknown = 0;
	for (int i = 0; i < 3; i++) {
		known += seconds_of_login(u.email, "wrong-password-1");
		unknown += seconds_of_login("nobody-here@example.com", "wrong-password-1");
	}
	ck_assert_msg(unknown > known * 0.4, "unknown %.3fs vs wrong password %.3fs", unknown, known);
	ck_assert_int_ge(audit_rows("auth.login", "failure", u.id), 4);
	ck_assert_int_ge(audit_rows("auth.login", "failure", NULL), 4);
	user_free(&u);
}
END_TEST

START_TEST(otp_lockout_expiry_and_resend)
{
	struct user u = register_user("otp", NULL);
	char *mail = last_mail(u.email);
	char *code = mail_code(mail);
	free(mail);
	char wrong[16];
	snprintf(wrong, sizeof wrong, "%06d", (atoi(code) + 1) % 1000000);
	struct http_resp r;
	/* Five wrong tries are five wrong codes; the code is burned after
	 * them, so the sixth finds it locked. */
	for (int i = 1; i <= 5; i++) {
		verify(u.email, wrong, &r);
		expect_error(&r, 400, "invalid_otp", NULL);
		http_resp_free(&r);
	}
	verify(u.email, wrong, &r);
	expect_error(&r, 400, "otp_locked", NULL);
	http_resp_free(&r);
	/* Burned: even the right code no longer works. */
	verify(u.email, code, &r);
	expect_error(&r, 400, "otp_locked", NULL);
	http_resp_free(&r);
	free(code);

	/* Resend within 60 s of the last mail: same answer, no mail. */
	char body[256];
	snprintf(body, sizeof body, "{\"email\":\"%s\"}", u.email);
	int before = mail_count();
	ck_assert_int_eq(http_json("POST", "/api/auth/resend-verification", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 200);
	char *generic = strdup(jpath(r.json, "message", NULL)->valuestring);
	ck_assert_ptr_null(jpath(r.json, "already_verified", NULL));
	http_resp_free(&r);
	ck_assert_int_eq(mail_count(), before);
	/* Unknown emails get the very same answer. */
	ck_assert_int_eq(http_json("POST", "/api/auth/resend-verification", NULL,
	    "{\"email\":\"nobody-here@example.com\"}", &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(jpath(r.json, "message", NULL)->valuestring, generic);
	http_resp_free(&r);
	free(generic);

	/* A minute later: a fresh code, which works. */
	db_exec_su("UPDATE email_otps SET last_sent_at = now() - interval '61 seconds' "
	    "WHERE user_id = $1", u.id);
	ck_assert_int_eq(http_json("POST", "/api/auth/resend-verification", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 200);
	http_resp_free(&r);
	ck_assert_int_eq(mail_count(), before + 1);
	mail = last_mail(u.email);
	code = mail_code(mail);
	free(mail);

	/* Expired codes are refused as such. */
	db_exec_su("UPDATE email_otps SET expires_at = now() - interval '1 second' WHERE user_id = $1", u.id);
	verify(u.email, code, &r);
	expect_error(&r, 400, "otp_expired", NULL);
	http_resp_free(&r);
	db_exec_su("UPDATE email_otps SET expires_at = now() + interval '10 minutes' WHERE user_id = $1", u.id);
	ck_assert_int_eq(verify(u.email, code, &r), 200);
	http_resp_free(&r);
	/* A used code cannot be replayed on another account state. */
	ck_assert_int_eq(http_json("POST", "/api/auth/resend-verification", NULL, body, &r), 0);
	ck_assert(cJSON_IsTrue(jpath(r.json, "already_verified", NULL)));
	http_resp_free(&r);
	free(code);

	verify("nobody-here@example.com", "123456", &r);
	expect_error(&r, 400, "invalid_otp", NULL);
	http_resp_free(&r);
	ck_assert_int_ge(audit_rows("auth.verify_email", "failure", u.id), 5);
	ck_assert_int_ge(audit_rows("auth.resend_verification", "success", u.id), 1);
	user_free(&u);
}
END_TEST

/* Asks for a fresh code (the last one "a minute ago") and returns it. */
static char *fresh_code(const struct user *u)
{
	char body[256];
	snprintf(body, sizeof body, "{\"email\":\"%s\"}", u->email);
	db_exec_su("UPDATE email_otps SET last_sent_at = now() - interval '61 seconds' "
	    "WHERE user_id = $1", u->id);
	int before = mail_count();
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/resend-verification", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 200);
	http_resp_free(&r);
	for (int i = 0; i < 50 && mail_count() == before; i++)
		usleep(100000);
	char *mail = last_mail(u->email), *code = mail_code(mail);
	free(mail);
	return code;
}

/* Wrong codes count per account over an hour too: resends do not buy
 * five more tries each, past ten. */
START_TEST(otp_failures_count_across_resends)
{
	struct user u = register_user("otpwin", NULL);
	struct http_resp r;
	for (int round = 0; round < 2; round++) {
		char *code = fresh_code(&u), wrong[16];
		snprintf(wrong, sizeof wrong, "%06d", (atoi(code) + 1) % 1000000);
		for (int i = 0; i < OTP_MAX_ATTEMPTS; i++) {
			verify(u.email, wrong, &r);
			expect_error(&r, 400, "invalid_otp", NULL);
			http_resp_free(&r);
		}
		free(code);
	}
	/* Ten in the hour: a fresh code is locked from the start. */
	char *code = fresh_code(&u);
	verify(u.email, code, &r);
	expect_error(&r, 400, "otp_locked", NULL);
	http_resp_free(&r);
	/* Once the hour has passed, it works. */
	db_exec_su("UPDATE email_otps SET window_started_at = now() - interval '61 minutes' "
	    "WHERE user_id = $1", u.id);
	ck_assert_int_eq(verify(u.email, code, &r), 200);
	http_resp_free(&r);
	free(code);
	user_free(&u);
}
END_TEST

static char *mail_token(const char *mail)
{
	const char *link = strstr(mail, "/reset-password?token=");
	ck_assert_ptr_nonnull(link);
	link += strlen("/reset-password?token=");
	size_t n = strcspn(link, "\r\n");
	return strndup(link, n);
}

static long reset(const char *token, const char *pw, struct http_resp *r)
{
	char body[512];
	snprintf(body, sizeof body, "{\"token\":\"%s\",\"new_password\":\"%s\"}", token, pw);
	ck_assert_int_eq(http_json("POST", "/api/auth/reset-password", NULL, body, r), 0);
	return r->status;
}

START_TEST(forgot_and_reset_password)
{
	struct user u = register_user("reset", NULL);
	char *other;
	ck_assert_int_eq(login(u.email, PW, &other), 200);
	struct http_resp r;
	char body[256];
	snprintf(body, sizeof body, "{\"email\":\"%s\"}", u.email);
	ck_assert_int_eq(http_json("POST", "/api/auth/forgot-password", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 200);
	char *msg = strdup(jpath(r.json, "message", NULL)->valuestring);
	http_resp_free(&r);
	int before = mail_count();
	ck_assert_int_eq(http_json("POST", "/api/auth/forgot-password", NULL,
	    "{\"email\":\"nobody-here@example.com\"}", &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(jpath(r.json, "message", NULL)->valuestring, msg);
	http_resp_free(&r);
	ck_assert_int_eq(mail_count(), before);
	free(msg);

	char *mail = last_mail(u.email);
	ck_assert_ptr_nonnull(strstr(mail, "https://app.gala.test/reset-password?token="));
	char *token = mail_token(mail);
	ck_assert_uint_ge(strlen(token), 22);           /* >= 128 bits */
	char line[128];
	snprintf(line, sizeof line, "\n%s\r\n", token);
	ck_assert_msg(strstr(mail, line) != NULL, "token not on a line of its own");
	free(mail);

	/* A newer token voids the older one. */
	ck_assert_int_eq(http_json("POST", "/api/auth/forgot-password", NULL, body, &r), 0);
	http_resp_free(&r);
	mail = last_mail(u.email);
	char *newer = mail_token(mail);
	free(mail);
	ck_assert_str_ne(newer, token);
	reset(token, PW2, &r);
	expect_error(&r, 400, "invalid_token", NULL);
	http_resp_free(&r);

	reset(newer, "short", &r);
	expect_error(&r, 422, "validation_failed", "new_password");
	http_resp_free(&r);
	int mails = mail_count();
	ck_assert_int_eq(reset(newer, PW2, &r), 200);
	http_resp_free(&r);
	/* Every earlier session is over; the new password works, the old not. */
	ck_assert_int_eq(me_status(u.token), 401);
	ck_assert_int_eq(me_status(other), 401);
	ck_assert_int_eq(login(u.email, PW, NULL), 401);
	char *fresh;
	ck_assert_int_eq(login(u.email, PW2, &fresh), 200);
	ck_assert_int_eq(me_status(fresh), 200);
	/* Used once, never again. */
	reset(newer, "Third-good-pass-99", &r);
	expect_error(&r, 400, "invalid_token", NULL);
	http_resp_free(&r);
	/* The user is told that the password changed. */
	ck_assert_int_ge(mail_count(), mails + 1);
	mail = last_mail(u.email);
	ck_assert_ptr_nonnull(strstr(mail, "password was changed"));
	free(mail);

	/* Expired tokens are refused. */
	ck_assert_int_eq(http_json("POST", "/api/auth/forgot-password", NULL, body, &r), 0);
	http_resp_free(&r);
	mail = last_mail(u.email);
	char *late = mail_token(mail);
	free(mail);
	db_exec_su("UPDATE password_reset_tokens SET expires_at = now() - interval '1 second' "
	    "WHERE user_id = $1", u.id);
	reset(late, "Third-good-pass-99", &r);
	expect_error(&r, 400, "invalid_token", NULL);
	http_resp_free(&r);

	ck_assert_int_ge(audit_rows("auth.forgot_password", "success", u.id), 3);
	ck_assert_int_ge(audit_rows("auth.forgot_password", "failure", NULL), 1);
	ck_assert_int_ge(audit_rows("auth.reset_password", "success", u.id), 1);
	ck_assert_int_ge(audit_rows("auth.reset_password", "failure", NULL), 2);
	free(token);
	free(newer);
	free(late);
	free(other);
	free(fresh);
	user_free(&u);
}
END_TEST

START_TEST(logout_all_and_bad_tokens)
{
	struct user u = register_user("tokens", NULL);
	char *second;
	ck_assert_int_eq(login(u.email, PW, &second), 200);
	struct http_resp r;

	/* alg "none" with the same claims, and a tampered payload. */
	const char *dot1 = strchr(u.token, '.');
	const char *dot2 = strchr(dot1 + 1, '.');
	char none[2048];
	snprintf(none, sizeof none, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0%.*s.",
	    (int)(dot2 - dot1), dot1);
	ck_assert_int_eq(me_status(none), 401);
	char tampered[2048];
	snprintf(tampered, sizeof tampered, "%s", u.token);
	tampered[dot1 - u.token + 5] ^= 1;
	ck_assert_int_eq(me_status(tampered), 401);
	ck_assert_int_eq(me_status("not-a-jwt"), 401);
	ck_assert_int_eq(http_json("GET", "/api/auth/me", NULL, NULL, &r), 0);
	expect_error(&r, 401, "authentication_required", NULL);
	/* Every 401 names its scheme (RFC 9110), and why a token failed (RFC 6750). */
	char *challenge = http_header(&r, "WWW-Authenticate");
	ck_assert_msg(challenge != NULL && strcmp(challenge, "Bearer realm=\"gala\"") == 0,
	    "WWW-Authenticate: %s", challenge ? challenge : "(none)");
	free(challenge);
	http_resp_free(&r);
	const char *basic[] = { "Authorization: Basic dXNlcjpwYXNz", NULL };
	ck_assert_int_eq(http_do("GET", "/api/auth/me", basic, NULL, &r), 0);
	expect_error(&r, 401, "invalid_token", NULL);
	challenge = http_header(&r, "WWW-Authenticate");
	ck_assert_msg(challenge != NULL && strstr(challenge, "Bearer ") == challenge &&
	    strstr(challenge, "error=\"invalid_token\"") != NULL,
	    "WWW-Authenticate: %s", challenge ? challenge : "(none)");
	free(challenge);
	http_resp_free(&r);

	/* The cookie works instead of the header. */
	char cookie[2048];
	snprintf(cookie, sizeof cookie, "Cookie: other=1; __Host-gala_session=%s", u.token);
	const char *ch[] = { cookie, NULL };
	ck_assert_int_eq(http_do("GET", "/api/auth/me", ch, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	http_resp_free(&r);

	ck_assert_int_eq(http_json("POST", "/api/auth/logout-all", second, NULL, &r), 0);
	ck_assert_int_eq(r.status, 204);
	http_resp_free(&r);
	ck_assert_int_eq(me_status(u.token), 401);
	ck_assert_int_eq(me_status(second), 401);
	char *third;
	ck_assert_int_eq(login(u.email, PW, &third), 200);
	ck_assert_int_eq(me_status(third), 200);
	ck_assert_int_ge(audit_rows("auth.logout_all", "success", u.id), 1);
	free(second);
	free(third);
	user_free(&u);
}
END_TEST

static long post_with(const char *token, const char *origin, const char *csrf)
{
	char auth[2048], o[256], c[256];
	const char *h[4] = { 0 };
	int n = 0;
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
	h[n++] = auth;
	if (origin) {
		snprintf(o, sizeof o, "Origin: %s", origin);
		h[n++] = o;
	}
	if (csrf) {
		snprintf(c, sizeof c, "X-CSRF-Token: %s", csrf);
		h[n++] = c;
	}
	struct http_resp r;
	ck_assert_int_eq(http_do("POST", "/api/auth/logout", h, NULL, &r), 0);
	long st = r.status;
	if (st == 403)
		ck_assert_str_eq(http_error_code(&r), "csrf_failed");
	http_resp_free(&r);
	return st;
}

START_TEST(csrf_on_unsafe_browser_requests)
{
	struct user u = register_user("csrf", NULL);
	ck_assert_int_eq(post_with(u.token, "https://evil.example", u.csrf), 403);
	ck_assert_int_eq(post_with(u.token, "https://app.gala.test", NULL), 403);
	ck_assert_int_eq(post_with(u.token, "https://app.gala.test", "0000"), 403);
	ck_assert_int_eq(me_status(u.token), 200);      /* none of those logged out */
	/* A safe method with a foreign Origin is not checked. */
	char auth[2048];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", u.token);
	const char *h[] = { auth, "Origin: https://evil.example", NULL };
	struct http_resp r;
	ck_assert_int_eq(http_do("GET", "/api/auth/me", h, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	http_resp_free(&r);
	ck_assert_int_eq(post_with(u.token, "https://app.gala.test", u.csrf), 204);
	char *t;
	ck_assert_int_eq(login(u.email, PW, &t), 200);
	/* Server-to-server clients send no Origin. */
	ck_assert_int_eq(post_with(t, NULL, NULL), 204);
	free(t);
	user_free(&u);

	/* A browser's cookie session is checked the same way. */
	struct user b = register_user("csrf-cookie", NULL);
	char cookie[2048], token[256];
	snprintf(cookie, sizeof cookie, "Cookie: __Host-gala_session=%s", b.token);
	snprintf(token, sizeof token, "X-CSRF-Token: %s", b.csrf);
	const char *no_token[] = { cookie, "Origin: https://app.gala.test", NULL };
	ck_assert_int_eq(http_do("POST", "/api/auth/logout", no_token, NULL, &r), 0);
	expect_error(&r, 403, "csrf_failed", NULL);
	http_resp_free(&r);
	const char *foreign[] = { cookie, "Origin: https://evil.example", token, NULL };
	ck_assert_int_eq(http_do("POST", "/api/auth/logout", foreign, NULL, &r), 0);
	expect_error(&r, 403, "csrf_failed", NULL);
	http_resp_free(&r);
	/* Without an Origin too: a cookie rides along on any request the
	 * browser makes, and an old browser may not send Origin. */
	const char *no_origin[] = { cookie, NULL };
	ck_assert_int_eq(http_do("POST", "/api/auth/logout", no_origin, NULL, &r), 0);
	expect_error(&r, 403, "csrf_failed", NULL);
	http_resp_free(&r);
	ck_assert_int_eq(http_do("GET", "/api/auth/me", no_origin, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	http_resp_free(&r);
	/* The plain name is not the session cookie. */
	char plain[2048];
	snprintf(plain, sizeof plain, "Cookie: gala_session=%s", b.token);
	const char *plain_h[] = { plain, token, NULL };
	ck_assert_int_eq(http_do("GET", "/api/auth/me", plain_h, NULL, &r), 0);
	expect_error(&r, 401, "authentication_required", NULL);
	http_resp_free(&r);
	const char *good[] = { cookie, "Origin: https://app.gala.test", token, NULL };
	ck_assert_int_eq(http_do("POST", "/api/auth/logout", good, NULL, &r), 0);
	ck_assert_int_eq(r.status, 204);
	http_resp_free(&r);
	ck_assert_int_eq(me_status(b.token), 401);
	user_free(&b);
}
END_TEST

START_TEST(audit_rows_are_append_only)
{
	struct user u = register_user("audit", NULL);
	PGconn *app = PQconnectdb(test_env("TEST_DATABASE_URL"));
	ck_assert_int_eq(PQstatus(app), CONNECTION_OK);
	const char *p[] = { u.id };
	PGresult *r = PQexecParams(app, "UPDATE audit_logs SET status = 'failure' "
	    "WHERE target_user_id = $1", 1, NULL, p, NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	r = PQexecParams(app, "DELETE FROM audit_logs WHERE target_user_id = $1", 1, NULL, p, NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	PQfinish(app);
	/* No secret ever lands in audit metadata or the log. */
	PGconn *su = test_db_superuser();
	const char *secrets[] = { "%" PW "%", "%eyJ%" };
	char *leak = test_db_value(su, "SELECT count(*) FROM audit_logs WHERE metadata::text LIKE $1 "
	    "OR metadata::text LIKE $2 OR metadata::text ~ '\\m[0-9]{6}\\M'", 2, secrets);
	ck_assert_str_eq(leak, "0");
	free(leak);
	PQfinish(su);
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "grep -c '%s' '%s' >/dev/null", PW, test_env("TEST_GALA_LOG"));
	ck_assert_int_ne(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "grep -c '%s' '%s' >/dev/null", u.token, test_env("TEST_GALA_LOG"));
	ck_assert_int_ne(system(cmd), 0);
	user_free(&u);
}
END_TEST

/* Runs `gala user ...` with the stack's database and password on stdin. */
static int gala_cli(const char *args, const char *stdin_text)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "DATABASE_URL='%s' ENVIRONMENT=test ENV_FILE= '%s' user %s",
	    test_env("TEST_DATABASE_URL"), test_env("GALA_BIN"), args);
	FILE *p = popen(cmd, "w");
	ck_assert_ptr_nonnull(p);
	if (stdin_text)
		fputs(stdin_text, p);
	int rc = pclose(p);
	return WEXITSTATUS(rc);
}

START_TEST(cli_creates_admins_and_sets_roles)
{
	char *email = unique_email("admin");
	char args[256];
	snprintf(args, sizeof args, "create-admin %s --name 'Ops Admin'", email);
	ck_assert_int_eq(gala_cli(args, PW "\n"), 0);
	ck_assert_int_ne(gala_cli(args, PW "\n"), 0);             /* exists already */
	char *token;
	ck_assert_int_eq(login(email, PW, &token), 200);
	struct http_resp r;
	ck_assert_int_eq(http_json("GET", "/api/auth/me", token, NULL, &r), 0);
	ck_assert_str_eq(jpath(jpath(r.json, "user", NULL), "role", NULL)->valuestring, "admin");
	ck_assert(cJSON_IsTrue(jpath(jpath(r.json, "user", NULL), "email_verified", NULL)));
	char *id = strdup(jpath(jpath(r.json, "user", NULL), "id", NULL)->valuestring);
	http_resp_free(&r);
	ck_assert_int_eq(audit_rows("user.role_change", "success", id), 1);

	struct user u = register_user("promote", NULL);
	snprintf(args, sizeof args, "set-role %s provider", u.email);
	ck_assert_int_eq(gala_cli(args, NULL), 0);
	snprintf(args, sizeof args, "set-role %s king", u.email);
	ck_assert_int_ne(gala_cli(args, NULL), 0);
	ck_assert_int_ne(gala_cli("set-role nobody-here@example.com admin", NULL), 0);
	ck_assert_int_eq(http_json("GET", "/api/auth/me", u.token, NULL, &r), 0);
	ck_assert_str_eq(jpath(jpath(r.json, "user", NULL), "role", NULL)->valuestring, "provider");
	http_resp_free(&r);
	ck_assert_int_eq(audit_rows("user.role_change", "success", u.id), 1);
	/* The CLI has no signed-in user: a null actor, the user as target. */
	const char *pu[] = { u.id, id };
	PGconn *c = test_db_superuser();
	char *nulls = test_db_value(c, "SELECT count(*) FROM audit_logs WHERE action = 'user.role_change' "
	    "AND actor_user_id IS NULL AND target_user_id IN ($1::uuid, $2::uuid)", 2, pu);
	PQfinish(c);
	ck_assert_str_eq(nulls, "2");
	free(nulls);
	/* A weak admin password is refused. */
	snprintf(args, sizeof args, "create-admin weak-%s", email);
	ck_assert_int_ne(gala_cli(args, "password\n"), 0);
	free(token);
	free(id);
	free(email);
	user_free(&u);
}
END_TEST

/* POSTs body to path with our own X-Request-ID, which names the audit row
 * the request writes. */
static long post_tagged(const char *path, const char *token, const char *body, const char *rid,
    struct http_resp *r)
{
	char auth[2048], rh[128];
	const char *h[4] = { "Content-Type: application/json", rh, NULL, NULL };
	snprintf(rh, sizeof rh, "X-Request-ID: %s", rid);
	if (token != NULL) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		h[2] = auth;
	}
	ck_assert_int_eq(http_do("POST", path, h, body, r), 0);
	char *echoed = http_header(r, "X-Request-ID");
	ck_assert_msg(echoed != NULL && strcmp(echoed, rid) == 0, "X-Request-ID %s, sent %s",
	    echoed ? echoed : "(none)", rid);
	free(echoed);
	const cJSON *in_body = jpath(r->json, "error", "request_id");
	if (in_body != NULL)
		ck_assert_str_eq(in_body->valuestring, rid);
	return r->status;
}

/* The one audit row of the request rid: "action status actor target ip",
 * "-" for a null, a user id as "U" when it is user's. */
static void expect_audit(const char *rid, const char *user, const char *want)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { rid, user };
	char *got = test_db_value(c, "SELECT string_agg(action || ' ' || status || ' ' || "
	    "CASE WHEN actor_user_id IS NULL THEN '-' WHEN actor_user_id = $2::uuid THEN 'U' "
	    "ELSE actor_user_id::text END || ' ' || "
	    "CASE WHEN target_user_id IS NULL THEN '-' WHEN target_user_id = $2::uuid THEN 'U' "
	    "ELSE target_user_id::text END || ' ' || coalesce(ip, '-'), '; ') "
	    "FROM audit_logs WHERE request_id = $1", 2, p);
	PQfinish(c);
	ck_assert_msg(got != NULL && strcmp(got, want) == 0, "audit of %s: \"%s\", want \"%s\"", rid,
	    got ? got : "(no row)", want);
	free(got);
}

/* API.md, Admin: the actor is the signed-in user, or for a successful
 * login, register, verify and reset the user concerned; a failed attempt or
 * a request with no known user has a null actor and, where known, the user
 * as target. Each row carries the request's id and address. */
START_TEST(audit_actor_and_target_rules)
{
	char rid[64], body[512];
	int n = 0;
	struct http_resp r;
#define RID() (snprintf(rid, sizeof rid, "audit-%d-%d", (int)getpid(), ++n), rid)
	char *email = unique_email("actor");
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\",\"full_name\":\"Actor\"}",
	    email, PW);
	ck_assert_int_eq(post_tagged("/api/auth/register", NULL, body, RID(), &r), 201);
	char *uid = strdup(jpath(r.json, "user", "id")->valuestring);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.register success U U 127.0.0.1");
	ck_assert_int_eq(post_tagged("/api/auth/register", NULL, body, RID(), &r), 409);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.register failure - U 127.0.0.1");

	char *mail = last_mail(email);
	char *code = mail_code(mail);
	free(mail);
	char wrong[16];
	snprintf(wrong, sizeof wrong, "%06d", (atoi(code) + 1) % 1000000);
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"otp\":\"%s\"}", email, wrong);
	ck_assert_int_eq(post_tagged("/api/auth/verify-email", NULL, body, RID(), &r), 400);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.verify_email failure - U 127.0.0.1");
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"otp\":\"%s\"}", email, code);
	ck_assert_int_eq(post_tagged("/api/auth/verify-email", NULL, body, RID(), &r), 200);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.verify_email success U U 127.0.0.1");
	free(code);
	snprintf(body, sizeof body, "{\"email\":\"%s\"}", email);
	ck_assert_int_eq(post_tagged("/api/auth/resend-verification", NULL, body, RID(), &r), 200);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.resend_verification failure - U 127.0.0.1");

	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"wrong-password-1\"}", email);
	ck_assert_int_eq(post_tagged("/api/auth/login", NULL, body, RID(), &r), 401);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.login failure - U 127.0.0.1");
	ck_assert_int_eq(post_tagged("/api/auth/login", NULL,
	    "{\"email\":\"nobody-here@example.com\",\"password\":\"wrong-password-1\"}", RID(), &r), 401);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.login failure - - 127.0.0.1");
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, PW);
	ck_assert_int_eq(post_tagged("/api/auth/login", NULL, body, RID(), &r), 200);
	char *token = strdup(jpath(r.json, "access_token", NULL)->valuestring);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.login success U U 127.0.0.1");

	snprintf(body, sizeof body, "{\"email\":\"%s\"}", email);
	ck_assert_int_eq(post_tagged("/api/auth/forgot-password", NULL, body, RID(), &r), 200);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.forgot_password success - U 127.0.0.1");
	ck_assert_int_eq(post_tagged("/api/auth/reset-password", NULL,
	    "{\"token\":\"no-such-token\",\"new_password\":\"" PW2 "\"}", RID(), &r), 400);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.reset_password failure - - 127.0.0.1");
	mail = last_mail(email);
	char *reset_token = mail_token(mail);
	free(mail);
	snprintf(body, sizeof body, "{\"token\":\"%s\",\"new_password\":\"%s\"}", reset_token, PW2);
	ck_assert_int_eq(post_tagged("/api/auth/reset-password", NULL, body, RID(), &r), 200);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.reset_password success U U 127.0.0.1");
	free(reset_token);
	free(token);

	ck_assert_int_eq(login(email, PW2, &token), 200);
	ck_assert_int_eq(post_tagged("/api/auth/logout", token, NULL, RID(), &r), 204);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.logout success U U 127.0.0.1");
	free(token);
	ck_assert_int_eq(login(email, PW2, &token), 200);
	ck_assert_int_eq(post_tagged("/api/auth/logout-all", token, NULL, RID(), &r), 204);
	http_resp_free(&r);
	expect_audit(rid, uid, "auth.logout_all success U U 127.0.0.1");
#undef RID
	free(token);
	free(uid);
	free(email);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-auth");
	TCase *tc = tcase_create("auth");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, register_verify_login_me_logout);
	tcase_add_test(tc, user_agent_that_is_not_utf8);
	tcase_add_test(tc, otp_must_be_six_digits);
	tcase_add_test(tc, change_password_ends_the_other_sessions);
	tcase_add_test(tc, register_validation);
	tcase_add_test(tc, login_failures_look_alike);
	tcase_add_test(tc, otp_lockout_expiry_and_resend);
	tcase_add_test(tc, otp_failures_count_across_resends);
	tcase_add_test(tc, forgot_and_reset_password);
	tcase_add_test(tc, logout_all_and_bad_tokens);
	tcase_add_test(tc, csrf_on_unsafe_browser_requests);
	tcase_add_test(tc, audit_rows_are_append_only);
	tcase_add_test(tc, cli_creates_admins_and_sets_roles);
	tcase_add_test(tc, audit_actor_and_target_rules);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
