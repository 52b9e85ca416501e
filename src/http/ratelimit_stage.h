/* The limiter in the pipeline: which keys of services/ratelimit.h a
 * request is counted under, and the answers and headers of API.md.
 * The route table's rate rule picks the policies:
 *   RATE_AUTH        "auth"        per client IP
 *   RATE_AUTH_EMAIL  "auth-email"  per target email (the body's "email",
 *                                  as the database lowers it), plus "auth"
 *                                  per client IP
 *   RATE_AUTH_USER   "auth-user"   per user: the signed-in caller, or the
 *                                  one the body's "mfa_token" names, plus
 *                                  "auth" per client IP
 *   RATE_WRITE       "write"       per user, per client IP when anonymous
 * IPv6 clients are counted per /64, the block one subscriber gets.
 * A request without valid credentials to a route that needs them counts
 * against its client IP all the same (ratelimit_count_anonymous). */
#ifndef GALA_RATELIMIT_STAGE_H
#define GALA_RATELIMIT_STAGE_H

#include <stddef.h>

#include "http/request.h"
#include "services/ratelimit.h"

/* Queues the checks of the route's policies, so that what travels with
 * them does not run when one refuses: the idempotency claim, and for the
 * write rule the handler's first statement too (a write handler therefore
 * does nothing outside the database before its first statement). A no-op
 * for RATE_NONE routes and when RATE_LIMIT_ENABLED is false. */
void ratelimit_stage(struct request *req);

/* Before the handler: the checks of the auth rule (anonymous callers,
 * handlers that hash passwords) are settled now. 0 to go on, -1 when it
 * answered (429, or 503 when Postgres cannot count). */
int ratelimit_gate(struct request *req);

/* Completes the checks (sending them now if nothing carried them) and
 * has the last word: answers 429 (with Retry-After) or 503 in place of
 * whatever the route answered, and sets RateLimit-Policy and RateLimit.
 * 0, or -1 when it answered. */
int ratelimit_settle(struct request *req);

/* For a limited route whose request was refused 401 (no, or no valid,
 * credentials): counts it under the route's per-IP policy ("write" for
 * the write rule, else "auth"), so that a flood of anonymous or badly
 * signed requests meets 429 like any other (API.md), and answers 429 in
 * place of the 401 once that policy is spent. Sets the RateLimit fields;
 * leaves the 401 alone when Postgres cannot count. */
void ratelimit_count_anonymous(struct request *req);

/* For a limited route whose request was refused before the limiter ran
 * (415, malformed JSON, 401, 403 CSRF or role): sets RateLimit-Policy and
 * RateLimit from the buckets as they stand, without counting the request.
 * Does nothing for 5xx answers or when Postgres cannot answer. */
void ratelimit_annotate(struct request *req);

/* --- For the unit tests. --- */

/* The header values, e.g. "\"auth\";q=10;w=60, \"auth-email\";q=10;w=60"
 * and "\"auth\";r=7;t=42", into out (truncated to outlen). */
void ratelimit_format_policy(const struct ratelimit_result *r, size_t n, char *out,
    size_t outlen);
void ratelimit_format_state(const struct ratelimit_result *r, char *out, size_t outlen);

#endif
