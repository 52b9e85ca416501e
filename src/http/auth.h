/* Authentication, roles and CSRF for the pipeline. The token comes from
 * "Authorization: Bearer" or the session cookie. Its signature, expiry,
 * role and CSRF claim are checked at once; the session check in Postgres
 * (services/session.h) is deferred so that it travels with the route's
 * first statement in one round trip, and aborts that statement when it
 * fails. auth_settle() then has the final word on the answer, so a revoked
 * or outdated token stops working at once. The caller is req->cx.caller. */
#ifndef GALA_HTTP_AUTH_H
#define GALA_HTTP_AUTH_H

#include <stdbool.h>

#include "http/request.h"
#include "services/session.h"

/* The session cookie. __Host-: only this host over HTTPS may set it, with
 * Path=/ and no Domain, so a sibling subdomain cannot plant one. */
#define SESSION_COOKIE "__Host-gala_session"

/* Deferred: the check goes with the next statement; eager: it runs now
 * and the role is taken from the account (after a role change). */
enum auth_mode { AUTH_DEFERRED, AUTH_EAGER };

/* The pipeline stage: 0 to go on, -1 when it answered (401, 403, 503). */
int auth_stage(struct request *req, enum auth_mode mode);

enum auth_outcome {
	AUTH_SETTLED,     /* the answer stands */
	AUTH_REFUSED,     /* the answer was replaced: 403 for an unverified
	                   * email on a ROUTE_VERIFIED route, else the session
	                   * was not valid (401, or 503) and req->cx.caller is
	                   * NULL */
	AUTH_RETRY,       /* the role changed: run the request again, AUTH_EAGER */
};

/* Completes the session check (sending it now if no statement carried it)
 * and, when it failed, replaces whatever the route answered. */
enum auth_outcome auth_settle(struct request *req);

/* --- For the unit tests. --- */

/* The token of the request, or NULL: "Authorization: Bearer <token>", else
 * the session cookie (*from_cookie). *malformed when an Authorization
 * header is there but is not a Bearer token. */
const char *auth_request_token(const struct request *req, bool *from_cookie, bool *malformed);

/* The CSRF decision: true to allow. A safe method passes. An unsafe one
 * with an Origin needs that Origin to be FRONTEND_URL and X-CSRF-Token to
 * match the token's claim; without an Origin, a bearer token passes (a
 * server-to-server client) but a cookie session still needs the token. */
bool csrf_allows(const char *method, const char *origin, const char *frontend_url,
    const char *header_token, const char *claim_token, bool from_cookie);

#endif
