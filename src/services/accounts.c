#include "autoconf.h"

#include "services/accounts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "services/audit.h"
#include "core/config.h"
#include "core/crypto.h"
#include "core/jwt.h"
#include "core/log.h"
#include "core/password.h"
#include "services/outbox.h"
#include "services/session.h"

/* id, email, full_name, role, email_verified, created_at, mfa_enabled */
#define USER_COLUMNS "id, email, full_name, role, email_verified, " SQL_TS("created_at") \
	", mfa_enabled"
/* USER_COLUMNS, then what register and login read besides. */
enum {
	US_ID, US_EMAIL, US_FULL_NAME, US_ROLE, US_EMAIL_VERIFIED, US_CREATED_AT, US_MFA_ENABLED,
	US_TOKEN_VERSION, US_PASSWORD_HASH
};

/* The user object of API.md from a row of USER_COLUMNS. */
static cJSON *user_json(const PGresult *res, int row)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", db_value(res, row, US_ID));
	cJSON_AddStringToObject(o, "email", db_value(res, row, US_EMAIL));
	cJSON_AddStringToObject(o, "full_name", db_value(res, row, US_FULL_NAME));
	cJSON_AddStringToObject(o, "role", db_value(res, row, US_ROLE));
	cJSON_AddBoolToObject(o, "email_verified", db_bool(res, row, US_EMAIL_VERIFIED));
	char t[DB_TIME_LEN];
	cJSON_AddStringToObject(o, "created_at", db_time(res, row, US_CREATED_AT, t));
	cJSON_AddBoolToObject(o, "mfa_enabled", db_bool(res, row, US_MFA_ENABLED));
	return o;
}

static int issue_session(const char *user_id, const char *role, long long token_version,
    bool otp, struct issued_session *out)
{
	struct jwt_claims c = { 0 };
	long long now = (long long)time(NULL);
	snprintf(c.sub, sizeof c.sub, "%s", user_id);
	snprintf(c.role, sizeof c.role, "%s", role);
	c.iat = now;
	c.exp = now + gala_config->access_token_ttl_seconds;
	crypto_uuid4(c.jti);
	crypto_random_hex(c.csrf, 32);
	c.tv = token_version;
	c.otp = otp;
	snprintf(out->csrf, sizeof out->csrf, "%s", c.csrf);
	out->expires_in = gala_config->access_token_ttl_seconds;
	return jwt_sign(&c, gala_config->secret_key, out->token, sizeof out->token);
}

/* The session of the user in row 0 of res (USER_COLUMNS, token_version). */
static enum gala_error session_from_row(struct svc_ctx *cx, const PGresult *res, bool otp,
    struct issued_session *out)
{
	const char *user_id = db_value(res, 0, US_ID);
	if (issue_session(user_id, db_value(res, 0, US_ROLE), db_int(res, 0, US_TOKEN_VERSION), otp,
	    out) != 0)
		return GE_INTERNAL;
	out->user = user_json(res, 0);
	cx->log_user_id = user_id;
	return GE_OK;
}

/* A code as Gala makes them: exactly six ASCII digits. */
static bool otp_well_formed(const char *code)
{
	return strlen(code) == 6 && strspn(code, "0123456789") == 6;
}

/* The keyed hash of a code for user_id: 0, or -1 when they do not fit
 * (a user id is a UUID and a code six digits: 47 bytes). */
static int otp_hash(const char *user_id, const char *code, char out[65])
{
	char msg[64];
	int n = snprintf(msg, sizeof msg, "otp:%s:%s", user_id, code);
	if (n < 0 || (size_t)n >= sizeof msg)
		return -1;
	crypto_hmac_sha256_hex(gala_config->secret_key, msg, (size_t)n, out);
	return 0;
}

static void new_otp(char code[7])
{
	snprintf(code, 7, "%06u", (unsigned)randombytes_uniform(1000000));
}

