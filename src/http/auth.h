/* Authentication, roles and CSRF for the pipeline. The token comes from
 * "Authorization: Bearer" or the gala_session cookie. Its signature, expiry,
 * role and CSRF claim are checked at once; the session check in Postgres
 * (the user exists, the token version is current, the jti is not revoked,
 * the role is still the token's) is deferred so that it travels with the
 * route's first statement in one round trip, and aborts that statement
 * when it fails. auth_settle() then has the final word on the answer, so a
 * revoked or outdated token stops working at once. */
#ifndef GALA_HTTP_AUTH_H
#define GALA_HTTP_AUTH_H

#include <stdbool.h>

#include "core/jwt.h"
#include "db/db.h"
#include "http/request.h"

/* The account row behind a session, read by the session check. */
struct auth_profile {
	const char *email;
	const char *full_name;
	bool email_verified;
	const char *created_at;
};

struct auth_user {
	const char *id;              /* the token's subject */
	const char *role;            /* the token's role; the check confirms it */
	struct jwt_claims claims;
	bool from_cookie;
	/* The session check and what it read: use auth_profile(). */
	struct db_deferred check;
	const char *check_params[5];
	char version[24];
	bool checked;
	struct auth_profile profile;
};

/* Deferred: the check goes with the next statement; eager: it runs now
 * and the role is taken from the account (after a role change). */
enum auth_mode { AUTH_DEFERRED, AUTH_EAGER };

/* The pipeline stage: 0 to go on, -1 when it answered (401, 403, 503). */
int auth_stage(struct request *req, enum auth_mode mode);

enum auth_outcome {
	AUTH_SETTLED,     /* the answer stands */
	AUTH_REFUSED,     /* the answer was replaced: 403 for an unverified
	                   * email on a ROUTE_VERIFIED route, else the session
	                   * was not valid (401, or 503) and req->user is NULL */
	AUTH_RETRY,       /* the role changed: run the request again, AUTH_EAGER */
};

/* Completes the session check (sending it now if no statement carried it)
 * and, when it failed, replaces whatever the route answered. */
enum auth_outcome auth_settle(struct request *req);

/* The signed-in caller's account row, once the session check passed; NULL
 * when it failed or the database is unavailable: return at once, the
 * pipeline answers. */
const struct auth_profile *auth_profile(struct request *req);

/* The user object of API.md for the signed-in caller (NULL as above). */
cJSON *auth_user_json(struct request *req);

bool auth_is_admin(const struct request *req);

/* The CSRF decision of API.md, separate for unit tests: true to allow. */
bool csrf_allows(const char *method, const char *origin, const char *frontend_url,
    const char *header_token, const char *claim_token);

#endif
