/* Rate limits (API.md, Conventions: Rate limits): GCRA with a burst of N
 * requests refilled continuously at N per window W, i.e. one request every
 * emission interval T = W/N. The state of a key is one row of rate_limits
 * (its theoretical arrival time, "tat"); one INSERT ... ON CONFLICT DO
 * UPDATE per check decides in SQL and moves tat only for an admitted
 * request, so refused requests do not count and concurrent workers of any
 * number of hosts cannot lose an update.
 *
 * The mechanism knows keys and quotas, not routes: which keys a request is
 * counted under is the pipeline's business (http/ratelimit_stage.h). */
#ifndef GALA_RATELIMIT_H
#define GALA_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "db/db.h"

/* In the order that breaks ties for the RateLimit field. */
enum ratelimit_policy {
	RL_AUTH_EMAIL,
	RL_AUTH_USER,
	RL_AUTH,
	RL_WRITE,
};
/* How many policies there are: RL_WRITE stays the last. */
#define RL_POLICY_COUNT (RL_WRITE + 1)

struct ratelimit_quota {
	int requests;          /* N, the burst */
	int window_seconds;    /* W */
};

/* A key of rate_limits with the quota it is checked against. A key of
 * "auth-email:<address>" is stored as the hash of the address lowered by
 * the database (gala_rate_key(), schema 0014), as accounts match it. */
struct ratelimit_check {
	const char *key;
	enum ratelimit_policy policy;
	struct ratelimit_quota quota;
};

/* One policy's answer for this request. */
struct ratelimit_result {
	enum ratelimit_policy policy;
	struct ratelimit_quota quota;
	bool allowed;
	long long ahead_us;    /* tat - now after the check, >= 0 */
};

/* One check, queued as a deferred statement (db_defer) that raises on a
 * refusal, so that what travels with it does not run; and when a second
 * check refuses, the first one's count rolls back with it. */
struct ratelimit_pending {
	struct ratelimit_check check;
	struct db_deferred stmt;
	const char *params[3];
	char t[24], burst[24];
};

void ratelimit_queue(struct ratelimit_pending *p, const struct ratelimit_check *c);

/* The outcome of a sent check into *out: DB_OK (allowed or refused), or
 * the status that kept it from counting. */
enum db_status ratelimit_result_of(const struct ratelimit_pending *p,
    struct ratelimit_result *out);

/* A count that a failed statement sent with it rolled back (stmt.undone)
 * is made again: a request that failed still counts. Logged on failure. */
void ratelimit_count_again(arena_t *a, const struct ratelimit_pending *p);

/* One GCRA check of key against q, sent at once: one statement, atomic
 * however many processes check the same key at once. Fills out for DB_OK. */
enum db_status ratelimit_check(arena_t *a, const char *key, enum ratelimit_policy policy,
    const struct ratelimit_quota *q, struct ratelimit_result *out);

/* The bucket of c as it stands, without counting (0 ahead for a key with
 * no row). */
enum db_status ratelimit_peek(arena_t *a, const struct ratelimit_check *c,
    struct ratelimit_result *out);

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

/* The address a client is counted under: IPv4 as is, IPv6 as its /64
 * ("2001:db8:1:2::/64"); anything else as is. */
void ratelimit_client_id(const char *ip, char *out, size_t outlen);

#endif
