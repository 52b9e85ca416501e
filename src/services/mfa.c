#include "autoconf.h"

#include "services/mfa.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/config.h"
#include "core/crypto.h"
#include "services/audit.h"
#include "services/session.h"

/* Subkeys of SECRET_KEY (crypto_kdf, context "galamfa1"): rotating
 * SECRET_KEY therefore also voids enrolled secrets and recovery codes. */
enum { MFA_KEY_SEAL = 1, MFA_KEY_RECOVERY = 2 };

static void mfa_key(uint64_t id, unsigned char key[32])
{
	unsigned char master[crypto_kdf_KEYBYTES];
	crypto_generichash(master, sizeof master, (const unsigned char *)gala_config->secret_key,
	    strlen(gala_config->secret_key), NULL, 0);
	crypto_kdf_derive_from_key(key, 32, id, "galamfa1", master);
	sodium_memzero(master, sizeof master);
}

#define SEALED_BYTES (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + TOTP_SECRET_BYTES)
#define SEALED_HEX (2 * SEALED_BYTES + 1)

/* nonce || secretbox(secret), as hex for a text column. */
static void seal_secret(const unsigned char secret[TOTP_SECRET_BYTES], char out[SEALED_HEX])
{
	unsigned char key[32], box[SEALED_BYTES];
	mfa_key(MFA_KEY_SEAL, key);
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, secret, TOTP_SECRET_BYTES, box, key);
	sodium_bin2hex(out, SEALED_HEX, box, sizeof box);
	sodium_memzero(key, sizeof key);
}

/* 0, or -1 when the value was not sealed under this key. */
static int open_secret(const char *sealed, unsigned char secret[TOTP_SECRET_BYTES])
{
	unsigned char key[32], box[SEALED_BYTES];
	size_t n;
	if (sealed == NULL || sodium_hex2bin(box, sizeof box, sealed, strlen(sealed), NULL, &n,
	    NULL) != 0 || n != sizeof box)
		return -1;
	mfa_key(MFA_KEY_SEAL, key);
	int rc = crypto_secretbox_open_easy(secret, box + crypto_secretbox_NONCEBYTES,
	    sizeof box - crypto_secretbox_NONCEBYTES, box, key);
	sodium_memzero(key, sizeof key);
	return rc;
}

/* A recovery code as it is compared: lower case, without the dash or
 * spaces a user may type; NULL when it cannot be one. */
static char *recovery_normal(arena_t *a, const char *code)
{
	char *out = arena_calloc(a, 1, MFA_RECOVERY_CODE_SIZE);
	size_t n = 0;
	for (const char *p = code; *p != '\0'; p++) {
		if (*p == '-' || *p == ' ')
			continue;
		if (n == MFA_RECOVERY_CODE_SIZE - 2)
			return NULL;
		out[n++] = (char)tolower((unsigned char)*p);
	}
	return n == MFA_RECOVERY_CODE_SIZE - 2 ? out : NULL;
}

/* Keyed BLAKE2b of user id and normalised code, as hex. */
static void recovery_hash(const char *user_id, const char *normal, char out[65])
{
	unsigned char key[32], h[32];
	mfa_key(MFA_KEY_RECOVERY, key);
	crypto_generichash_state st;
	crypto_generichash_init(&st, key, sizeof key, sizeof h);
	crypto_generichash_update(&st, (const unsigned char *)user_id, strlen(user_id));
	crypto_generichash_update(&st, (const unsigned char *)":", 1);
	crypto_generichash_update(&st, (const unsigned char *)normal, strlen(normal));
	crypto_generichash_final(&st, h, sizeof h);
	sodium_bin2hex(out, 65, h, sizeof h);
	sodium_memzero(key, sizeof key);
}

static void new_recovery_code(char out[MFA_RECOVERY_CODE_SIZE])
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	for (int i = 0, o = 0; i < 10; i++) {
		if (i == 5)
			out[o++] = '-';
		out[o++] = alphabet[randombytes_uniform(32)];
	}
	out[MFA_RECOVERY_CODE_SIZE - 1] = '\0';
}

/* The label of the otpauth URI: unreserved characters and '@' as they are,
 * the rest percent-encoded. */
static char *uri_label(arena_t *a, const char *s)
{
	char *out = arena_alloc(a, strlen(s) * 3 + 1);
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (isalnum(*p) || strchr("-._~@", *p) != NULL) {
			out[o++] = (char)*p;
		} else {
			snprintf(out + o, 4, "%%%02X", *p);
			o += 3;
		}
	}
	out[o] = '\0';
	return out;
}

static cJSON *meta_reason(const char *reason)
{
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "reason", reason);
	return m;
}

