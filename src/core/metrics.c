#include "autoconf.h"

#include "core/metrics.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define STATUS_MIN 100
#define STATUS_MAX 599

const double metrics_duration_bounds[METRICS_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10
};

struct route_counters {
	atomic_uint_least64_t by_status[STATUS_MAX - STATUS_MIN + 1];
	atomic_uint_least64_t buckets[METRICS_BUCKETS];
	atomic_uint_least64_t count;
	atomic_uint_least64_t sum_us;
};

struct metrics {
	struct route_counters routes[METRICS_ROUTES + 1];
	atomic_uint_least64_t families[METRIC_FAMILIES][METRICS_LABELS];
	atomic_uint workers[WORKER_STATES];
};

/* Inherited by every worker from the master that attached it. */
static struct metrics *pool_metrics;

struct metrics *metrics_create(void)
{
	/* An anonymous mapping takes fd -1, which cppcheck's POSIX model does
	 * not know. */
	void *p = mmap(NULL, sizeof(struct metrics), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0); /* cppcheck-suppress invalidFunctionArg */
	if (p == MAP_FAILED)
		return NULL;
	/* Fresh anonymous pages are zero: every counter starts at 0. */
	return p;
}

void metrics_attach(struct metrics *m)
{
	pool_metrics = m;
}

bool metrics_attached(void)
{
	return pool_metrics != NULL;
}

static void bump(atomic_uint_least64_t *c, uint_least64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint_least64_t read_counter(atomic_uint_least64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void metrics_add(enum metrics_family f, unsigned label)
{
	if (pool_metrics != NULL && (unsigned)f < METRIC_FAMILIES && label < METRICS_LABELS)
		bump(&pool_metrics->families[f][label], 1);
}

void metrics_observe_request(unsigned route, int status, long long duration_us)
{
	if (pool_metrics == NULL)
		return;
	if (route > METRICS_ROUTE_UNMATCHED)
		route = METRICS_ROUTE_UNMATCHED;
	if (status < STATUS_MIN || status > STATUS_MAX)
		status = 500;
	if (duration_us < 0)
		duration_us = 0;
	struct route_counters *r = &pool_metrics->routes[route];
	bump(&r->by_status[status - STATUS_MIN], 1);
	double seconds = (double)duration_us / 1e6;
	for (int b = 0; b < METRICS_BUCKETS; b++)
		if (seconds <= metrics_duration_bounds[b]) {
			bump(&r->buckets[b], 1);
			break;
		}
	bump(&r->count, 1);
	bump(&r->sum_us, (uint_least64_t)duration_us);
}

void metrics_set_workers(const unsigned counts[WORKER_STATES])
{
	if (pool_metrics == NULL)
		return;
	for (int s = 0; s < WORKER_STATES; s++)
		atomic_store_explicit(&pool_metrics->workers[s], counts[s], memory_order_relaxed);
}

unsigned long long metrics_value(enum metrics_family f, unsigned label)
{
	if (pool_metrics == NULL || (unsigned)f >= METRIC_FAMILIES || label >= METRICS_LABELS)
		return 0;
	return read_counter(&pool_metrics->families[f][label]);
}

unsigned long long metrics_requests(unsigned route, int status)
{
	if (pool_metrics == NULL || route > METRICS_ROUTE_UNMATCHED ||
	    status < STATUS_MIN || status > STATUS_MAX)
		return 0;
	return read_counter(&pool_metrics->routes[route].by_status[status - STATUS_MIN]);
}

void metrics_durations(unsigned route, unsigned long long buckets[METRICS_BUCKETS],
    unsigned long long *count, double *sum_seconds)
{
	memset(buckets, 0, sizeof(unsigned long long) * METRICS_BUCKETS);
	*count = 0;
	*sum_seconds = 0;
	if (pool_metrics == NULL || route > METRICS_ROUTE_UNMATCHED)
		return;
	struct route_counters *r = &pool_metrics->routes[route];
	for (int b = 0; b < METRICS_BUCKETS; b++)
		buckets[b] = read_counter(&r->buckets[b]);
	*count = read_counter(&r->count);
	*sum_seconds = (double)read_counter(&r->sum_us) / 1e6;
}

unsigned metrics_workers(enum metrics_worker_state s)
{
	if (pool_metrics == NULL || (unsigned)s >= WORKER_STATES)
		return 0;
	return atomic_load_explicit(&pool_metrics->workers[s], memory_order_relaxed);
}

const char *metrics_db_error_name(enum metrics_db_error k)
{
	static const char *const names[DBERR_KINDS] = { "connect", "lost", "timeout", "conflict",
		"statement" };
	return (unsigned)k < DBERR_KINDS ? names[k] : "unknown";
}

const char *metrics_restart_name(enum metrics_restart r)
{
	static const char *const names[RESTART_REASONS] = { "crash", "timeout", "recycle",
		"reload" };
	return (unsigned)r < RESTART_REASONS ? names[r] : "unknown";
}

const char *metrics_worker_state_name(enum metrics_worker_state s)
{
	static const char *const names[WORKER_STATES] = { "idle", "busy", "draining" };
	return (unsigned)s < WORKER_STATES ? names[s] : "unknown";
}
