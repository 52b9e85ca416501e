#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "api/handlers.h"
#include "api/market.h"
#include "core/config.h"
#include "core/password.h"
#include "http/auth.h"
#include "http/response.h"
#include "http/validate.h"
#include "services/accounts.h"
#include "services/mfa.h"

static void respond_failure(struct request *req, enum gala_error e)
{
	http_respond_error(req, e, NULL, NULL);
}

static void set_session_cookie(struct request *req, const char *token, long max_age)
{
	response_header(req, "Set-Cookie", arena_printf(req->arena,
	    SESSION_COOKIE "=%s; Path=/; Max-Age=%ld; HttpOnly; Secure; SameSite=Lax",
	    token, max_age));
}

static void respond_session(struct request *req, int status, struct issued_session *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "user", s->user);
	cJSON_AddStringToObject(o, "access_token", s->token);
	cJSON_AddStringToObject(o, "token_type", "bearer");
	cJSON_AddNumberToObject(o, "expires_in", (double)s->expires_in);
	cJSON_AddStringToObject(o, "csrf_token", s->csrf);
	set_session_cookie(req, s->token, s->expires_in);
	response_json(req, status, o);
}

static const char *v_new_password(struct validator *v, const char *name)
{
	const char *pw = v_string(v, name, true, 1, 4096, false);
	if (pw == NULL)
		return NULL;
	const char *why = password_policy_error(pw);
	if (why != NULL) {
		v_fail(v, name, "%s", why);
		return NULL;
	}
	return pw;
}

