#include "autoconf.h"

#include "http/ratelimit_stage.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/response.h"
#include "http/router.h"
#include "services/session.h"

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

/* The body's "email", trimmed (the database lowers it), or NULL. */
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
	return arena_strndup(req->arena, s, n);
}

/* The user a second-factor request is about: the signed-in caller, or the
 * user id an mfa_token starts with (services/mfa.h), or NULL. A forged id
 * only spends that user's quota, as a typed email does; the token itself
 * is checked against its user by the handler. */
static const char *target_user(struct request *req)
{
	if (req->cx.caller != NULL)
		return req->cx.caller->id;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(req->json, "mfa_token");
	if (!cJSON_IsString(t) || strlen(t->valuestring) < 37 || t->valuestring[36] != '.')
		return NULL;
	char *id = arena_strndup(req->arena, t->valuestring, 36);
	return uuid_valid(id) ? id : NULL;
}

/* The checks of the route's rule, in the order they run: the per-email or
 * per-user policy first, so that when it refuses the IP's quota is not
 * touched. */
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
	if (email != NULL)
		c[n++] = (struct ratelimit_check){ arena_printf(req->arena, "auth-email:%s", email),
			RL_AUTH_EMAIL, auth };
	const char *user = req->route->rate == RATE_AUTH_USER ? target_user(req) : NULL;
	if (user != NULL)
		c[n++] = (struct ratelimit_check){ arena_printf(req->arena, "auth-user:%s", user),
			RL_AUTH_USER, auth };
	switch (req->route->rate) {
	case RATE_NONE:
		break;
	case RATE_AUTH_USER:
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

/* Answers 429 for checks[refused], the checks before it rolled back. */
static void answer_refused(struct request *req, const struct ratelimit_check *checks,
    struct ratelimit_result *results, size_t n, size_t refused)
{
	for (size_t j = 0; j < refused; j++) {
		long long t = ratelimit_emission_us(&checks[j].quota);
		results[j].ahead_us = results[j].ahead_us > t ? results[j].ahead_us - t : 0;
	}
	char retry[32];
	snprintf(retry, sizeof retry, "%lld", ratelimit_retry_after(&results[refused]));
	req->resp = (struct response){ 0 };
	http_respond_error(req, GE_RATE_LIMITED, NULL, "too many requests (%s policy); retry in %s s",
	    ratelimit_policy_name(results[refused].policy), retry);
	response_header(req, "Retry-After", retry);
	set_headers(req, checks, results, n, refused + 1);
}

void ratelimit_count_anonymous(struct request *req)
{
	const struct config *cfg = gala_config;
	enum rate_rule rule = req->route != NULL ? req->route->rate : RATE_NONE;
	if (rule == RATE_NONE || !cfg->rate_limit_enabled)
		return;
	char client[64];
	ratelimit_client_id(req->client_ip, client, sizeof client);
	struct ratelimit_check check = rule == RATE_WRITE ?
	    (struct ratelimit_check){ arena_printf(req->arena, "write:ip:%s", client), RL_WRITE,
		{ cfg->write_rate_limit_requests, cfg->write_rate_limit_window_seconds } } :
	    (struct ratelimit_check){ arena_printf(req->arena, "auth:ip:%s", client), RL_AUTH,
		{ cfg->auth_rate_limit_requests, cfg->auth_rate_limit_window_seconds } };
	struct ratelimit_result result;
	if (ratelimit_check(req->arena, check.key, check.policy, &check.quota, &result) != DB_OK)
		return;
	if (!result.allowed)
		answer_refused(req, &check, &result, 1, 0);
	else
		set_headers(req, &check, &result, 1, 1);
}

void ratelimit_annotate(struct request *req)
{
	if (req->route == NULL || req->route->rate == RATE_NONE || !gala_config->rate_limit_enabled ||
	    req->resp.status >= 500)
		return;
	struct ratelimit_check checks[2];
	struct ratelimit_result results[2];
	size_t n = route_checks(req, checks);
	for (size_t i = 0; i < n; i++)
		if (ratelimit_peek(req->arena, &checks[i], &results[i]) != DB_OK)
			return;
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
		ratelimit_queue(&s->pending[i], &checks[i]);
	req->limits = s;
}

int ratelimit_gate(struct request *req)
{
	if (req->limits == NULL || req->route->rate == RATE_WRITE)
		return 0;
	return ratelimit_settle(req);
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
		enum db_status st = ratelimit_result_of(&s->pending[i], &results[i]);
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
			metrics_add(METRIC_RATELIMIT_REFUSALS, results[i].policy);
			answer_refused(req, checks, results, s->n, i);
			return s->answer = -1;
		}
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->pending[i].stmt.undone)
			ratelimit_count_again(req->arena, &s->pending[i]);
	set_headers(req, checks, results, s->n, s->n);
	return s->answer = 0;
}
