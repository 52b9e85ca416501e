/* End-to-end tests of TOTP two-factor authentication (API.md, Two-factor
 * authentication) through nginx: setup and confirmation, the login's
 * second step, replay, lockout and recovery codes, turning it off, and
 * ADMIN_MFA_REQUIRED. Codes are computed here from the secret the setup
 * answers, as an authenticator app would. */
#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/totp.h"
#include "testlib.h"

#define PW "Gala-test-pass-42"

static int seq;

static char *unique_email(const char *tag)
{
	char *e = malloc(128);
	snprintf(e, 128, "%s-%d-%d@example.com", tag, (int)getpid(), ++seq);
	return e;
}

static const cJSON *jget(const cJSON *j, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(j, name);
}

static const char *jstr(const cJSON *j, const char *name)
{
	const cJSON *v = jget(j, name);
	ck_assert_msg(cJSON_IsString(v), "no string %s", name);
	return v->valuestring;
}

static void expect_error(const struct http_resp *r, long status, const char *code, const char *param)
{
	ck_assert_msg(r->status == status, "status %ld (want %ld): %s", r->status, status, r->body);
	ck_assert_str_eq(http_error_code(r), code);
	const cJSON *p = jget(jget(r->json, "error"), "param");
	if (param != NULL)
		ck_assert_msg(cJSON_IsString(p) && strcmp(p->valuestring, param) == 0,
		    "param (want %s): %s", param, r->body);
}

/* The authenticator app: the code of the secret at step now + delta. */
static void code_at(const char *secret_b32, int delta, char out[7])
{
	unsigned char key[64];
	long n = base32_decode(secret_b32, key, sizeof key);
	ck_assert_int_eq(n, TOTP_SECRET_BYTES);
	long v = totp_code(key, (size_t)n, totp_step((long long)time(NULL)) + delta);
	ck_assert_int_ge(v, 0);
	snprintf(out, 7, "%06d", (int)(v % 1000000));
}

struct account {
	char *email;
	char *token;            /* the session of registration */
	char secret[64];
	char recovery[10][16];
};

static void account_free(struct account *a)
{
	free(a->email);
	free(a->token);
}

static struct account register_account(const char *tag)
{
	struct account a = { .email = unique_email(tag) };
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\",\"full_name\":\"MFA %s\"}",
	    a.email, PW, tag);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/register", NULL, body, &r), 0);
	ck_assert_msg(r.status == 201, "register: %ld %s", r.status, r.body);
	a.token = strdup(jstr(r.json, "access_token"));
	http_resp_free(&r);
	return a;
}

/* POST /mfa/totp: keeps the secret and recovery codes it answers. */
static void setup_totp(struct account *a, const char *token)
{
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/mfa/totp", token, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "setup: %ld %s", r.status, r.body);
	snprintf(a->secret, sizeof a->secret, "%s", jstr(r.json, "secret"));
	ck_assert_int_eq(strlen(a->secret), 32);
	const cJSON *codes = jget(r.json, "recovery_codes");
	ck_assert_int_eq(cJSON_GetArraySize(codes), 10);
	for (int i = 0; i < 10; i++) {
		const cJSON *c = cJSON_GetArrayItem(codes, i);
		ck_assert(cJSON_IsString(c));
		snprintf(a->recovery[i], sizeof a->recovery[i], "%s", c->valuestring);
	}
	http_resp_free(&r);
}

static long post_code(const char *path, const char *token, const char *code, struct http_resp *r)
{
	char body[128];
	snprintf(body, sizeof body, "{\"code\":\"%s\"}", code);
	ck_assert_int_eq(http_json("POST", path, token, body, r), 0);
	return r->status;
}

/* Setup and confirmation with the code of the current step: MFA is on
 * and that step is spent. */
static void enable_totp(struct account *a)
{
	setup_totp(a, a->token);
	char code[7];
	code_at(a->secret, 0, code);
	struct http_resp r;
	ck_assert_int_eq(post_code("/api/auth/mfa/totp/confirm", a->token, code, &r), 200);
	ck_assert(cJSON_IsTrue(jget(r.json, "mfa_enabled")));
	http_resp_free(&r);
}