/* Rolls back the action and writes its failure row on its own. */
static enum gala_error audit_failure(struct svc_ctx *cx, const char *actor, const char *target,
    const char *action, cJSON *meta, enum gala_error e)
{
	db_rollback();
	enum db_status st = audit_write(cx, cx->arena, actor, target, action, "failure", meta);
	return st == DB_OK ? e : db_error(st);
}

enum code_kind { CODE_WRONG, CODE_TOTP, CODE_RECOVERY };

/* Checks code against the sealed secret (a step after last_step) and, when
 * recovery is allowed and it is not a TOTP code, against the user's unused
 * recovery codes, spending the one it matches. In the caller's
 * transaction, with the user's user_mfa row locked. */
static enum db_status check_code(arena_t *a, const char *user_id, const char *sealed,
    long long last_step, bool recovery, const char *code, enum code_kind *kind,
    long long *step)
{
	*kind = CODE_WRONG;
	unsigned char secret[TOTP_SECRET_BYTES];
	if (open_secret(sealed, secret) != 0)
		return DB_ERROR;
	bool ok = totp_check(secret, sizeof secret, code, (long long)time(NULL), last_step, step);
	sodium_memzero(secret, sizeof secret);
	if (ok) {
		*kind = CODE_TOTP;
		return DB_OK;
	}
	const char *normal = recovery ? recovery_normal(a, code) : NULL;
	if (normal == NULL)
		return DB_OK;
	char hash[65];
	recovery_hash(user_id, normal, hash);
	const char *p[] = { user_id, hash };
	PGresult *res;
	enum db_status st = db_exec(a, &res, "UPDATE mfa_recovery_codes SET used_at = now() "
	    "WHERE user_id = $1 AND code_hash = $2 AND NOT pending AND used_at IS NULL", 2, p);
	if (st == DB_OK && atoi(PQcmdTuples(res)) == 1)
		*kind = CODE_RECOVERY;
	return st;
}

enum gala_error mfa_totp_setup(struct svc_ctx *cx, struct mfa_setup *out)
{
	arena_t *a = cx->arena;
	const char *user_id = cx->caller->id;
	const struct session_profile *prof = session_profile(cx->caller);
	if (prof == NULL)
		return GE_INVALID_TOKEN;
	unsigned char secret[TOTP_SECRET_BYTES];
	char sealed[SEALED_HEX];
	randombytes_buf(secret, sizeof secret);
	seal_secret(secret, sealed);
	int rc = base32_encode(secret, sizeof secret, out->secret, sizeof out->secret);
	sodium_memzero(secret, sizeof secret);
	if (rc != 0)
		return GE_INTERNAL;
	/* The hashes as one array literal: hex needs no quoting. */
	char *hashes = arena_strdup(a, "{");
	for (int i = 0; i < MFA_RECOVERY_CODES; i++) {
		char h[65];
		new_recovery_code(out->recovery_codes[i]);
		recovery_hash(user_id, recovery_normal(a, out->recovery_codes[i]), h);
		hashes = arena_printf(a, "%s%s%s", hashes, i ? "," : "", h);
	}
	hashes = arena_printf(a, "%s}", hashes);
	out->otpauth_uri = arena_printf(a, "otpauth://totp/Gala:%s?secret=%s&issuer=Gala",
	    uri_label(a, prof->email), out->secret);

