/* The session behind a verified token: who the token says the caller is,
 * and the check in Postgres that the session still holds (the account
 * exists, the token's version is current, its jti is not revoked, its role
 * is still the account's). The check is deferred (db_defer): it travels
 * with the route's first statement in one round trip and, when it fails,
 * aborts that statement (schema/0007_session_check.sql). */
#ifndef GALA_SERVICES_SESSION_H
#define GALA_SERVICES_SESSION_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "core/errors.h"
#include "core/jwt.h"
#include "db/db.h"

/* The account row behind a session, read by the check. */
struct session_profile {
	const char *email;
	const char *full_name;
	bool email_verified;
	const char *created_at;
	bool mfa_enabled;
};

struct session {
	const char *id;              /* the token's subject */
	const char *role;            /* the token's role; the check confirms it */
	struct jwt_claims claims;
	bool from_cookie;            /* the token came in the session cookie */
	/* The check and what it read: use session_profile(). */
	arena_t *arena;
	struct db_deferred check;
	const char *check_params[5];
	char version[24];
	bool checked;
	struct session_profile profile;
};

/* Queues the check of s (id, role and claims set from a verified token).
 * take_role: the account's role is taken, whatever the token says (the
 * request runs again after a role change); else a changed role fails the
 * check with GE_CONFLICT. need_verified: an unverified email fails it with
 * GE_EMAIL_NOT_VERIFIED. */
void session_check_defer(struct session *s, arena_t *a, bool take_role, bool need_verified);

/* The outcome of the check, sending it now if nothing carried it: GE_OK
 * (the profile is read), GE_INVALID_TOKEN, GE_CONFLICT (the role changed),
 * GE_EMAIL_NOT_VERIFIED, GE_DB_UNAVAILABLE or GE_INTERNAL. */
enum gala_error session_check_result(struct session *s);

/* The caller's account row once the check passed; NULL when it failed or
 * the database is unavailable: return at once, the pipeline answers. */
const struct session_profile *session_profile(struct session *s);

/* The user object of API.md for the caller (NULL as above). */
cJSON *session_user_json(struct session *s);

bool session_is_admin(const struct session *s);

#endif
