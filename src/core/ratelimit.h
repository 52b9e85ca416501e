/* Rate limits (API.md, Conventions: Rate limits): GCRA with a burst of N
 * requests refilled continuously at N per window W, i.e. one request every
 * emission interval T = W/N. The state of a key is one row of rate_limits
 * (its theoretical arrival time, "tat"); one INSERT ... ON CONFLICT DO
 * UPDATE per check decides in SQL and moves tat only for an admitted
 * request, so refused requests do not count and concurrent workers of any
 * number of hosts cannot lose an update.
 *
 * The route table's rate rule picks the policies:
 *   RATE_AUTH        "auth"        per client IP
 *   RATE_AUTH_EMAIL  "auth-email"  per target email (the body's "email",
 *                                  lower-cased), plus "auth" per client IP
 *   RATE_WRITE       "write"       per user, per client IP when anonymous
 * IPv6 clients are counted per /64, the block one subscriber gets. */
#ifndef GALA_RATELIMIT_H
#define GALA_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "db/db.h"
#include "http/request.h"

/* In the order that breaks ties for the RateLimit field. */
enum ratelimit_policy {
	RL_AUTH_EMAIL,
	RL_AUTH,
	RL_WRITE,
};

struct ratelimit_quota {
	int requests;          /* N, the burst */
	int window_seconds;    /* W */
};

/* One policy's answer for this request. */
struct ratelimit_result {
	enum ratelimit_policy policy;
	struct ratelimit_quota quota;
	bool allowed;
	long long ahead_us;    /* tat - now after the check, >= 0 */
};

/* The pipeline stage: queues the checks of the route's policies as
 * deferred statements (db_defer) that raise on a refusal, so that what
 * travels with them does not run: the idempotency claim, and for the write
 * rule the handler's first statement too (a write handler therefore does
 * nothing outside the database before its first statement). A no-op for
 * RATE_NONE routes and when RATE_LIMIT_ENABLED is false. */
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

/* For a limited route whose request was refused before the limiter ran
 * (415, malformed JSON, 401, 403 CSRF or role): sets RateLimit-Policy and
 * RateLimit from the buckets as they stand, without counting the request.
 * Does nothing for 5xx answers or when Postgres cannot answer. */
void ratelimit_annotate(struct request *req);

/* One GCRA check of key against q: one statement, atomic however many
 * processes check the same key at once. Fills out for DB_OK. */
enum db_status ratelimit_check(arena_t *a, const char *key, enum ratelimit_policy policy,
    const struct ratelimit_quota *q, struct ratelimit_result *out);

/* --- Pure parts, exposed for the unit tests. --- */

const char *ratelimit_policy_name(enum ratelimit_policy p);

/* T = W/N in microseconds (at least 1). */
long long ratelimit_emission_us(const struct ratelimit_quota *q);

/* "r": requests that could be made right now. */
int ratelimit_remaining(const struct ratelimit_result *r);

/* "t": whole seconds until the full burst is available again. */
long long ratelimit_reset_seconds(const struct ratelimit_result *r);

/* Retry-After of a refused request: seconds until one request would be
 * admitted, at least 1. */
long long ratelimit_retry_after(const struct ratelimit_result *r);

/* The result the RateLimit field names: least remaining, ties broken by
 * the policy order. n >= 1. */
const struct ratelimit_result *ratelimit_tightest(const struct ratelimit_result *r, size_t n);

/* The header values, e.g. "\"auth\";q=10;w=60, \"auth-email\";q=10;w=60"
 * and "\"auth\";r=7;t=42", into out (truncated to outlen). */
void ratelimit_format_policy(const struct ratelimit_result *r, size_t n, char *out,
    size_t outlen);
void ratelimit_format_state(const struct ratelimit_result *r, char *out, size_t outlen);

/* The address a client is counted under: IPv4 as is, IPv6 as its /64
 * ("2001:db8:1:2::/64"); anything else as is. */
void ratelimit_client_id(const char *ip, char *out, size_t outlen);

#endif