	const char *p[] = { user_id, sealed };
	const char *q[] = { user_id, hashes };
	PGresult *res;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	/* Only while MFA is off: an enabled row is left alone and returns none. */
	if ((st = db_exec(a, &res, "INSERT INTO user_mfa (user_id, pending_secret) VALUES ($1, $2) "
	    "ON CONFLICT (user_id) DO UPDATE SET pending_secret = EXCLUDED.pending_secret, "
	    "updated_at = now() WHERE user_mfa.secret IS NULL RETURNING 1", 2, p)) != DB_OK)
		return db_fail(db_error(st));
	if (PQntuples(res) != 1) {
		db_rollback();
		return GE_MFA_ALREADY_ENABLED;
	}
	if ((st = db_exec(a, &res, "DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND pending",
	    1, p)) != DB_OK ||
	    (st = db_exec(a, &res, "INSERT INTO mfa_recovery_codes (user_id, code_hash, pending) "
		"SELECT $1, h, true FROM unnest($2::text[]) AS h", 2, q)) != DB_OK ||
	    (st = audit_write(cx, a, user_id, user_id, "auth.mfa_setup", "success", NULL)) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	return GE_OK;
}

enum gala_error mfa_totp_confirm(struct svc_ctx *cx, const char *code, struct refusal *why)
{
	arena_t *a = cx->arena;
	const char *user_id = cx->caller->id;
	const char *p[] = { user_id, NULL };
	PGresult *res;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	enum { CF_ENABLED, CF_PENDING };
	if ((st = db_exec(a, &res, "SELECT secret IS NOT NULL, pending_secret FROM user_mfa "
	    "WHERE user_id = $1 FOR UPDATE", 1, p)) != DB_OK)
		return db_fail(db_error(st));
	bool found = PQntuples(res) == 1;
	if (found && db_bool(res, 0, CF_ENABLED)) {
		db_rollback();
		return GE_MFA_ALREADY_ENABLED;
	}
	if (!found || db_value(res, 0, CF_PENDING) == NULL) {
		why->message = "no TOTP setup is pending: start one with POST /api/auth/mfa/totp";
		return audit_failure(cx, user_id, user_id, "auth.mfa_enable", meta_reason("no_setup"),
		    GE_INVALID_MFA_CODE);
	}
	enum code_kind kind;
	long long step = 0;
	if ((st = check_code(a, user_id, db_value(res, 0, CF_PENDING), -1, false, code, &kind,
	    &step)) != DB_OK)
		return db_fail(db_error(st));
	if (kind == CODE_WRONG)
		return audit_failure(cx, user_id, user_id, "auth.mfa_enable", meta_reason("wrong_code"),
		    GE_INVALID_MFA_CODE);
	char s[24];
	snprintf(s, sizeof s, "%lld", step);
	p[1] = s;
	if ((st = db_exec(a, &res, "UPDATE user_mfa SET secret = pending_secret, "
	    "pending_secret = NULL, last_step = $2, enabled_at = now(), updated_at = now() "
	    "WHERE user_id = $1", 2, p)) != DB_OK ||
	    (st = db_exec(a, &res, "DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND NOT pending",
		1, p)) != DB_OK ||
	    (st = db_exec(a, &res, "UPDATE mfa_recovery_codes SET pending = false WHERE user_id = $1",
		1, p)) != DB_OK ||
	    (st = audit_write(cx, a, user_id, user_id, "auth.mfa_enable", "success", NULL)) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	return GE_OK;
}

enum gala_error mfa_totp_disable(struct svc_ctx *cx, const char *code)
{
	arena_t *a = cx->arena;
	const struct session *me = cx->caller;
	const char *p[] = { me->id, me->claims.jti };
	PGresult *res;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	enum { DS_SECRET, DS_LAST_STEP };
	if ((st = db_exec(a, &res, "SELECT secret, last_step FROM user_mfa WHERE user_id = $1 "
	    "FOR UPDATE", 1, p)) != DB_OK)
		return db_fail(db_error(st));
	if (PQntuples(res) != 1 || db_value(res, 0, DS_SECRET) == NULL) {
		db_rollback();
		return GE_MFA_NOT_ENABLED;
	}
	enum code_kind kind;
	long long step;
	if ((st = check_code(a, me->id, db_value(res, 0, DS_SECRET), db_int(res, 0, DS_LAST_STEP),
	    true, code, &kind, &step)) != DB_OK)
		return db_fail(db_error(st));
	if (kind == CODE_WRONG)
		return audit_failure(cx, me->id, me->id, "auth.mfa_disable", meta_reason("wrong_code"),
		    GE_INVALID_MFA_CODE);
	/* Every other session ends: token_version moves on, and this token is
	 * the one kept at the new version (schema/0009_mfa.sql). */
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "method", kind == CODE_TOTP ? "totp" : "recovery_code");
	if ((st = db_exec(a, &res, "DELETE FROM user_mfa WHERE user_id = $1", 1, p)) != DB_OK ||
	    (st = db_exec(a, &res, "DELETE FROM mfa_recovery_codes WHERE user_id = $1", 1, p)) != DB_OK ||
	    (st = db_exec(a, &res, "DELETE FROM mfa_tokens WHERE user_id = $1", 1, p)) != DB_OK ||
	    (st = db_exec(a, &res, "UPDATE users SET token_version = token_version + 1, "
		"kept_jti = $2, kept_version = token_version + 1, updated_at = now() "
		"WHERE id = $1", 2, p)) != DB_OK ||
	    (st = audit_write(cx, a, me->id, me->id, "auth.mfa_disable", "success", m)) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	return GE_OK;
}

enum db_status mfa_issue_token(arena_t *a, const char *user_id, char token[MFA_TOKEN_SIZE])
{
	char random[64], hash[65], ttl[16];
	crypto_random_token(random, sizeof random, 32);
	int n = snprintf(token, MFA_TOKEN_SIZE, "%s.%s", user_id, random);
	sodium_memzero(random, sizeof random);
	if (n < 0 || n >= MFA_TOKEN_SIZE)
		return DB_ERROR;
	crypto_sha256_hex(token, (size_t)n, hash);
	snprintf(ttl, sizeof ttl, "%d", MFA_TOKEN_TTL_SECONDS);
	const char *p[] = { hash, user_id, ttl };
	PGresult *res;
	return db_exec(a, &res, "INSERT INTO mfa_tokens (token_hash, user_id, expires_at) "
	    "VALUES ($1, $2, now() + make_interval(secs => $3::int))", 3, p);
}

enum gala_error mfa_verify(struct svc_ctx *cx, const char *mfa_token, const char *code,
    const char **user_id_out)
{
	arena_t *a = cx->arena;
	char hash[65];
	crypto_sha256_hex(mfa_token, strlen(mfa_token), hash);
	/* The id the token starts with must be its user's. */
	bool shaped = strlen(mfa_token) >= 38 && mfa_token[36] == '.';
	const char *claimed = shaped ? arena_strndup(a, mfa_token, 36) : NULL;
	if (!shaped || !uuid_valid(claimed))
		return audit_failure(cx, NULL, NULL, "auth.mfa_verify", meta_reason("malformed_token"),
		    GE_INVALID_MFA_TOKEN);
	const char *p[] = { hash, claimed };
	PGresult *res;
	enum db_status st = db_begin(a);
	if (st != DB_OK)
		return db_error(st);
	/* Both rows locked: the token's tries, and the last step accepted,
	 * are counted once however many requests arrive together. */
	enum { MV_USER, MV_ATTEMPTS, MV_EXPIRED, MV_USED, MV_SECRET, MV_LAST_STEP };
	if ((st = db_exec(a, &res, "SELECT t.user_id, t.attempts, t.expires_at <= now(), "
	    "t.used_at IS NOT NULL, m.secret, m.last_step "
	    "FROM mfa_tokens t JOIN user_mfa m ON m.user_id = t.user_id "
	    "WHERE t.token_hash = $1 AND t.user_id = $2 AND m.secret IS NOT NULL "
	    "FOR UPDATE OF t, m", 2, p)) != DB_OK)
		return db_fail(db_error(st));
	if (PQntuples(res) != 1)
		return audit_failure(cx, NULL, NULL, "auth.mfa_verify", meta_reason("unknown_token"),
		    GE_INVALID_MFA_TOKEN);
	const char *user_id = arena_strdup(a, db_value(res, 0, MV_USER));
	const char *dead = db_bool(res, 0, MV_USED) ? "used_token" :
	    db_bool(res, 0, MV_EXPIRED) ? "expired_token" :
	    db_int(res, 0, MV_ATTEMPTS) >= MFA_TOKEN_MAX_ATTEMPTS ? "locked_token" : NULL;
	if (dead != NULL)
		return audit_failure(cx, NULL, user_id, "auth.mfa_verify", meta_reason(dead),
		    GE_INVALID_MFA_TOKEN);
	enum code_kind kind;
	long long step = 0;
	if ((st = check_code(a, user_id, db_value(res, 0, MV_SECRET), db_int(res, 0, MV_LAST_STEP),
	    true, code, &kind, &step)) != DB_OK)
		return db_fail(db_error(st));
	if (kind == CODE_WRONG) {
		/* The fifth wrong code is refused as wrong; the token is dead
		 * for the tries after it. */
		if ((st = db_exec(a, &res, "UPDATE mfa_tokens SET attempts = attempts + 1 "
		    "WHERE token_hash = $1 RETURNING attempts", 1, p)) != DB_OK)
			return db_fail(db_error(st));
		cJSON *m = meta_reason("wrong_code");
		cJSON_AddNumberToObject(m, "attempts", (double)db_int(res, 0, 0));
		if ((st = audit_write(cx, a, NULL, user_id, "auth.mfa_verify", "failure", m)) != DB_OK ||
		    (st = db_commit(a)) != DB_OK)
			return db_fail(db_error(st));
		return GE_MFA_CODE_REFUSED;
	}
	char s[24];
	snprintf(s, sizeof s, "%lld", step);
	const char *q[] = { user_id, s };
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "method", kind == CODE_TOTP ? "totp" : "recovery_code");
	if ((st = db_exec(a, &res, "UPDATE mfa_tokens SET used_at = now() WHERE token_hash = $1",
	    1, p)) != DB_OK ||
	    (kind == CODE_TOTP && (st = db_exec(a, &res, "UPDATE user_mfa SET last_step = $2, "
		"updated_at = now() WHERE user_id = $1", 2, q)) != DB_OK) ||
	    (st = audit_write(cx, a, user_id, user_id, "auth.mfa_verify", "success", m)) != DB_OK ||
	    (st = db_commit(a)) != DB_OK)
		return db_fail(db_error(st));
	*user_id_out = user_id;
	return GE_OK;
}