/* POST /login; for an account with MFA returns the mfa_token (malloc'd). */
static char *login_challenge(const char *email)
{
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, PW);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/login", NULL, body, &r), 0);
	ck_assert_msg(r.status == 200, "login: %ld %s", r.status, r.body);
	ck_assert_msg(cJSON_IsTrue(jget(r.json, "mfa_required")), "no mfa_required: %s", r.body);
	ck_assert_int_eq((int)jget(r.json, "expires_in")->valuedouble, 300);
	/* No session: neither a token nor a cookie. */
	ck_assert_ptr_null(jget(r.json, "access_token"));
	ck_assert_ptr_null(jget(r.json, "user"));
	char *cookie = http_header(&r, "Set-Cookie");
	ck_assert_ptr_null(cookie);
	char *t = strdup(jstr(r.json, "mfa_token"));
	http_resp_free(&r);
	return t;
}

static long verify(const char *mfa_token, const char *code, struct http_resp *r)
{
	char body[512];
	snprintf(body, sizeof body, "{\"mfa_token\":\"%s\",\"code\":\"%s\"}", mfa_token, code);
	ck_assert_int_eq(http_json("POST", "/api/auth/mfa/verify", NULL, body, r), 0);
	return r->status;
}

/* The access token of a successful verify, whose amr must name otp
 * (malloc'd). */
