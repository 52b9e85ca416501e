#include "autoconf.h"

#include "services/ratelimit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define US_PER_S 1000000LL

const char *ratelimit_policy_name(enum ratelimit_policy p)
{
	switch (p) {
	case RL_AUTH_EMAIL:
		return "auth-email";
	case RL_AUTH_USER:
		return "auth-user";
	case RL_AUTH:
		return "auth";
	case RL_WRITE:
		return "write";
	}
	return "unknown";
}

long long ratelimit_emission_us(const struct ratelimit_quota *q)
{
	long long t = (long long)q->window_seconds * US_PER_S / q->requests;
	return t > 0 ? t : 1;
}

/* The bucket holds N emission intervals: exactly N requests from empty. */
static long long burst_us(const struct ratelimit_quota *q)
{
	return ratelimit_emission_us(q) * q->requests;
}

int ratelimit_remaining(const struct ratelimit_result *r)
{
	long long room = burst_us(&r->quota) - r->ahead_us;
	if (room <= 0)
		return 0;
	long long n = room / ratelimit_emission_us(&r->quota);
	return n > r->quota.requests ? r->quota.requests : (int)n;
}

static long long ceil_seconds(long long us)
{
	return us <= 0 ? 0 : (us + US_PER_S - 1) / US_PER_S;
}

long long ratelimit_reset_seconds(const struct ratelimit_result *r)
{
	return ceil_seconds(r->ahead_us);
}

long long ratelimit_retry_after(const struct ratelimit_result *r)
{
	long long wait = r->ahead_us + ratelimit_emission_us(&r->quota) - burst_us(&r->quota);
	long long s = ceil_seconds(wait);
	return s < 1 ? 1 : s;
}

const struct ratelimit_result *ratelimit_tightest(const struct ratelimit_result *r, size_t n)
{
	const struct ratelimit_result *best = &r[0];
	for (size_t i = 1; i < n; i++) {
		int a = ratelimit_remaining(&r[i]), b = ratelimit_remaining(best);
		if (a < b || (a == b && r[i].policy < best->policy))
			best = &r[i];
	}
	return best;
}

void ratelimit_client_id(const char *ip, char *out, size_t outlen)
{
	unsigned char a[16];
	char text[INET6_ADDRSTRLEN];
	if (strchr(ip, ':') == NULL || inet_pton(AF_INET6, ip, a) != 1) {
		snprintf(out, outlen, "%s", ip);
		return;
	}
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (memcmp(a, v4mapped, sizeof v4mapped) == 0) {
		snprintf(out, outlen, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
		return;
	}
	memset(a + 8, 0, 8);
	inet_ntop(AF_INET6, a, text, sizeof text);
	snprintf(out, outlen, "%s/64", text);
}

/* The GCRA step, all in one statement. $2 is T and $3 the burst (N * T),
 * both in microseconds. A request is admitted when max(tat, now) + T is
 * at most now + burst; only then does tat move. A new key starts full. The
 * second column is tat - now in microseconds, for the headers. A refusal
 * raises GA429 with that number as its message: the statement is deferred
 * and travels with others, which the error keeps from running (and when
 * a second policy refuses, the first one's count is rolled back with it). */
#define AHEAD_US "greatest(0, round(extract(epoch FROM r.tat - now()) * 1000000))::bigint"
static const char check_sql[] =
    "INSERT INTO rate_limits AS r (key, tat, allowed) "
    "VALUES ($1, now() + $2::bigint * interval '1 microsecond', true) "
    "ON CONFLICT (key) DO UPDATE SET "
    "allowed = greatest(r.tat, now()) + $2::bigint * interval '1 microsecond' "
    "<= now() + $3::bigint * interval '1 microsecond', "
    "tat = CASE WHEN greatest(r.tat, now()) + $2::bigint * interval '1 microsecond' "
    "<= now() + $3::bigint * interval '1 microsecond' "
    "THEN greatest(r.tat, now()) + $2::bigint * interval '1 microsecond' ELSE r.tat END "
    "RETURNING r.allowed, " AHEAD_US ", "
    "CASE WHEN NOT r.allowed THEN gala_raise('GA429', " AHEAD_US "::text) END";
enum { RL_COL_ALLOWED, RL_COL_AHEAD_US };

void ratelimit_queue(struct ratelimit_pending *p, const struct ratelimit_check *c)
{
	const struct ratelimit_quota *q = &c->quota;
	p->check = *c;
	snprintf(p->t, sizeof p->t, "%lld", ratelimit_emission_us(q));
	snprintf(p->burst, sizeof p->burst, "%lld", burst_us(q));
	p->params[0] = c->key;
	p->params[1] = p->t;
	p->params[2] = p->burst;
	p->stmt = (struct db_deferred){ .sql = check_sql, .nparams = 3, .params = p->params };
	db_defer(&p->stmt);
}

enum db_status ratelimit_result_of(const struct ratelimit_pending *p,
    struct ratelimit_result *out)
{
	*out = (struct ratelimit_result){ p->check.policy, p->check.quota, true, 0 };
	if (p->stmt.status == DB_OK) {
		out->ahead_us = db_int(p->stmt.res, 0, RL_COL_AHEAD_US);
		return DB_OK;
	}
	if (p->stmt.status == DB_ERROR && strcmp(db_sqlstate(p->stmt.res), "GA429") == 0) {
		const char *m = PQresultErrorField(p->stmt.res, PG_DIAG_MESSAGE_PRIMARY);
		out->allowed = false;
		out->ahead_us = m != NULL ? strtoll(m, NULL, 10) : 0;
		return DB_OK;
	}
	return p->stmt.status;
}

enum db_status ratelimit_check(arena_t *a, const char *key, enum ratelimit_policy policy,
    const struct ratelimit_quota *q, struct ratelimit_result *out)
{
	struct ratelimit_pending *p = arena_calloc(a, 1, sizeof *p);
	ratelimit_queue(p, &(struct ratelimit_check){ key, policy, *q });
	db_flush(a);
	enum db_status st = ratelimit_result_of(p, out);
	db_end_refusal();
	return st;
}

/* Each bucket's state as it stands, for a response that did not reach the
 * limiter: tat - now in microseconds, 0 for a bucket with no row. */
static const char peek_sql[] =
    "SELECT coalesce((SELECT greatest(0, round(extract(epoch FROM tat - now()) * 1000000))::bigint "
    "FROM rate_limits WHERE key = $1), 0)";

enum db_status ratelimit_peek(arena_t *a, const struct ratelimit_check *c,
    struct ratelimit_result *out)
{
	const char *params[] = { c->key };
	PGresult *res;
	enum db_status st = db_exec(a, &res, peek_sql, 1, params);
	if (st == DB_OK)
		*out = (struct ratelimit_result){ c->policy, c->quota, true,
			strtoll(db_value(res, 0, 0), NULL, 10) };
	return st;
}

void ratelimit_count_again(arena_t *a, const struct ratelimit_pending *p)
{
	struct ratelimit_result ignored;
	if (ratelimit_check(a, p->check.key, p->check.policy, &p->check.quota, &ignored) != DB_OK)
		log_warn("gala.ratelimit", "could not count a failed request (%s)",
		    ratelimit_policy_name(p->check.policy));
}

