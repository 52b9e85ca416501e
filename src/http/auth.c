#include "autoconf.h"

#include "http/auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/config.h"
#include "core/crypto.h"
#include "http/response.h"
#include "http/router.h"

static bool method_is_safe(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0 ||
	    strcmp(m, "TRACE") == 0;
}

bool csrf_allows(const char *method, const char *origin, const char *frontend_url,
    const char *header_token, const char *claim_token, bool from_cookie)
{
	if (method_is_safe(method) || (origin == NULL && !from_cookie))
		return true;
	if (origin != NULL && strcmp(origin, frontend_url) != 0)
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

const char *auth_request_token(const struct request *req, bool *from_cookie, bool *malformed)
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
	const char *c = request_cookie(req, SESSION_COOKIE);
	if (c != NULL && *c != '\0') {
		*from_cookie = true;
		return c;
	}
	return NULL;
}

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
	struct session *s = arena_calloc(req->arena, 1, sizeof *s);
	if (jwt_verify(token, gala_config->secret_key, (long long)time(NULL), &s->claims) != JWT_OK ||
	    !uuid_valid(s->claims.sub) || !uuid_valid(s->claims.jti) ||
	    role_bit(s->claims.role) == 0) {
		http_respond_error(req, GE_INVALID_TOKEN, NULL, NULL);
		return -1;
	}
	s->id = s->claims.sub;
	s->role = s->claims.role;
	s->from_cookie = from_cookie;
	session_check_defer(s, req->arena, mode == AUTH_EAGER,
	    (req->route->flags & ROUTE_VERIFIED) != 0);
	req->cx.caller = s;
	if (mode == AUTH_EAGER) {
		enum gala_error e = auth_check_result(req);
		if (e != GE_OK) {
			http_respond_error(req, e == GE_CONFLICT ? GE_INTERNAL : e, NULL, NULL);
			return -1;
		}
	}
	return 0;
}

/* The outcome of the session check; once it passed, the access log names
 * the caller. */
static enum gala_error auth_check_result(struct request *req)
{
	enum gala_error e = session_check_result(req->cx.caller);
	if (e == GE_OK)
		req->cx.log_user_id = req->cx.caller->id;
	return e;
}

enum auth_outcome auth_settle(struct request *req)
{
	if (req->cx.caller == NULL)
		return AUTH_SETTLED;
	enum gala_error e = auth_check_result(req);
	if (e == GE_CONFLICT)
		return AUTH_RETRY;
	if (e == GE_OK)
		return AUTH_SETTLED;
	response_replace(req, e);
	if (e != GE_EMAIL_NOT_VERIFIED)
		req->cx.caller = NULL;
	return AUTH_REFUSED;
}

int auth_stage(struct request *req, enum auth_mode mode)
{
	const struct route *r = req->route;
	if (r->auth == AUTH_NONE)
		return 0;
	bool from_cookie, malformed;
	const char *token = auth_request_token(req, &from_cookie, &malformed);
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
	if (r->roles != 0 && (r->roles & role_bit(req->cx.caller->role)) == 0) {
		http_respond_error(req, GE_FORBIDDEN, NULL, "this action needs another role");
		return -1;
	}
	/* An admin-only route with ADMIN_MFA_REQUIRED wants the second factor. */
	if (r->roles == ROLE_BIT_ADMIN && gala_config->admin_mfa_required &&
	    !req->cx.caller->claims.otp) {
		http_respond_error(req, GE_MFA_REQUIRED, NULL, NULL);
		return -1;
	}
	if (!csrf_allows(req->method, request_header(req, "Origin"), gala_config->frontend_url,
		request_header(req, "X-CSRF-Token"), req->cx.caller->claims.csrf,
		req->cx.caller->from_cookie)) {
		http_respond_error(req, GE_CSRF_FAILED, NULL,
		    "CSRF check failed: send X-CSRF-Token from the login response");
		return -1;
	}
	return 0;
}
