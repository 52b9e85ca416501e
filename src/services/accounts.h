/* Accounts: registration, login, email verification, password reset,
 * logout, and the operator's role changes. Every action writes its audit row
 * in its own transaction, and queues its mails in that transaction
 * (services/outbox.h): no request waits on SMTP. */
#ifndef GALA_ACCOUNTS_H
#define GALA_ACCOUNTS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "core/errors.h"
#include "db/db.h"
#include "services/context.h"
#include "services/mfa.h"

#define OTP_TTL_SECONDS 600
#define OTP_MAX_ATTEMPTS 5
/* Wrong codes per account per window, whatever the resends. */
#define OTP_MAX_FAILURES_PER_WINDOW 10
#define OTP_WINDOW_SECONDS 3600
#define OTP_RESEND_SECONDS 60
#define RESET_TTL_SECONDS 1800

/* A session just opened (register, login): the access token, its CSRF token
 * and lifetime, and the user object. Or, when the login's user has
 * two-factor authentication on, only mfa_required, the mfa_token of the
 * second step (services/mfa.h) and its lifetime in expires_in. */
struct issued_session {
	char token[1024];
	char csrf[80];
	long expires_in;
	cJSON *user;            /* owned by the caller */
	bool mfa_required;
	char mfa_token[MFA_TOKEN_SIZE];
};

enum gala_error accounts_register(struct svc_ctx *cx, const char *email, const char *password,
    const char *full_name, const char *role, struct issued_session *out);
enum gala_error accounts_login(struct svc_ctx *cx, const char *email, const char *password,
    struct issued_session *out);
/* A session for user_id, whose credentials were just checked; otp: a
 * second factor was too (amr ["pwd","otp"]). */
enum gala_error accounts_open_session(struct svc_ctx *cx, const char *user_id, bool otp,
    struct issued_session *out);
enum gala_error accounts_verify_email(struct svc_ctx *cx, const char *email, const char *otp);
/* *already_verified is set for a verified account. */
enum gala_error accounts_resend_verification(struct svc_ctx *cx, const char *email,
    bool *already_verified);
enum gala_error accounts_forgot_password(struct svc_ctx *cx, const char *email);
enum gala_error accounts_reset_password(struct svc_ctx *cx, const char *token,
    const char *new_password);
/* POST /api/auth/change-password: the caller's password, checked, is
 * replaced; every session issued before ends and *out is a fresh one.
 * GE_INVALID_CURRENT_PASSWORD (why->param) for a wrong current password. */
enum gala_error accounts_change_password(struct svc_ctx *cx, const char *current,
    const char *new_password, struct issued_session *out, struct refusal *why);
enum gala_error accounts_logout(struct svc_ctx *cx);
enum gala_error accounts_logout_all(struct svc_ctx *cx);

/* Operator commands (no request): 0 on success, else a message in err. */
int accounts_create_admin(arena_t *a, const char *email, const char *password,
    const char *full_name, char *err, size_t errlen);
int accounts_set_role(arena_t *a, const char *email, const char *role,
    char *err, size_t errlen);

#endif
