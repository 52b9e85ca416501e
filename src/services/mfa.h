/* Two-factor authentication with TOTP (API.md, Two-factor authentication):
 * setup and its confirmation, turning it off, and the second step of a
 * login. The secret is kept sealed (libsodium secretbox under a key derived
 * from SECRET_KEY), recovery codes and mfa_tokens only as hashes (keyed,
 * and SHA-256 of 256 random bits). Every action writes its audit row in
 * the transaction of its change; a failure writes its own. */
#ifndef GALA_SERVICES_MFA_H
#define GALA_SERVICES_MFA_H

#include <stdbool.h>

#include "core/errors.h"
#include "core/totp.h"
#include "db/db.h"
#include "services/context.h"

#define MFA_TOKEN_TTL_SECONDS 300
#define MFA_TOKEN_MAX_ATTEMPTS 5
#define MFA_RECOVERY_CODES 10
/* "<user id>.<43 base64url characters>" + NUL */
#define MFA_TOKEN_SIZE 81
/* "xxxxx-xxxxx": ten characters of base32's alphabet, lower case, + NUL. */
#define MFA_RECOVERY_CODE_SIZE 12

/* A setup to show once: nothing of it is stored in the clear. */
struct mfa_setup {
	char secret[TOTP_SECRET_B32_LEN];
	const char *otpauth_uri;        /* from the arena */
	char recovery_codes[MFA_RECOVERY_CODES][MFA_RECOVERY_CODE_SIZE];
};

/* A fresh pending secret and recovery codes for the caller, replacing the
 * pending ones. GE_MFA_ALREADY_ENABLED when MFA is on. */
enum gala_error mfa_totp_setup(struct svc_ctx *cx, struct mfa_setup *out);

/* Turns MFA on with a current code of the pending secret; its recovery
 * codes replace any older ones. GE_MFA_ALREADY_ENABLED, or
 * GE_INVALID_MFA_CODE (a wrong code, or no setup pending: why->message). */
enum gala_error mfa_totp_confirm(struct svc_ctx *cx, const char *code, struct refusal *why);

/* Turns MFA off with a current code or an unused recovery code, and ends
 * every session of the caller but this one. GE_MFA_NOT_ENABLED,
 * GE_INVALID_MFA_CODE. */
enum gala_error mfa_totp_disable(struct svc_ctx *cx, const char *code);

/* In the login's transaction: a new mfa_token for user_id into token,
 * valid MFA_TOKEN_TTL_SECONDS. It reads "<user id>.<random>": the limiter
 * counts /mfa/verify per user from it (http/ratelimit_stage.c). */
enum db_status mfa_issue_token(arena_t *a, const char *user_id, char token[MFA_TOKEN_SIZE]);

/* The login's second step: a TOTP or an unused recovery code of the
 * mfa_token's user spends the token; *user_id is then the user, for whom
 * the caller opens the session (amr ["pwd","otp"]). GE_INVALID_MFA_TOKEN
 * (unknown, used, expired, or 5 wrong codes), GE_MFA_CODE_REFUSED (a
 * wrong code, counted). */
enum gala_error mfa_verify(struct svc_ctx *cx, const char *mfa_token, const char *code,
    const char **user_id);

#endif
