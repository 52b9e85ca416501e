/* The pool's counters for GET /metrics, in memory the master maps before it
 * forks: every worker adds to the same counters, so they outlive a worker's
 * recycling or crash, and a scrape answered by any worker sees the whole
 * pool. Until metrics_attach() every call is a no-op (the other
 * subcommands, the unit tests). Additions are relaxed atomics: a scrape may
 * see one counter of a request before another, never a torn value. */
#ifndef GALA_METRICS_H
#define GALA_METRICS_H

#include <stdbool.h>

/* Route indices are the route table's; one more counts what matched none. */
#define METRICS_ROUTES 128
#define METRICS_ROUTE_UNMATCHED METRICS_ROUTES
/* Values a labelled family may take. */
#define METRICS_LABELS 8
/* Buckets of the request duration histogram (+Inf is the count). */
#define METRICS_BUCKETS 12

enum metrics_family {
	METRIC_DB_ERRORS,            /* label: enum metrics_db_error */
	METRIC_STRIPE_REQUESTS,      /* label: the Stripe client's enum stripe_outcome */
	METRIC_RATELIMIT_REFUSALS,   /* label: enum ratelimit_policy */
	METRIC_WORKER_RESTARTS,      /* label: enum metrics_restart */
	METRIC_IDEMPOTENCY_REPLAYS,  /* label 0 */
	METRIC_FAMILIES
};

enum metrics_db_error {
	DBERR_CONNECT,      /* no connection could be made */
	DBERR_LOST,         /* the connection broke, or the server is going away */
	DBERR_TIMEOUT,      /* statement_timeout cancelled a statement */
	DBERR_CONFLICT,     /* serialization failure or deadlock */
	DBERR_STATEMENT,    /* any other unexpected failure of a statement */
	DBERR_KINDS
};

enum metrics_restart {
	RESTART_CRASH,      /* a worker died of a signal or an error exit */
	RESTART_TIMEOUT,    /* killed for exceeding REQUEST_TIMEOUT_SECONDS */
	RESTART_RECYCLE,    /* left after MAX_REQUESTS_PER_WORKER */
	RESTART_RELOAD,     /* replaced by a reload (SIGHUP) */
	RESTART_REASONS
};

enum metrics_worker_state { WORKERS_IDLE, WORKERS_BUSY, WORKERS_DRAINING, WORKER_STATES };

extern const double metrics_duration_bounds[METRICS_BUCKETS];

struct metrics;

/* Maps the shared counters (zeroed), or NULL; the master calls it once. */
struct metrics *metrics_create(void);

/* Counts into m from now on in this process and its children. */
void metrics_attach(struct metrics *m);

bool metrics_attached(void);

void metrics_add(enum metrics_family f, unsigned label);

/* One answered request: route index (METRICS_ROUTE_UNMATCHED when none),
 * its status and how long it took. */
void metrics_observe_request(unsigned route, int status, long long duration_us);

/* The master's view of its workers, refreshed on its every tick. */
void metrics_set_workers(const unsigned counts[WORKER_STATES]);

/* Readers, for the exposition. */
unsigned long long metrics_value(enum metrics_family f, unsigned label);
unsigned long long metrics_requests(unsigned route, int status);
/* Per-bucket (not cumulative) counts, the count and the sum in seconds. */
void metrics_durations(unsigned route, unsigned long long buckets[METRICS_BUCKETS],
    unsigned long long *count, double *sum_seconds);
unsigned metrics_workers(enum metrics_worker_state s);

const char *metrics_db_error_name(enum metrics_db_error k);
const char *metrics_restart_name(enum metrics_restart r);
const char *metrics_worker_state_name(enum metrics_worker_state s);

#endif
