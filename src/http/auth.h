/* Authentication, roles and CSRF for the pipeline. The token comes from
 * "Authorization: Bearer" or the gala_session cookie; the user, the token
 * version and the revocation of the token's jti are read from Postgres in
 * one query, so a revoked or outdated token stops working at once. */
#ifndef GALA_HTTP_AUTH_H
#define GALA_HTTP_AUTH_H

#include <stdbool.h>

#include "core/jwt.h"
#include "http/request.h"

struct auth_user {
	const char *id;
	const char *email;
	const char *full_name;
	const char *role;
	bool email_verified;
	const char *created_at;
	struct jwt_claims claims;
	bool from_cookie;
};

/* The pipeline stage: 0 to go on, -1 when it answered (401, 403, 503). */
int auth_stage(struct request *req);

/* The user object of API.md for the signed-in caller. */
cJSON *auth_user_json(const struct auth_user *u);

bool auth_is_admin(const struct request *req);

/* The CSRF decision of API.md, separate for unit tests: true to allow. */
bool csrf_allows(const char *method, const char *origin, const char *frontend_url,
    const char *header_token, const char *claim_token);

#endif
