#include "autoconf.h"

#include "http/auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
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

/* The session check raises, rather than answering with a verdict column,
 * when the token's version is outdated, its jti revoked (logout) or the
 * account's role no longer the token's: the error aborts what was sent
 * with it (schema/0007_session_check.sql). A user row Gala never deletes;
 * were one deleted by hand, the check finds no row and the request is
 * refused all the same (401), though a statement sent with it has run.
 * $4 NULL skips the role comparison (the account's role is then taken);
 * $5 true refuses an unverified email (GA403, the routes of ROUTE_VERIFIED). */
#define SESSION_CHECK_SQL "SELECT u.email, u.full_name, u.role, u.email_verified, " \
	SQL_TS("u.created_at") ", CASE " \
	"WHEN u.token_version <> $3::bigint " \
	"OR EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = $2::uuid) " \
	"THEN gala_raise('GA401', 'the session is not valid') " \
	"WHEN $4::text IS NOT NULL AND u.role <> $4::text " \
	"THEN gala_raise('GA409', 'the role of the account changed') " \
	"WHEN $5::boolean AND NOT u.email_verified " \
	"THEN gala_raise('GA403', 'the email address is not verified') END " \
	"FROM users u WHERE u.id = $1::uuid"

/* The same check as a function (schema/0008_session_check_function.sql),
 * for unnamed statements: its query is planned once per session, where an
 * unnamed SESSION_CHECK_SQL would be planned on every request. */
#define SESSION_CHECK_CALL_SQL "SELECT * FROM gala_session_check(" \
	"$1::uuid, $2::uuid, $3::bigint, $4::text, $5::boolean)"

static enum gala_error auth_check_result(struct request *req);

static void response_replace(struct request *req, enum gala_error e)
{
	req->resp = (struct response){ 0 };
	http_respond_error(req, e, NULL, NULL);
}

/* The caller as the token describes it; the check is queued (and, when
 * eager, run at once). 0, or -1 with a 401 answered. */
static int auth_start_session(struct request *req, const char *token, bool from_cookie,
    enum auth_mode mode)
{
	struct auth_user *u = arena_calloc(req->arena, 1, sizeof *u);
	if (jwt_verify(token, gala_config->secret_key, (long long)time(NULL), &u->claims) != JWT_OK ||
	    !uuid_valid(u->claims.sub) || !uuid_valid(u->claims.jti) ||
	    role_bit(u->claims.role) == 0) {
		http_respond_error(req, GE_INVALID_TOKEN, NULL, NULL);
		return -1;
	}
	u->id = u->claims.sub;
	u->role = u->claims.role;
	u->from_cookie = from_cookie;
	snprintf(u->version, sizeof u->version, "%lld", u->claims.tv);
	u->check_params[0] = u->claims.sub;
	u->check_params[1] = u->claims.jti;
	u->check_params[2] = u->version;
	u->check_params[3] = mode == AUTH_DEFERRED ? u->claims.role : NULL;
	u->check_params[4] = req->route->flags & ROUTE_VERIFIED ? "true" : "false";
	u->check = (struct db_deferred){
		.sql = db_prepares_statements() ? SESSION_CHECK_SQL : SESSION_CHECK_CALL_SQL,
		.nparams = 5,
		.params = u->check_params };
	db_defer(&u->check);
	req->user = u;
	if (mode == AUTH_EAGER) {
		enum gala_error e = auth_check_result(req);
		if (e != GE_OK) {
			http_respond_error(req, e == GE_CONFLICT ? GE_INTERNAL : e, NULL, NULL);
			return -1;
		}
	}
	return 0;
}

/* The outcome of the session check, sending it first if it still waits:
 * GE_OK (the profile is filled), GE_INVALID_TOKEN, GE_CONFLICT (the role
 * changed), GE_EMAIL_NOT_VERIFIED, GE_DB_UNAVAILABLE or GE_INTERNAL. */
static enum gala_error auth_check_result(struct request *req)
{
	struct auth_user *u = req->user;
	if (!u->check.sent)
		db_flush(req->arena);
	const PGresult *res = u->check.res;
	switch (u->check.status) {
	case DB_OK:
		if (PQntuples(res) != 1)
			return GE_INVALID_TOKEN;
		break;
	case DB_ERROR:
		if (strcmp(db_sqlstate(res), "GA401") == 0)
			return GE_INVALID_TOKEN;
		if (strcmp(db_sqlstate(res), "GA409") == 0)
			return GE_CONFLICT;
		if (strcmp(db_sqlstate(res), "GA403") == 0)
			return GE_EMAIL_NOT_VERIFIED;
		return GE_INTERNAL;
	case DB_UNAVAILABLE:
	case DB_REFUSED:
		return GE_DB_UNAVAILABLE;
	}
	if (!u->checked) {
		u->profile.email = db_value(res, 0, 0);
		u->profile.full_name = db_value(res, 0, 1);
		u->role = db_value(res, 0, 2);
		u->profile.email_verified = db_bool(res, 0, 3);
		char t[DB_TIME_LEN];
		u->profile.created_at = arena_strdup(req->arena, db_time(res, 0, 4, t));
		u->checked = true;
		req->log_user_id = u->id;
	}
	return GE_OK;
}

const struct auth_profile *auth_profile(struct request *req)
{
	if (req->user == NULL)
		return NULL;
	return auth_check_result(req) == GE_OK ? &req->user->profile : NULL;
}

enum auth_outcome auth_settle(struct request *req)
{
	if (req->user == NULL)
		return AUTH_SETTLED;
	enum gala_error e = auth_check_result(req);
	if (e == GE_CONFLICT)
		return AUTH_RETRY;
	if (e == GE_OK)
		return AUTH_SETTLED;
	response_replace(req, e);
	if (e != GE_EMAIL_NOT_VERIFIED)
		req->user = NULL;
	return AUTH_REFUSED;
}

int auth_stage(struct request *req, enum auth_mode mode)
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
	if (auth_start_session(req, token, from_cookie, mode) != 0) {
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

cJSON *auth_user_json(struct request *req)
{
	const struct auth_profile *p = auth_profile(req);
	if (p == NULL)
		return NULL;
	const struct auth_user *u = req->user;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", u->id);
	cJSON_AddStringToObject(o, "email", p->email);
	cJSON_AddStringToObject(o, "full_name", p->full_name);
	cJSON_AddStringToObject(o, "role", u->role);
	cJSON_AddBoolToObject(o, "email_verified", p->email_verified);
	cJSON_AddStringToObject(o, "created_at", p->created_at);
	return o;
}

bool auth_is_admin(const struct request *req)
{
	return req->user != NULL && strcmp(req->user->role, "admin") == 0;
}