static char *verified_session(const char *mfa_token, const char *code)
{
	struct http_resp r;
	ck_assert_msg(verify(mfa_token, code, &r) == 200, "verify: %ld %s", r.status, r.body);
	char *cookie = http_header(&r, "Set-Cookie");
	ck_assert_ptr_nonnull(cookie);
	ck_assert_ptr_nonnull(strstr(cookie, "gala_session="));
	free(cookie);
	ck_assert_str_eq(jstr(r.json, "token_type"), "bearer");
	ck_assert(cJSON_IsTrue(jget(jget(r.json, "user"), "mfa_enabled")));
	char *token = strdup(jstr(r.json, "access_token"));
	http_resp_free(&r);
	/* The payload's amr, decoded as any client would. */
	const char *d1 = strchr(token, '.'), *d2 = strchr(d1 + 1, '.');
	unsigned char payload[1024];
	size_t n;
	ck_assert_int_eq(sodium_base642bin(payload, sizeof payload - 1, d1 + 1, (size_t)(d2 - d1 - 1),
	    NULL, &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
	payload[n] = '\0';
	ck_assert_msg(strstr((char *)payload, "\"amr\":[\"pwd\",\"otp\"]") != NULL,
	    "amr: %s", payload);
	return token;
}

static long me(const char *token, bool *mfa_enabled)
{
	struct http_resp r;
	ck_assert_int_eq(http_json("GET", "/api/auth/me", token, NULL, &r), 0);
	long st = r.status;
	if (st == 200 && mfa_enabled != NULL) {
		const cJSON *v = jget(jget(r.json, "user"), "mfa_enabled");
		ck_assert(cJSON_IsBool(v));
		*mfa_enabled = cJSON_IsTrue(v);
	}
	http_resp_free(&r);
	return st;
}

static int audit_count(const char *action, const char *status, const char *email)
{
	PGconn *db = test_db_superuser();
	const char *p[] = { action, status, email };
	char *v = test_db_value(db, "SELECT count(*) FROM audit_logs a JOIN users u "
	    "ON u.id = a.target_user_id WHERE a.action = $1 AND a.status = $2 AND u.email = $3",
	    3, p);
	int n = v ? atoi(v) : -1;
	free(v);
	PQfinish(db);
	return n;
}

START_TEST(setup_confirm_login_verify)
{
	struct account a = register_account("flow");
	bool on = true;
	ck_assert_int_eq(me(a.token, &on), 200);
	ck_assert(!on);

	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/mfa/totp", a.token, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	char *uri = NULL;
	ck_assert_int_ne(asprintf(&uri, "otpauth://totp/Gala:%s?secret=%s&issuer=Gala", a.email,
	    jstr(r.json, "secret")), -1);
	ck_assert_str_eq(jstr(r.json, "otpauth_uri"), uri);
	free(uri);
	char first_secret[64];
	snprintf(first_secret, sizeof first_secret, "%s", jstr(r.json, "secret"));
	http_resp_free(&r);

	/* Nothing changes until confirmed: the password alone still signs in. */
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", a.email, PW);
	ck_assert_int_eq(http_json("POST", "/api/auth/login", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(jget(r.json, "access_token"));
	http_resp_free(&r);

	/* A second setup replaces the first: the first secret's code is wrong.
	 * The same Idempotency-Key is no replay on this route. */
	const char *idem[] = { "Content-Type: application/json", NULL, "Idempotency-Key: mfa-setup-1",
		NULL };
	char *auth = NULL;
	ck_assert_int_ne(asprintf(&auth, "Authorization: Bearer %s", a.token), -1);
	idem[1] = auth;
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(http_do("POST", "/api/auth/mfa/totp", idem, "{}", &r), 0);
		ck_assert_int_eq(r.status, 200);
		char *replayed = http_header(&r, "Idempotent-Replayed");
		ck_assert_ptr_null(replayed);
		ck_assert_str_ne(jstr(r.json, "secret"), first_secret);
		ck_assert_str_ne(jstr(r.json, "secret"), a.secret);
		snprintf(a.secret, sizeof a.secret, "%s", jstr(r.json, "secret"));
		http_resp_free(&r);
	}
	free(auth);
	char code[7];
	code_at(first_secret, 0, code);
	ck_assert_int_eq(post_code("/api/auth/mfa/totp/confirm", a.token, code, &r), 422);
	expect_error(&r, 422, "invalid_mfa_code", "code");
	http_resp_free(&r);
	ck_assert_int_eq(post_code("/api/auth/mfa/totp/confirm", a.token, "12345", &r), 422);
	expect_error(&r, 422, "invalid_mfa_code", "code");
	http_resp_free(&r);
	ck_assert_int_eq(me(a.token, &on), 200);
	ck_assert(!on);
	ck_assert_int_eq(audit_count("auth.mfa_enable", "failure", a.email), 2);

	char confirm_code[7];
	code_at(a.secret, 0, confirm_code);
	ck_assert_int_eq(post_code("/api/auth/mfa/totp/confirm", a.token, confirm_code, &r), 200);
	ck_assert(cJSON_IsTrue(jget(r.json, "mfa_enabled")));
	http_resp_free(&r);
	ck_assert_int_eq(audit_count("auth.mfa_enable", "success", a.email), 1);
	ck_assert_int_eq(me(a.token, &on), 200);
	ck_assert(on);
	ck_assert_int_eq(http_json("POST", "/api/auth/mfa/totp", a.token, NULL, &r), 0);
	expect_error(&r, 409, "mfa_already_enabled", NULL);
	http_resp_free(&r);
	ck_assert_int_eq(post_code("/api/auth/mfa/totp/confirm", a.token, confirm_code, &r), 409);
	expect_error(&r, 409, "mfa_already_enabled", NULL);
	http_resp_free(&r);

	/* The password now only opens the second step. */
	char *mt = login_challenge(a.email);
	/* The code that confirmed was accepted once: never again. */
	ck_assert_int_eq(verify(mt, confirm_code, &r), 401);
	expect_error(&r, 401, "invalid_mfa_code", NULL);
	/* Counted per user (the token's) and per client IP. */
	char *policy = http_header(&r, "RateLimit-Policy");
	ck_assert_ptr_nonnull(policy);
	ck_assert_msg(strstr(policy, "\"auth-user\";") != NULL && strstr(policy, "\"auth\";") != NULL,
	    "RateLimit-Policy: %s", policy);
	free(policy);
	http_resp_free(&r);
	code_at(a.secret, 1, code);
	char *session = verified_session(mt, code);
	ck_assert_int_eq(me(session, &on), 200);
	ck_assert(on);
	/* The mfa_token was single use. */
	char next[7];
	code_at(a.secret, 1, next);
	ck_assert_int_eq(verify(mt, next, &r), 401);
	expect_error(&r, 401, "invalid_mfa_token", NULL);
	http_resp_free(&r);
	/* And that code, spent, is refused with a fresh token too. */
	char *mt2 = login_challenge(a.email);
	ck_assert_int_eq(verify(mt2, code, &r), 401);
	expect_error(&r, 401, "invalid_mfa_code", NULL);
	http_resp_free(&r);
	ck_assert_int_eq(verify("not-a-token", code, &r), 401);
	expect_error(&r, 401, "invalid_mfa_token", NULL);
	http_resp_free(&r);
	ck_assert_int_ge(audit_count("auth.mfa_verify", "success", a.email), 1);

	free(mt);
	free(mt2);
	free(session);
	account_free(&a);
}
END_TEST

START_TEST(wrong_codes_expiry_and_recovery_codes)
{
	struct account a = register_account("lock");
	enable_totp(&a);

	/* Five wrong codes are five 401s; then the token is dead, even for the
	 * right code. */
	char *mt = login_challenge(a.email);
	struct http_resp r;
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(verify(mt, "abcde-fghij", &r), 401);
		expect_error(&r, 401, "invalid_mfa_code", NULL);
		http_resp_free(&r);
	}
	ck_assert_int_eq(verify(mt, a.recovery[0], &r), 401);
	expect_error(&r, 401, "invalid_mfa_token", NULL);
	http_resp_free(&r);
	free(mt);
	ck_assert_int_eq(audit_count("auth.mfa_verify", "failure", a.email), 6);

	/* A recovery code works once; typed in upper case without its dash
	 * it is the same code. */
	mt = login_challenge(a.email);
	char *s1 = verified_session(mt, a.recovery[0]);
	ck_assert_int_eq(me(s1, NULL), 200);
	free(mt);
	mt = login_challenge(a.email);
	ck_assert_int_eq(verify(mt, a.recovery[0], &r), 401);
	expect_error(&r, 401, "invalid_mfa_code", NULL);
	http_resp_free(&r);
	char typed[16];
	size_t o = 0;
	for (const char *p = a.recovery[1]; *p; p++)
		if (*p != '-')
			typed[o++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
	typed[o] = '\0';
	char *s2 = verified_session(mt, typed);
	free(mt);

	/* Five minutes: an expired token is refused. */
	mt = login_challenge(a.email);
	PGconn *db = test_db_superuser();
	PGresult *res = PQexec(db, "UPDATE mfa_tokens SET expires_at = now() - interval '1 second' "
	    "WHERE used_at IS NULL");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	char code[7];
	code_at(a.secret, 1, code);
	ck_assert_int_eq(verify(mt, code, &r), 401);
	expect_error(&r, 401, "invalid_mfa_token", NULL);
	http_resp_free(&r);
	free(mt);

	/* At rest: neither the secret nor a recovery code in the clear. */
	const char *p[] = { a.email, a.secret, a.recovery[2] };
	char *v = test_db_value(db, "SELECT count(*) FROM user_mfa m JOIN users u ON u.id = m.user_id "
	    "WHERE u.email = $1 AND m.secret IS NOT NULL AND strpos(upper(m.secret), $2) = 0 "
	    "AND NOT EXISTS (SELECT 1 FROM mfa_recovery_codes c WHERE c.user_id = u.id "
	    "AND (c.code_hash = $3 OR c.code_hash = replace($3, '-', '')))", 3, p);
	ck_assert_str_eq(v, "1");
	free(v);
	PQfinish(db);
	free(s1);
	free(s2);
	account_free(&a);
}
END_TEST

START_TEST(disable_keeps_only_this_session)
{
	struct account a = register_account("off");
	struct http_resp r;
	ck_assert_int_eq(post_code("/api/auth/mfa/totp/disable", a.token, "123456", &r), 409);
	expect_error(&r, 409, "mfa_not_enabled", NULL);
	http_resp_free(&r);
	enable_totp(&a);
	char *mt = login_challenge(a.email);
	char *here = verified_session(mt, a.recovery[0]);
	free(mt);
	mt = login_challenge(a.email);
	char *other = verified_session(mt, a.recovery[1]);
	free(mt);

	ck_assert_int_eq(post_code("/api/auth/mfa/totp/disable", here, "000000-x", &r), 422);
	expect_error(&r, 422, "invalid_mfa_code", "code");
	http_resp_free(&r);
	ck_assert_int_eq(post_code("/api/auth/mfa/totp/disable", here, a.recovery[0], &r), 422);
	http_resp_free(&r);
	ck_assert_int_eq(me(other, NULL), 200);

	char code[7];
	code_at(a.secret, 1, code);
	ck_assert_int_eq(post_code("/api/auth/mfa/totp/disable", here, code, &r), 200);
	ck_assert(cJSON_IsBool(jget(r.json, "mfa_enabled")) && !cJSON_IsTrue(jget(r.json, "mfa_enabled")));
	http_resp_free(&r);
	ck_assert_int_eq(audit_count("auth.mfa_disable", "success", a.email), 1);
	ck_assert_int_eq(audit_count("auth.mfa_disable", "failure", a.email), 2);

	/* This session goes on; every other one, the registration's too, ends. */
	bool on = true;
	ck_assert_int_eq(me(here, &on), 200);
	ck_assert(!on);
	ck_assert_int_eq(me(other, NULL), 401);
	ck_assert_int_eq(me(a.token, NULL), 401);
	ck_assert_int_eq(http_json("GET", "/api/events", here, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	http_resp_free(&r);

	/* The password alone signs in again. */
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", a.email, PW);
	ck_assert_int_eq(http_json("POST", "/api/auth/login", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_null(jget(r.json, "mfa_required"));
	ck_assert_ptr_nonnull(jget(r.json, "access_token"));
	http_resp_free(&r);

	/* The kept session is an ordinary one: logout-all ends it too. */
	ck_assert_int_eq(http_json("POST", "/api/auth/logout-all", here, NULL, &r), 0);
	ck_assert_int_eq(r.status, 204);
	http_resp_free(&r);
	ck_assert_int_eq(me(here, NULL), 401);
	free(here);
	free(other);
	account_free(&a);
}
END_TEST

/* gala user create-admin, reading what it prints. */
static char *create_admin(const char *email)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "printf '%%s\\n' '%s' | DATABASE_URL='%s' ENVIRONMENT=test ENV_FILE= "
	    "'%s' user create-admin %s", PW, test_env("TEST_DATABASE_URL"), test_env("GALA_BIN"), email);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	char *out = calloc(1, 8192);
	size_t n = fread(out, 1, 8191, p);
	out[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	return out;
}

START_TEST(admin_routes_need_otp_when_required)
{
	char *email = unique_email("admin");
	char *said = create_admin(email);
	ck_assert_msg(strstr(said, "POST /api/auth/mfa/totp") != NULL &&
	    strstr(said, "/api/auth/mfa/totp/confirm") != NULL, "create-admin printed: %s", said);
	free(said);
	struct account a = { .email = email };
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, PW);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/login", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 200);
	a.token = strdup(jstr(r.json, "access_token"));
	http_resp_free(&r);

	/* Off (the default outside production): the password is enough. */
	ck_assert_int_eq(http_json("GET", "/api/admin/audit-logs", a.token, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	http_resp_free(&r);

	ck_assert_int_eq(stack_ctl("gala-start ADMIN_MFA_REQUIRED=true"), 0);
	ck_assert_int_eq(http_json("GET", "/api/admin/audit-logs", a.token, NULL, &r), 0);
	expect_error(&r, 403, "mfa_required", NULL);
	http_resp_free(&r);
	/* The refund is admin-only too, decided past the route table. */
	static const char refund[] = "/api/event-services/4a0c3f43-9b0e-4b8e-9d59-2f1c8e0d7a11/refund";
	ck_assert_int_eq(http_json("POST", refund, a.token, NULL, &r), 0);
	expect_error(&r, 403, "mfa_required", NULL);
	http_resp_free(&r);
	/* Routes open to every role do not ask for it. */
	ck_assert_int_eq(me(a.token, NULL), 200);
	enable_totp(&a);
	char *mt = login_challenge(email);
	char code[7];
	code_at(a.secret, 1, code);
	char *otp = verified_session(mt, code);
	ck_assert_int_eq(http_json("GET", "/api/admin/audit-logs?action=auth.mfa_enable", otp, NULL,
	    &r), 0);
	ck_assert_msg(r.status == 200, "audit-logs: %ld %s", r.status, r.body);
	ck_assert_int_ge((int)jget(r.json, "total")->valuedouble, 1);
	http_resp_free(&r);
	ck_assert_int_eq(http_json("POST", refund, otp, NULL, &r), 0);
	expect_error(&r, 404, "not_found", NULL);
	http_resp_free(&r);
	/* A customer is still refused for the role, not for the factor. */
	struct account c = register_account("cust");
	ck_assert_int_eq(http_json("GET", "/api/admin/audit-logs", c.token, NULL, &r), 0);
	expect_error(&r, 403, "forbidden", NULL);
	http_resp_free(&r);
	ck_assert_int_eq(stack_ctl("gala-start"), 0);

	free(mt);
	free(otp);
	account_free(&c);
	account_free(&a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-mfa");
	TCase *tc = tcase_create("mfa");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, setup_confirm_login_verify);
	tcase_add_test(tc, wrong_codes_expiry_and_recovery_codes);
	tcase_add_test(tc, disable_keeps_only_this_session);
	tcase_add_test(tc, admin_routes_need_otp_when_required);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
