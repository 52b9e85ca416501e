#include "autoconf.h"

#include "core/ratelimit.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/crypto.h"
#include "core/log.h"
#include "db/db.h"
#include "http/auth.h"
#include "http/response.h"
#include "http/router.h"

#define US_PER_S 1000000LL

/* A key of rate_limits with the quota it is checked against. */
struct ratelimit_check {
	const char *key;
	enum ratelimit_policy policy;
	struct ratelimit_quota quota;
};

const char *ratelimit_policy_name(enum ratelimit_policy p)
{
	switch (p) {
	case RL_AUTH_EMAIL:
		return "auth-email";
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

void ratelimit_format_policy(const struct ratelimit_result *r, size_t n, char *out,
    size_t outlen)
{
	size_t off = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && off < outlen; i++) {
		int w = snprintf(out + off, outlen - off, "%s\"%s\";q=%d;w=%d", i ? ", " : "",
		    ratelimit_policy_name(r[i].policy), r[i].quota.requests, r[i].quota.window_seconds);
		if (w < 0)
			return;
		off += (size_t)w;
	}
}

void ratelimit_format_state(const struct ratelimit_result *r, char *out, size_t outlen)
{
	snprintf(out, outlen, "\"%s\";r=%d;t=%lld", ratelimit_policy_name(r->policy),
	    ratelimit_remaining(r), ratelimit_reset_seconds(r));
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

/* One check of a request, queued as a deferred statement. */
struct ratelimit_pending {
	struct ratelimit_check check;
	struct db_deferred stmt;
	const char *params[3];
	char t[24], burst[24];
};

static void pending_queue(struct ratelimit_pending *p, const char *key,
    enum ratelimit_policy policy, const struct ratelimit_quota *q)
{
	p->check = (struct ratelimit_check){ key, policy, *q };
	snprintf(p->t, sizeof p->t, "%lld", ratelimit_emission_us(q));
	snprintf(p->burst, sizeof p->burst, "%lld", burst_us(q));
	p->params[0] = key;
	p->params[1] = p->t;
	p->params[2] = p->burst;
	p->stmt = (struct db_deferred){ .sql = check_sql, .nparams = 3, .params = p->params };
	db_defer(&p->stmt);
}

/* The outcome of a sent check into *out: DB_OK (allowed or refused), or
 * the status that kept it from counting. */
static enum db_status pending_result(const struct ratelimit_pending *p,
    struct ratelimit_result *out)
{
	*out = (struct ratelimit_result){ p->check.policy, p->check.quota, true, 0 };
	if (p->stmt.status == DB_OK) {
		out->ahead_us = db_int(p->stmt.res, 0, 1);
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
	pending_queue(p, key, policy, q);
	db_flush(a);
	enum db_status st = pending_result(p, out);
	db_end_refusal();
	return st;
}

/* The body's "email", trimmed and lower-cased, or NULL. */
static char *target_email(struct request *req)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(req->json, "email");
	if (!cJSON_IsString(e))
		return NULL;
	const char *s = e->valuestring;
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0)
		return NULL;
	char *out = arena_strndup(req->arena, s, n);
	for (char *p = out; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

/* The checks of the route's rule, in the order they run: the per-email
 * policy first, so that when it refuses the IP's quota is not touched. */
static size_t route_checks(struct request *req, struct ratelimit_check *c)
{
	const struct config *cfg = gala_config;
	struct ratelimit_quota auth = { cfg->auth_rate_limit_requests,
		cfg->auth_rate_limit_window_seconds };
	struct ratelimit_quota write = { cfg->write_rate_limit_requests,
		cfg->write_rate_limit_window_seconds };
	char client[64];
	ratelimit_client_id(req->client_ip, client, sizeof client);
	size_t n = 0;
	const char *email = req->route->rate == RATE_AUTH_EMAIL ? target_email(req) : NULL;
	if (email != NULL) {
		/* Hashed: the table need not hold every address tried. */
		char hash[65];
		crypto_sha256_hex(email, strlen(email), hash);
		c[n++] = (struct ratelimit_check){ arena_printf(req->arena, "auth-email:%s", hash),
			RL_AUTH_EMAIL, auth };
	}
	switch (req->route->rate) {
	case RATE_NONE:
		break;
	case RATE_AUTH_EMAIL:
	case RATE_AUTH:
		c[n++] = (struct ratelimit_check){ arena_printf(req->arena, "auth:ip:%s", client),
			RL_AUTH, auth };
		break;
	case RATE_WRITE:
		c[n++] = (struct ratelimit_check){ req->cx.caller != NULL ?
			arena_printf(req->arena, "write:user:%s", req->cx.caller->id) :
			arena_printf(req->arena, "write:ip:%s", client), RL_WRITE, write };
		break;
	}
	return n;
}

/* RateLimit-Policy lists every policy of the route; RateLimit names the
 * tightest of those that were checked (a refusal stops the later checks). */
static void set_headers(struct request *req, const struct ratelimit_check *c,
    struct ratelimit_result *r, size_t listed, size_t checked)
{
	for (size_t i = checked; i < listed; i++)
		r[i] = (struct ratelimit_result){ c[i].policy, c[i].quota, true, 0 };
	char policy[256], state[128];
	ratelimit_format_policy(r, listed, policy, sizeof policy);
	ratelimit_format_state(ratelimit_tightest(r, checked), state, sizeof state);
	response_header(req, "RateLimit-Policy", policy);
	response_header(req, "RateLimit", state);
}

/* Each bucket's state as it stands, for a response that did not reach the
 * limiter: tat - now in microseconds, 0 for a bucket with no row. */
static const char peek_sql[] =
    "SELECT coalesce((SELECT greatest(0, round(extract(epoch FROM tat - now()) * 1000000))::bigint "
    "FROM rate_limits WHERE key = $1), 0)";

void ratelimit_annotate(struct request *req)
{
	if (req->route == NULL || req->route->rate == RATE_NONE || !gala_config->rate_limit_enabled ||
	    req->resp.status >= 500)
		return;
	struct ratelimit_check checks[2];
	struct ratelimit_result results[2];
	size_t n = route_checks(req, checks);
	for (size_t i = 0; i < n; i++) {
		const char *params[] = { checks[i].key };
		PGresult *res;
		if (db_exec(req->arena, &res, peek_sql, 1, params) != DB_OK)
			return;
		results[i] = (struct ratelimit_result){ checks[i].policy, checks[i].quota, true,
			strtoll(db_value(res, 0, 0), NULL, 10) };
	}
	set_headers(req, checks, results, n, n);
}

/* The checks of one request. */
struct ratelimit_state {
	struct ratelimit_pending pending[2];
	size_t n;
	bool settled;
	int answer;
};

void ratelimit_stage(struct request *req)
{
	if (req->route->rate == RATE_NONE || !gala_config->rate_limit_enabled)
		return;
	struct ratelimit_check checks[2];
	struct ratelimit_state *s = arena_calloc(req->arena, 1, sizeof *s);
	s->n = route_checks(req, checks);
	for (size_t i = 0; i < s->n; i++)
		pending_queue(&s->pending[i], checks[i].key, checks[i].policy, &checks[i].quota);
	req->limits = s;
}

int ratelimit_gate(struct request *req)
{
	if (req->limits == NULL || req->route->rate == RATE_WRITE)
		return 0;
	return ratelimit_settle(req);
}

/* A count that the handler's failed statement rolled back is made again:
 * a request that failed still counts. */
static void count_again(arena_t *a, const struct ratelimit_pending *p)
{
	struct ratelimit_result ignored;
	if (ratelimit_check(a, p->check.key, p->check.policy, &p->check.quota, &ignored) != DB_OK)
		log_warn("gala.ratelimit", "could not count a failed request (%s)",
		    ratelimit_policy_name(p->check.policy));
}

int ratelimit_settle(struct request *req)
{
	struct ratelimit_state *s = req->limits;
	if (s == NULL)
		return 0;
	if (s->settled)
		return s->answer;
	s->settled = true;
	db_flush(req->arena);
	struct ratelimit_check checks[2];
	struct ratelimit_result results[2];
	for (size_t i = 0; i < s->n; i++)
		checks[i] = s->pending[i].check;
	for (size_t i = 0; i < s->n; i++) {
		enum db_status st = pending_result(&s->pending[i], &results[i]);
		if (st != DB_OK) {
			/* Fail closed: without its count the limiter cannot tell a
			 * brute force from a user, and the handler would need the
			 * database anyway. */
			log_error("gala.ratelimit", "the %s limiter could not reach Postgres; refusing %s %s",
			    ratelimit_policy_name(checks[i].policy), req->method, req->path);
			req->resp = (struct response){ 0 };
			http_respond_error(req, st == DB_UNAVAILABLE ? GE_DB_UNAVAILABLE :
			    GE_SERVICE_UNAVAILABLE, NULL, NULL);
			return s->answer = -1;
		}
		if (!results[i].allowed) {
			/* The refusal rolled back the counts before it. */
			for (size_t j = 0; j < i; j++) {
				long long t = ratelimit_emission_us(&checks[j].quota);
				results[j].ahead_us = results[j].ahead_us > t ? results[j].ahead_us - t : 0;
			}
			char retry[32];
			snprintf(retry, sizeof retry, "%lld", ratelimit_retry_after(&results[i]));
			req->resp = (struct response){ 0 };
			http_respond_error(req, GE_RATE_LIMITED, NULL,
			    "too many requests (%s policy); retry in %s s",
			    ratelimit_policy_name(results[i].policy), retry);
			response_header(req, "Retry-After", retry);
			set_headers(req, checks, results, s->n, i + 1);
			return s->answer = -1;
		}
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->pending[i].stmt.undone)
			count_again(req->arena, &s->pending[i]);
	set_headers(req, checks, results, s->n, s->n);
	return s->answer = 0;
}
