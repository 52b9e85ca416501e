#include "autoconf.h"

#include "http/auth.h"

#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <time.h>

#include "core/config.h"
#include "core/crypto.h"
#include "db/db.h"
#include "http/json.h"
#include "http/response.h"
#include "http/router.h"

static bool method_is_safe(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0 ||
	    strcmp(m, "TRACE") == 0;
}

bool csrf_allows(const char *method, const char *origin, const char *frontend_url,
    const char *header_token, const char *claim_token)
{
	if (method_is_safe(method) || origin == NULL)
		return true;
	if (strcmp(origin, frontend_url) != 0)
		return false;
	if (header_token == NULL || claim_token == NULL || *claim_token == '\0')
		return false;
	return crypto_str_equal(header_token, claim_token);
}

static unsigned role_bit(const char *role)
{
	if (strcmp(role, "customer") == 0)
		return ROLE_BIT_CUSTOMER;
	if (strcmp(role, "provider") == 0)
		return ROLE_BIT_PROVIDER;
	if (strcmp(role, "admin") == 0)
		return ROLE_BIT_ADMIN;
	return 0;
}

/* The token of the request, or NULL; *malformed when an Authorization
 * header is there but is not a Bearer token. */
static const char *request_token(struct request *req, bool *from_cookie, bool *malformed)
{
	*from_cookie = false;
	*malformed = false;
	const char *h = request_header(req, "Authorization");
	if (h != NULL) {
		if (strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0') {
			*malformed = true;
			return NULL;
		}
		const char *t = h + 7;
		while (*t == ' ')
			t++;
		return t;
	}
	const char *c = request_cookie(req, "gala_session");
	if (c != NULL && *c != '\0') {
		*from_cookie = true;
		return c;
	}
	return NULL;
}

static int auth_load_user(struct request *req, const char *token, bool from_cookie)
{
	struct jwt_claims claims;
	if (jwt_verify(token, gala_config->secret_key, (long long)time(NULL), &claims) != JWT_OK ||
	    !uuid_valid(claims.sub) || !uuid_valid(claims.jti)) {
		http_respond_error(req, GE_INVALID_TOKEN, NULL, NULL);
		return -1;
	}
	const char *params[] = { claims.sub, claims.jti };
	PGresult *res;
	enum db_status st = db_exec(req->arena, &res,
	    "SELECT u.id, u.email, u.full_name, u.role, u.email_verified, "
	    "to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
	    "u.token_version, EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = $2::uuid) "
	    "FROM users u WHERE u.id = $1::uuid", 2, params);
	if (st == DB_UNAVAILABLE) {
		http_respond_error(req, GE_DB_UNAVAILABLE, NULL, NULL);
		return -1;
	}
	if (st != DB_OK) {
		http_respond_error(req, GE_INTERNAL, NULL, NULL);
		return -1;
	}
	if (PQntuples(res) != 1 || db_bool(res, 0, 7) ||
	    strtoll(db_value(res, 0, 6), NULL, 10) != claims.tv) {
		http_respond_error(req, GE_INVALID_TOKEN, NULL, NULL);
		return -1;
	}
	struct auth_user *u = arena_calloc(req->arena, 1, sizeof *u);
	u->id = db_value(res, 0, 0);
	u->email = db_value(res, 0, 1);
	u->full_name = db_value(res, 0, 2);
	u->role = db_value(res, 0, 3);
	u->email_verified = db_bool(res, 0, 4);
	u->created_at = db_value(res, 0, 5);
	u->claims = claims;
	u->from_cookie = from_cookie;
	req->user = u;
	req->log_user_id = u->id;
	return 0;
}

int auth_stage(struct request *req)
{
	const struct route *r = req->route;
	if (r->auth == AUTH_NONE)
		return 0;
	bool from_cookie, malformed;
	const char *token = request_token(req, &from_cookie, &malformed);
	if (malformed) {
		http_respond_error(req, GE_INVALID_TOKEN, NULL,
		    "the Authorization header must be \"Bearer <token>\"");
		return -1;
	}
	if (token == NULL) {
		if (r->auth == AUTH_REQUIRED) {
			http_respond_error(req, GE_AUTHENTICATION_REQUIRED, NULL, NULL);
			return -1;
		}
		return 0;
	}
	if (auth_load_user(req, token, from_cookie) != 0) {
		/* An optional route still refuses a bad token: the client
		 * believes it is signed in and should find out. */
		return -1;
	}
	if (r->roles != 0 && (r->roles & role_bit(req->user->role)) == 0) {
		http_respond_error(req, GE_FORBIDDEN, NULL, "this action needs another role");
		return -1;
	}
	if (!csrf_allows(req->method, request_header(req, "Origin"), gala_config->frontend_url,
		request_header(req, "X-CSRF-Token"), req->user->claims.csrf)) {
		http_respond_error(req, GE_CSRF_FAILED, NULL,
		    "CSRF check failed: send X-CSRF-Token from the login response");
		return -1;
	}
	return 0;
}

cJSON *auth_user_json(const struct auth_user *u)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", u->id);
	cJSON_AddStringToObject(o, "email", u->email);
	cJSON_AddStringToObject(o, "full_name", u->full_name);
	cJSON_AddStringToObject(o, "role", u->role);
	cJSON_AddBoolToObject(o, "email_verified", u->email_verified);
	cJSON_AddStringToObject(o, "created_at", u->created_at);
	return o;
}

bool auth_is_admin(const struct request *req)
{
	return req->user != NULL && strcmp(req->user->role, "admin") == 0;
}
