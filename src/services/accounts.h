/* Accounts: registration, login, email verification, password reset,
 * logout, and the operator's role changes. Every action writes its audit row
 * in its own transaction; mails go out after the commit. */
#ifndef GALA_ACCOUNTS_H
#define GALA_ACCOUNTS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "http/errors.h"
#include "db/db.h"
#include "http/request.h"

#define OTP_TTL_SECONDS 600
#define OTP_MAX_ATTEMPTS 5
#define OTP_RESEND_SECONDS 60
#define RESET_TTL_SECONDS 1800

struct session {
	char token[1024];
	char csrf[80];
	long expires_in;
	cJSON *user;            /* owned by the caller */
};

enum gala_error accounts_register(struct request *req, const char *email, const char *password,
    const char *full_name, const char *role, struct session *out);
enum gala_error accounts_login(struct request *req, const char *email, const char *password,
    struct session *out);
enum gala_error accounts_verify_email(struct request *req, const char *email, const char *otp);
/* *already_verified is set for a verified account. */
enum gala_error accounts_resend_verification(struct request *req, const char *email,
    bool *already_verified);
enum gala_error accounts_forgot_password(struct request *req, const char *email);
enum gala_error accounts_reset_password(struct request *req, const char *token,
    const char *new_password);
enum gala_error accounts_logout(struct request *req);
enum gala_error accounts_logout_all(struct request *req);

/* Operator commands (no request): 0 on success, else a message in err. */
int accounts_create_admin(arena_t *a, const char *email, const char *password,
    const char *full_name, char *err, size_t errlen);
int accounts_set_role(arena_t *a, const char *email, const char *role,
    char *err, size_t errlen);

/* The user object of API.md from a row of ACCOUNTS_USER_COLUMNS. */
cJSON *accounts_user_json(const PGresult *res, int row, int col);

#endif