void api_auth_register(struct request *req)
{
	static const char *const fields[] = { "email", "password", "full_name", "role", NULL };
	static const char *const roles[] = { "customer", "provider", NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	const char *email = v_email(&v, "email");
	const char *password = v_new_password(&v, "password");
	const char *name = v_string(&v, "full_name", true, 1, 200, true);
	const char *role = v_enum(&v, "role", false, roles);
	if (v.failed)
		return;
	struct issued_session s = { 0 };
	enum gala_error e = accounts_register(&req->cx, email, password, name, role ? role : "customer", &s);
	if (e != GE_OK) {
		respond_failure(req, e);
		return;
	}
	respond_session(req, 201, &s);
}

void api_auth_login(struct request *req)
{
	static const char *const fields[] = { "email", "password", NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	const char *email = v_string(&v, "email", true, 1, 254, true);
	const char *password = v_string(&v, "password", true, 1, 4096, false);
	if (v.failed)
		return;
	struct issued_session s = { 0 };
	enum gala_error e = accounts_login(&req->cx, email, password, &s);
	if (e != GE_OK) {
		respond_failure(req, e);
		return;
	}
	if (s.mfa_required) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddBoolToObject(o, "mfa_required", 1);
		cJSON_AddStringToObject(o, "mfa_token", s.mfa_token);
		cJSON_AddNumberToObject(o, "expires_in", (double)s.expires_in);
		sodium_memzero(s.mfa_token, sizeof s.mfa_token);
		response_json(req, 200, o);
		return;
	}
	respond_session(req, 200, &s);
}

void api_auth_verify_email(struct request *req)
{
	static const char *const fields[] = { "email", "otp", NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	const char *email = v_string(&v, "email", true, 1, 254, true);
	const char *otp = v_string(&v, "otp", true, 1, 32, true);
	if (v.failed)
		return;
	enum gala_error e = accounts_verify_email(&req->cx, email, otp);
	if (e != GE_OK) {
		respond_failure(req, e);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "verified", 1);
	response_json(req, 200, o);
}

void api_auth_resend_verification(struct request *req)
{
	static const char *const fields[] = { "email", NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	const char *email = v_string(&v, "email", true, 1, 254, true);
	if (v.failed)
		return;
	bool verified;
	enum gala_error e = accounts_resend_verification(&req->cx, email, &verified);
	if (e != GE_OK) {
		respond_failure(req, e);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	if (verified) {
		cJSON_AddStringToObject(o, "message", "This email address is already verified.");
		cJSON_AddBoolToObject(o, "already_verified", 1);
	} else {
		cJSON_AddStringToObject(o, "message", "If an unverified account exists for this "
		    "email, a new verification code has been sent.");
	}
	response_json(req, 200, o);
}

void api_auth_forgot_password(struct request *req)
{
	static const char *const fields[] = { "email", NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	const char *email = v_string(&v, "email", true, 1, 254, true);
	if (v.failed)
		return;
	enum gala_error e = accounts_forgot_password(&req->cx, email);
	if (e != GE_OK) {
		respond_failure(req, e);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "message", "If an account exists for this email, "
	    "a password reset link has been sent.");
	response_json(req, 200, o);
}

void api_auth_reset_password(struct request *req)
{
	static const char *const fields[] = { "token", "new_password", NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	const char *token = v_string(&v, "token", true, 1, 512, true);
	const char *password = v_new_password(&v, "new_password");
	if (v.failed)
		return;
	enum gala_error e = accounts_reset_password(&req->cx, token, password);
	if (e != GE_OK) {
		respond_failure(req, e);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "message", "Your password has been changed. "
	    "Sign in with the new password.");
	response_json(req, 200, o);
}

void api_auth_change_password(struct request *req)
{
	static const char *const fields[] = { "current_password", "new_password", NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	const char *current = v_string(&v, "current_password", true, 1, 4096, false);
	const char *password = v_new_password(&v, "new_password");
	if (v.failed)
		return;
	struct issued_session s = { 0 };
	struct refusal why = { 0 };
	enum gala_error e = accounts_change_password(&req->cx, current, password, &s, &why);
	if (e != GE_OK) {
		market_respond_error(req, e, &why);
		return;
	}
	respond_session(req, 200, &s);
}

void api_auth_me(struct request *req)
{
	cJSON *user = session_user_json(req->cx.caller);
	if (user == NULL) {
		http_respond_error(req, GE_DB_UNAVAILABLE, NULL, NULL);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "user", user);
	response_json(req, 200, o);
}

static void clear_cookie(struct request *req)
{
	response_header(req, "Set-Cookie",
	    SESSION_COOKIE "=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax");
}

void api_auth_logout(struct request *req)
{
	enum gala_error e = accounts_logout(&req->cx);
	if (e != GE_OK) {
		respond_failure(req, e);
		return;
	}
	clear_cookie(req);
	response_empty(req, 204);
}

void api_auth_logout_all(struct request *req)
{
	enum gala_error e = accounts_logout_all(&req->cx);
	if (e != GE_OK) {
		respond_failure(req, e);
		return;
	}
	clear_cookie(req);
	response_empty(req, 204);
}

static void respond_mfa_enabled(struct request *req, bool on)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "mfa_enabled", on);
	response_json(req, 200, o);
}

/* A wrong code names the field; message NULL: the error's own. */
static void respond_code_refusal(struct request *req, enum gala_error e, const char *message)
{
	http_respond_error_extra(req, e, e == GE_INVALID_MFA_CODE ? "code" : NULL, message, NULL);
}

/* The "code" of a body: a TOTP code or a recovery code. */
static const char *v_mfa_code(struct validator *v)
{
	return v_string(v, "code", true, 1, 64, true);
}

void api_auth_mfa_totp_setup(struct request *req)
{
	static const char *const fields[] = { NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	if (v.failed)
		return;
	struct mfa_setup s;
	enum gala_error e = mfa_totp_setup(&req->cx, &s);
	if (e != GE_OK) {
		respond_failure(req, e);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "secret", s.secret);
	cJSON_AddStringToObject(o, "otpauth_uri", s.otpauth_uri);
	cJSON *codes = cJSON_AddArrayToObject(o, "recovery_codes");
	for (int i = 0; i < MFA_RECOVERY_CODES; i++)
		cJSON_AddItemToArray(codes, cJSON_CreateString(s.recovery_codes[i]));
	sodium_memzero(&s, sizeof s);
	response_json(req, 200, o);
}

void api_auth_mfa_totp_confirm(struct request *req)
{
	static const char *const fields[] = { "code", NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	const char *code = v_mfa_code(&v);
	if (v.failed)
		return;
	struct refusal why = { 0 };
	enum gala_error e = mfa_totp_confirm(&req->cx, code, &why);
	if (e != GE_OK) {
		respond_code_refusal(req, e, why.message);
		return;
	}
	respond_mfa_enabled(req, true);
}

void api_auth_mfa_totp_disable(struct request *req)
{
	static const char *const fields[] = { "code", NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	const char *code = v_mfa_code(&v);
	if (v.failed)
		return;
	enum gala_error e = mfa_totp_disable(&req->cx, code);
	if (e != GE_OK) {
		respond_code_refusal(req, e, NULL);
		return;
	}
	respond_mfa_enabled(req, false);
}

void api_auth_mfa_verify(struct request *req)
{
	static const char *const fields[] = { "mfa_token", "code", NULL };
	struct validator v;
	v_init(&v, req);
	v_only(&v, fields);
	const char *token = v_string(&v, "mfa_token", true, 1, 256, false);
	const char *code = v_mfa_code(&v);
	if (v.failed)
		return;
	const char *user_id = NULL;
	struct issued_session s = { 0 };
	enum gala_error e = mfa_verify(&req->cx, token, code, &user_id);
	if (e == GE_OK)
		e = accounts_open_session(&req->cx, user_id, true, &s);
	if (e != GE_OK) {
		respond_failure(req, e);
		return;
	}
	respond_session(req, 200, &s);
}