/* Stores a fresh code for the user (replacing any older one) when due; the
 * statement runs either way (outbox_put() says why). user_id is NULL when
 * there is no such user. */
static enum db_status store_otp(arena_t *a, const char *user_id, const char *code, bool due)
{
	char hash[65], ttl[16];
	/* The hash of an unknown user costs what a known one's does. */
	if (otp_hash(user_id ? user_id : "00000000-0000-0000-0000-000000000000", code, hash) != 0)
		return DB_ERROR;
	snprintf(ttl, sizeof ttl, "%d", OTP_TTL_SECONDS);
	const char *p[] = { user_id, hash, ttl, due ? "true" : "false" };
	PGresult *res;
	return db_exec(a, &res,
	    "INSERT INTO email_otps (user_id, code_hash, expires_at, attempts, last_sent_at) "
	    "SELECT $1::uuid, $2, now() + make_interval(secs => $3::int), 0, now() WHERE $4::boolean "
	    "ON CONFLICT (user_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, "
	    "expires_at = EXCLUDED.expires_at, attempts = 0, last_sent_at = now(), used_at = NULL",
	    4, p);
}

/* Queues the mail with the code, when due (outbox_put()). */
static enum db_status queue_verification(struct svc_ctx *cx, const char *user_id,
    const char *email, const char *name, const char *code, bool due)
{
	struct outbox_mail m = {
		.kind = "verification", .user_id = user_id, .to = email,
		.subject = "Your Gala verification code",
		.text = arena_printf(cx->arena,
		    "Hello %s,\n\nyour Gala verification code is:\n\n%s\n\n"
		    "It is valid for 10 minutes. If you did not sign up for Gala, ignore this mail.\n",
		    name, code),
	};
	return outbox_put(cx, &m, due);
}

/* The notice that the password changed; the sessions line says which. */
static enum db_status queue_password_changed(struct svc_ctx *cx, const char *user_id,
    const char *email, const char *sessions)
{
	struct outbox_mail m = {
		.kind = "password_changed", .user_id = user_id, .to = email,
		.subject = "Your Gala password was changed",
		.text = arena_printf(cx->arena,
		    "Hello,\n\nthe password of your Gala account was just changed, and every %s"
		    "session that was signed in has been signed out.\n\n"
		    "If this was not you, reset your password at once and contact support.\n", sessions),
	};
	return outbox_put(cx, &m, true);
}

static cJSON *meta_reason(const char *reason)
{
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "reason", reason);
	return m;
}

/* Writes a failure row outside any transaction of the action. */
static enum gala_error audit_failure(struct svc_ctx *cx, const char *target, const char *action,
    const char *reason, enum gala_error e)
{
	db_rollback();
	enum db_status st = audit_write(cx, cx->arena, NULL, target, action, "failure",
	    meta_reason(reason));
	if (st != DB_OK) {
		/* A failure nobody can find later is not an answer to give. */
		log_error("gala.accounts", "could not record %s (%s) in the audit log", action, reason);
		return db_error(st);
	}
	return e;
}

enum gala_error accounts_register(struct svc_ctx *cx, const char *email, const char *password,
    const char *full_name, const char *role, struct issued_session *out)
{
	arena_t *a = cx->arena;
	char hash[PASSWORD_HASH_MAX];
	if (password_hash(password, hash) != 0)
		return GE_INTERNAL;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	const char *p[] = { email, hash, full_name, role };
	PGresult *res;
	st = db_exec(a, &res, "INSERT INTO users (email, password_hash, full_name, role) "
	    "VALUES ($1, $2, $3, $4) RETURNING " USER_COLUMNS ", token_version", 4, p);
	if (st == DB_ERROR && db_is_unique_violation(res)) {
		db_rollback();
		const char *q[] = { email };
		PGresult *who;
		const char *target = NULL;
		if (db_exec(a, &who, "SELECT id FROM users WHERE lower(email) = lower($1)", 1, q) == DB_OK &&
		    PQntuples(who) == 1)
			target = db_value(who, 0, 0);
		return audit_failure(cx, target, "auth.register", "email_taken", GE_EMAIL_TAKEN);
	}
	if (st != DB_OK)
		return db_fail(db_error(st));
	const char *user_id = arena_strdup(a, db_value(res, 0, 0));
	char code[7];
	new_otp(code);
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "role", role);
	st = store_otp(a, user_id, code, true);
	if (st == DB_OK)
		st = queue_verification(cx, user_id, email, full_name, code, true);
	sodium_memzero(code, sizeof code);
	if (st != DB_OK ||
	    (st = audit_write(cx, a, user_id, user_id, "auth.register", "success", m)) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	if (issue_session(user_id, role, 0, false, out) != 0)
		return GE_INTERNAL;
	out->user = user_json(res, 0);
	return GE_OK;
}

