#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "api/handlers.h"
#include "api/routes.h"
#include "clients/stripe.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/netmask.h"
#include "http/response.h"
#include "services/health.h"
#include "services/ratelimit.h"

/* The exposition can not outgrow this: every route with every status. */
#define METRICS_MAX_BYTES ((size_t)4 << 20)

/* A label value with \ " and newline escaped, as the text format wants. */
static void put_label(buf_t *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			buf_puts(b, "\\n");
		else
			buf_append(b, v, 1);
	}
}

static void put_header(buf_t *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_route_labels(buf_t *b, unsigned idx)
{
	bool matched = idx < api_routes_count;
	buf_puts(b, "route=\"");
	put_label(b, matched ? api_routes[idx].pattern : "unmatched");
	buf_puts(b, "\",method=\"");
	put_label(b, matched ? api_routes[idx].method : "");
	buf_puts(b, "\"");
}

/* Route indices of the table, then the one of requests no route matched. */
static unsigned next_route(unsigned idx)
{
	return idx + 1 < api_routes_count ? idx + 1 :
	    idx < METRICS_ROUTE_UNMATCHED ? METRICS_ROUTE_UNMATCHED : METRICS_ROUTE_UNMATCHED + 1;
}

static void put_requests(buf_t *b)
{
	put_header(b, "gala_http_requests_total", "counter",
	    "Requests answered, by route pattern, method and status.");
	for (unsigned r = 0; r <= METRICS_ROUTE_UNMATCHED; r = next_route(r))
		for (int status = 100; status <= 599; status++) {
			unsigned long long n = metrics_requests(r, status);
			if (n == 0)
				continue;
			buf_puts(b, "gala_http_requests_total{");
			put_route_labels(b, r);
			buf_printf(b, ",status=\"%d\"} %llu\n", status, n);
		}
	put_header(b, "gala_http_request_duration_seconds", "histogram",
	    "Time from the request's arrival at the worker to its answer.");
	for (unsigned r = 0; r <= METRICS_ROUTE_UNMATCHED; r = next_route(r)) {
		unsigned long long buckets[METRICS_BUCKETS], count, cumulative = 0;
		double sum;
		metrics_durations(r, buckets, &count, &sum);
		if (count == 0)
			continue;
		for (int i = 0; i < METRICS_BUCKETS; i++) {
			cumulative += buckets[i];
			buf_puts(b, "gala_http_request_duration_seconds_bucket{");
			put_route_labels(b, r);
			buf_printf(b, ",le=\"%g\"} %llu\n", metrics_duration_bounds[i], cumulative);
		}
		buf_puts(b, "gala_http_request_duration_seconds_bucket{");
		put_route_labels(b, r);
		buf_printf(b, ",le=\"+Inf\"} %llu\ngala_http_request_duration_seconds_sum{", count);
		put_route_labels(b, r);
		buf_printf(b, "} %.6f\ngala_http_request_duration_seconds_count{", sum);
		put_route_labels(b, r);
		buf_printf(b, "} %llu\n", count);
	}
}

/* A labelled counter family, every label value listed (0 included), so
 * that rate() has a series from the first scrape. */
static void put_family(buf_t *b, const char *name, const char *help, const char *label,
    enum metrics_family f, unsigned nvalues, const char *(*value_name)(unsigned))
{
	put_header(b, name, "counter", help);
	for (unsigned i = 0; i < nvalues; i++) {
		buf_printf(b, "%s{%s=\"", name, label);
		put_label(b, value_name(i));
		buf_printf(b, "\"} %llu\n", metrics_value(f, i));
	}
}

static const char *db_error_name(unsigned i)
{
	return metrics_db_error_name((enum metrics_db_error)i);
}

static const char *restart_name(unsigned i)
{
	return metrics_restart_name((enum metrics_restart)i);
}

static const char *stripe_name(unsigned i)
{
	return stripe_outcome_name((enum stripe_outcome)i);
}

static const char *policy_name(unsigned i)
{
	return ratelimit_policy_name((enum ratelimit_policy)i);
}

static void put_pool(buf_t *b)
{
	put_header(b, "gala_workers", "gauge", "Workers of the pool by state.");
	for (int s = 0; s < WORKER_STATES; s++)
		buf_printf(b, "gala_workers{state=\"%s\"} %u\n",
		    metrics_worker_state_name((enum metrics_worker_state)s),
		    metrics_workers((enum metrics_worker_state)s));
	put_family(b, "gala_worker_restarts_total", "Workers replaced, by reason.", "reason",
	    METRIC_WORKER_RESTARTS, RESTART_REASONS, restart_name);
	put_family(b, "gala_db_errors_total", "Database failures, by kind.", "kind",
	    METRIC_DB_ERRORS, DBERR_KINDS, db_error_name);
	/* STRIPE_NOT_CONFIGURED never leaves the process: not a request. */
	put_family(b, "gala_stripe_requests_total", "Calls to the Stripe API, by outcome.",
	    "outcome", METRIC_STRIPE_REQUESTS, STRIPE_NOT_CONFIGURED, stripe_name);
	put_family(b, "gala_ratelimit_refusals_total", "Requests refused 429, by limiter policy.",
	    "policy", METRIC_RATELIMIT_REFUSALS, RL_POLICY_COUNT, policy_name);
	put_header(b, "gala_idempotency_replays_total", "counter",
	    "Requests answered with the stored response of their Idempotency-Key.");
	buf_printf(b, "gala_idempotency_replays_total %llu\n",
	    metrics_value(METRIC_IDEMPOTENCY_REPLAYS, 0));
}

/* Gauges read from the database: left out when it cannot be reached, so
 * that an alert on them does not fire on stale figures. */
static void put_backlog(buf_t *b, struct request *req)
{
	struct health_backlog backlog;
	bool up = health_backlog(&req->cx, &backlog) == GE_OK;
	put_header(b, "gala_database_up", "gauge",
	    "1 when the worker answering this scrape could query the database.");
	buf_printf(b, "gala_database_up %d\n", up ? 1 : 0);
	if (!up)
		return;
	put_header(b, "gala_payouts_stuck", "gauge",
	    "Payouts started more than a minute ago and not settled (gala maintenance settles them).");
	buf_printf(b, "gala_payouts_stuck %lld\n", backlog.payouts_stuck);
	put_header(b, "gala_mail_outbox_pending", "gauge",
	    "Mails queued and not yet sent nor given up (gala mailer sends them).");
	buf_printf(b, "gala_mail_outbox_pending %lld\n", backlog.mail_pending);
}

void api_metrics(struct request *req)
{
	/* Not found rather than forbidden: the route is not there for others. */
	if (!netmask_list_contains(gala_config->metrics_allow, req->client_ip)) {
		http_respond_error(req, GE_NOT_FOUND, NULL, NULL);
		return;
	}
	buf_t b;
	buf_init(&b, METRICS_MAX_BYTES);
	put_header(&b, "gala_build_info", "gauge", "The running version of gala.");
	buf_printf(&b, "gala_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	put_requests(&b);
	put_pool(&b);
	put_backlog(&b, req);
	response_body(req, 200, "text/plain; version=0.0.4; charset=utf-8",
	    b.data != NULL ? b.data : "", b.len);
	buf_free(&b);
}