enum gala_error accounts_login(struct svc_ctx *cx, const char *email, const char *password,
    struct issued_session *out)
{
	arena_t *a = cx->arena;
	const char *p[] = { email };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "SELECT " USER_COLUMNS ", token_version, password_hash "
	    "FROM users WHERE lower(email) = lower($1)", 1, p);
	if (st != DB_OK)
		return db_error(st);
	bool found = PQntuples(res) == 1;
	const char *hash = found ? db_value(res, 0, US_PASSWORD_HASH) : NULL;
	if (!password_verify(password, hash)) {
		return audit_failure(cx, found ? db_value(res, 0, US_ID) : NULL, "auth.login",
		    found ? "wrong_password" : "unknown_email", GE_INVALID_CREDENTIALS);
	}
	const char *user_id = db_value(res, 0, US_ID);
	if ((st = db_begin(a)) != DB_OK)
		return db_error(st);
	if (password_needs_rehash(hash)) {
		char fresh[PASSWORD_HASH_MAX];
		if (password_hash(password, fresh) == 0) {
			const char *q[] = { user_id, fresh };
			PGresult *r2;
			if ((st = db_exec(a, &r2, "UPDATE users SET password_hash = $2, updated_at = now() "
			    "WHERE id = $1", 2, q)) != DB_OK)
				return db_fail(db_error(st));
		}
	}
	/* With MFA on, the password opens no session: the second step
	 * (mfa_verify) does. */
	bool mfa = db_bool(res, 0, US_MFA_ENABLED);
	cJSON *m = NULL;
	if (mfa) {
		m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "next", "mfa");
	}
	if ((mfa && (st = mfa_issue_token(a, user_id, out->mfa_token)) != DB_OK) ||
	    (st = audit_write(cx, a, user_id, user_id, "auth.login", "success", m)) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	if (mfa) {
		out->mfa_required = true;
		out->expires_in = MFA_TOKEN_TTL_SECONDS;
		return GE_OK;
	}
	return session_from_row(cx, res, false, out);
}

enum gala_error accounts_open_session(struct svc_ctx *cx, const char *user_id, bool otp,
    struct issued_session *out)
{
	const char *p[] = { user_id };
	PGresult *res;
	enum db_status st = db_exec(cx->arena, &res, "SELECT " USER_COLUMNS ", token_version "
	    "FROM users WHERE id = $1", 1, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1)
		return GE_INTERNAL;
	return session_from_row(cx, res, otp, out);
}

enum gala_error accounts_verify_email(struct svc_ctx *cx, const char *email, const char *otp)
{
	if (!otp_well_formed(otp))
		return GE_INVALID_OTP;
	arena_t *a = cx->arena;
	PGresult *res;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	/* The row lock serialises tries on one account: five wrong codes are
	 * five, however many arrive at once. */
	enum {
		VE_ID, VE_VERIFIED, VE_CODE_HASH, VE_ATTEMPTS, VE_USED, VE_EXPIRED, VE_HAS_CODE,
		VE_WINDOW_FAILURES
	};
	char window[16];
	snprintf(window, sizeof window, "%d", OTP_WINDOW_SECONDS);
	const char *pw[] = { email, window };
	st = db_exec(a, &res,
	    "SELECT u.id, u.email_verified, o.code_hash, o.attempts, o.used_at IS NOT NULL, "
	    "o.expires_at <= now(), o.user_id IS NOT NULL, "
	    "CASE WHEN o.window_started_at > now() - make_interval(secs => $2::int) "
	    "THEN o.window_failures ELSE 0 END "
	    "FROM users u LEFT JOIN email_otps o ON o.user_id = u.id "
	    "WHERE lower(u.email) = lower($1) FOR UPDATE OF u", 2, pw);
	if (st != DB_OK)
		return db_fail(db_error(st));
	if (PQntuples(res) != 1)
		return audit_failure(cx, NULL, "auth.verify_email", "unknown_email", GE_INVALID_OTP);
	const char *user_id = arena_strdup(a, db_value(res, 0, VE_ID));
	if (db_bool(res, 0, VE_VERIFIED)) {
		db_rollback();
		return GE_OK;
	}
	if (!db_bool(res, 0, VE_HAS_CODE) || db_bool(res, 0, VE_USED))
		return audit_failure(cx, user_id, "auth.verify_email", "no_code", GE_INVALID_OTP);
	if (db_int(res, 0, VE_ATTEMPTS) >= OTP_MAX_ATTEMPTS ||
	    db_int(res, 0, VE_WINDOW_FAILURES) >= OTP_MAX_FAILURES_PER_WINDOW)
		return audit_failure(cx, user_id, "auth.verify_email", "locked", GE_OTP_LOCKED);
	if (db_bool(res, 0, VE_EXPIRED))
		return audit_failure(cx, user_id, "auth.verify_email", "expired", GE_OTP_EXPIRED);
	char hash[65];
	if (otp_hash(user_id, otp, hash) != 0)
		return db_fail(GE_INTERNAL);
	if (!crypto_str_equal(hash, db_value(res, 0, VE_CODE_HASH))) {
		const char *q[] = { user_id, window };
		PGresult *r2;
		if ((st = db_exec(a, &r2, "UPDATE email_otps SET attempts = attempts + 1, "
		    "window_failures = CASE WHEN window_started_at > now() - "
		    "make_interval(secs => $2::int) THEN window_failures + 1 ELSE 1 END, "
		    "window_started_at = CASE WHEN window_started_at > now() - "
		    "make_interval(secs => $2::int) THEN window_started_at ELSE now() END "
		    "WHERE user_id = $1 RETURNING attempts", 2, q)) != DB_OK)
			return db_fail(db_error(st));
		/* Even the try that burns the code was a wrong code: the tries
		 * after it are the ones that find it locked. */
		cJSON *m = meta_reason("wrong_code");
		cJSON_AddNumberToObject(m, "attempts", atoi(db_value(r2, 0, 0)));
		if ((st = audit_write(cx, a, NULL, user_id, "auth.verify_email", "failure", m)) != DB_OK ||
		    (st = db_commit(a)) != DB_OK)
			return db_fail(db_error(st));
		return GE_INVALID_OTP;
	}
	const char *q[] = { user_id };
	PGresult *r2;
	if ((st = db_exec(a, &r2, "UPDATE email_otps SET used_at = now() WHERE user_id = $1", 1, q)) != DB_OK ||
	    (st = db_exec(a, &r2, "UPDATE users SET email_verified = true, updated_at = now() "
		"WHERE id = $1", 1, q)) != DB_OK ||
	    (st = audit_write(cx, a, user_id, user_id, "auth.verify_email", "success", NULL)) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	return GE_OK;
}

/* Resend and forgot-password answer alike whether or not a mail is due
 * (API.md), and cost alike too: the same statements run on every path,
 * those of a mail not due changing nothing. */
enum gala_error accounts_resend_verification(struct svc_ctx *cx, const char *email,
    bool *already_verified)
{
	arena_t *a = cx->arena;
	*already_verified = false;
	PGresult *res;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	char secs[16];
	snprintf(secs, sizeof secs, "%d", OTP_RESEND_SECONDS);
	const char *pp[] = { email, secs };
	enum { RS_ID, RS_EMAIL, RS_FULL_NAME, RS_VERIFIED, RS_TOO_SOON };
	st = db_exec(a, &res,
	    "SELECT u.id, u.email, u.full_name, u.email_verified, "
	    "coalesce(o.last_sent_at > now() - make_interval(secs => $2::int), false) "
	    "FROM users u LEFT JOIN email_otps o ON o.user_id = u.id "
	    "WHERE lower(u.email) = lower($1) FOR UPDATE OF u", 2, pp);
	if (st != DB_OK)
		return db_fail(db_error(st));
	bool found = PQntuples(res) == 1;
	const char *user_id = found ? db_value(res, 0, RS_ID) : NULL;
	*already_verified = found && db_bool(res, 0, RS_VERIFIED);
	const char *why = !found ? "unknown_email" : *already_verified ? "already_verified" :
	    db_bool(res, 0, RS_TOO_SOON) ? "too_soon" : NULL;
	bool due = why == NULL;
	char code[7];
	new_otp(code);
	st = store_otp(a, user_id, code, due);
	if (st == DB_OK)
		st = queue_verification(cx, user_id, found ? db_value(res, 0, RS_EMAIL) : email,
		    found ? db_value(res, 0, RS_FULL_NAME) : "", code, due);
	sodium_memzero(code, sizeof code);
	if (st != DB_OK ||
	    (st = audit_write(cx, a, NULL, user_id, "auth.resend_verification",
		due ? "success" : "failure", due ? NULL : meta_reason(why))) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	return GE_OK;
}

enum gala_error accounts_forgot_password(struct svc_ctx *cx, const char *email)
{
	arena_t *a = cx->arena;
	const char *p[] = { email };
	PGresult *res;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	enum { FP_ID, FP_EMAIL };
	st = db_exec(a, &res, "SELECT id, email FROM users WHERE lower(email) = lower($1) "
	    "FOR UPDATE", 1, p);
	if (st != DB_OK)
		return db_fail(db_error(st));
	bool found = PQntuples(res) == 1;
	const char *user_id = found ? db_value(res, 0, FP_ID) : NULL;
	char token[64], hash[65], ttl[16];
	crypto_random_token(token, sizeof token, 32);
	crypto_sha256_hex(token, strlen(token), hash);
	snprintf(ttl, sizeof ttl, "%d", RESET_TTL_SECONDS);
	const char *q[] = { user_id, hash, ttl };
	PGresult *r2;
	/* A newer token voids the older ones; without a user, both parts
	 * touch nothing. */
	st = db_exec(a, &r2, "WITH voided AS (DELETE FROM password_reset_tokens "
	    "WHERE user_id = $1::uuid AND used_at IS NULL) "
	    "INSERT INTO password_reset_tokens (token_hash, user_id, expires_at) "
	    "SELECT $2, $1::uuid, now() + make_interval(secs => $3::int) WHERE $1::uuid IS NOT NULL",
	    3, q);
	if (st == DB_OK) {
		struct outbox_mail m = {
			.kind = "password_reset", .user_id = user_id,
			.to = found ? db_value(res, 0, FP_EMAIL) : email,
			.subject = "Reset your Gala password",
			.text = arena_printf(a,
			    "Hello,\n\nsomeone asked to reset the password of your Gala account. "
			    "To choose a new one, open:\n\n%s/reset-password?token=%s\n\n"
			    "or paste this token into the app:\n\n%s\n\n"
			    "The link works once, for 30 minutes. If you did not ask for it, ignore "
			    "this mail: your password stays as it is.\n",
			    gala_config->frontend_url, token, token),
		};
		st = outbox_put(cx, &m, found);
	}
	sodium_memzero(token, sizeof token);
	if (st != DB_OK ||
	    (st = audit_write(cx, a, NULL, user_id, "auth.forgot_password",
		found ? "success" : "failure", found ? NULL : meta_reason("unknown_email"))) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	return GE_OK;
}

enum gala_error accounts_reset_password(struct svc_ctx *cx, const char *token,
    const char *new_password)
{
	arena_t *a = cx->arena;
	char hash[65];
	crypto_sha256_hex(token, strlen(token), hash);
	char pwhash[PASSWORD_HASH_MAX];
	if (password_hash(new_password, pwhash) != 0)
		return GE_INTERNAL;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	const char *p[] = { hash };
	PGresult *res;
	/* Marking the token used in the same statement that finds it makes it
	 * single-use under any concurrency. */
	st = db_exec(a, &res, "UPDATE password_reset_tokens SET used_at = now() "
	    "WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() "
	    "RETURNING user_id", 1, p);
	if (st != DB_OK)
		return db_fail(db_error(st));
	if (PQntuples(res) != 1)
		return audit_failure(cx, NULL, "auth.reset_password", "invalid_token",
		    GE_INVALID_RESET_TOKEN);
	const char *user_id = arena_strdup(a, db_value(res, 0, 0));
	const char *q[] = { user_id, pwhash };
	PGresult *r2;
	if ((st = db_exec(a, &r2, "UPDATE users SET password_hash = $2, "
	    "token_version = token_version + 1, updated_at = now() WHERE id = $1 "
	    "RETURNING email", 2, q)) != DB_OK ||
	    (st = db_exec(a, &res, "DELETE FROM password_reset_tokens WHERE user_id = $1 "
		"AND used_at IS NULL", 1, q)) != DB_OK ||
	    (st = queue_password_changed(cx, user_id, db_value(r2, 0, 0), "")) != DB_OK ||
	    (st = audit_write(cx, a, user_id, user_id, "auth.reset_password", "success", NULL)) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	return GE_OK;
}

enum gala_error accounts_change_password(struct svc_ctx *cx, const char *current,
    const char *new_password, struct issued_session *out, struct refusal *why)
{
	arena_t *a = cx->arena;
	const char *user_id = cx->caller->id;
	const char *p[] = { user_id };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "SELECT password_hash FROM users WHERE id = $1", 1, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1 || !password_verify(current, db_value(res, 0, 0))) {
		why->param = "current_password";
		return audit_failure(cx, user_id, "auth.change_password", "wrong_password",
		    GE_INVALID_CURRENT_PASSWORD);
	}
	char pwhash[PASSWORD_HASH_MAX];
	if (password_hash(new_password, pwhash) != 0)
		return GE_INTERNAL;
	/* The new version voids every token issued before, this request's
	 * included: the answer carries its successor. */
	const char *q[] = { user_id, pwhash };
	if ((st = db_begin(a)) != DB_OK ||
	    (st = db_exec(a, &res, "UPDATE users SET password_hash = $2, "
		"token_version = token_version + 1, updated_at = now() WHERE id = $1 "
		"RETURNING " USER_COLUMNS ", token_version", 2, q)) != DB_OK ||
	    (st = queue_password_changed(cx, user_id, db_value(res, 0, US_EMAIL), "other ")) != DB_OK ||
	    (st = audit_write(cx, a, user_id, user_id, "auth.change_password", "success",
		NULL)) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	/* A session signed in with a second factor keeps it. */
	return session_from_row(cx, res, cx->caller->claims.otp, out);
}

enum gala_error accounts_logout(struct svc_ctx *cx)
{
	arena_t *a = cx->arena;
	const struct session *u = cx->caller;
	char exp[32];
	snprintf(exp, sizeof exp, "%lld", u->claims.exp);
	const char *p[] = { u->claims.jti, u->id, exp };
	PGresult *res;
	enum db_status st = db_begin(a);
	if (st != DB_OK ||
	    (st = db_exec(a, &res, "INSERT INTO revoked_tokens (jti, user_id, expires_at) "
		"VALUES ($1, $2, to_timestamp($3::bigint)) ON CONFLICT (jti) DO NOTHING", 3, p)) != DB_OK ||
	    (st = audit_write(cx, a, u->id, u->id, "auth.logout", "success", NULL)) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	return GE_OK;
}

enum gala_error accounts_logout_all(struct svc_ctx *cx)
{
	arena_t *a = cx->arena;
	const char *p[] = { cx->caller->id };
	PGresult *res;
	enum db_status st = db_begin(a);
	if (st != DB_OK ||
	    (st = db_exec(a, &res, "UPDATE users SET token_version = token_version + 1, "
		"updated_at = now() WHERE id = $1", 1, p)) != DB_OK ||
	    (st = audit_write(cx, a, cx->caller->id, cx->caller->id, "auth.logout_all", "success",
		NULL)) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	return GE_OK;
}

static int role_change(arena_t *a, const char *user_id, const char *from, const char *to,
    const char *via)
{
	cJSON *m = cJSON_CreateObject();
	if (from != NULL)
		cJSON_AddStringToObject(m, "from", from);
	else
		cJSON_AddNullToObject(m, "from");
	cJSON_AddStringToObject(m, "to", to);
	cJSON_AddStringToObject(m, "via", via);
	return audit_write(NULL, a, NULL, user_id, "user.role_change", "success", m) == DB_OK ? 0 : -1;
}

int accounts_create_admin(arena_t *a, const char *email, const char *password,
    const char *full_name, char *err, size_t errlen)
{
	const char *why = password_policy_error(password);
	if (why != NULL) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	char hash[PASSWORD_HASH_MAX];
	if (password_hash(password, hash) != 0) {
		snprintf(err, errlen, "out of memory while hashing");
		return -1;
	}
	const char *p[] = { email, hash, full_name };
	PGresult *res;
	if (db_begin(a) != DB_OK) {
		snprintf(err, errlen, "database error (see the log)");
		return -1;
	}
	enum db_status st = db_exec(a, &res, "INSERT INTO users (email, password_hash, full_name, "
	    "role, email_verified) VALUES ($1, $2, $3, 'admin', true) RETURNING id", 3, p);
	if (st == DB_ERROR && db_is_unique_violation(res)) {
		db_rollback();
		snprintf(err, errlen, "%s already has an account; use: gala user set-role %s admin",
		    email, email);
		return -1;
	}
	if (st != DB_OK || role_change(a, db_value(res, 0, 0), NULL, "admin", "cli:create-admin") != 0 ||
	    db_commit(a) != DB_OK) {
		db_rollback();
		snprintf(err, errlen, "database error (see the log)");
		return -1;
	}
	return 0;
}

int accounts_set_role(arena_t *a, const char *email, const char *role,
    char *err, size_t errlen)
{
	const char *p[] = { email, role };
	PGresult *res;
	enum { SR_ID, SR_OLD_ROLE };
	enum db_status st = db_begin(a);
	if (st == DB_OK)
		st = db_exec(a, &res, "UPDATE users u SET role = $2, updated_at = now() "
		    "FROM (SELECT id, role FROM users WHERE lower(email) = lower($1) FOR UPDATE) old "
		    "WHERE u.id = old.id RETURNING u.id, old.role", 2, p);
	if (st != DB_OK) {
		db_rollback();
		snprintf(err, errlen, "database error (see the log)");
		return -1;
	}
	if (PQntuples(res) != 1) {
		db_rollback();
		snprintf(err, errlen, "no account with the email %s", email);
		return -1;
	}
	if (role_change(a, db_value(res, 0, SR_ID), db_value(res, 0, SR_OLD_ROLE), role,
	    "cli:set-role") != 0 ||
	    db_commit(a) != DB_OK) {
		db_rollback();
		snprintf(err, errlen, "database error (see the log)");
		return -1;
	}
	return 0;
}
