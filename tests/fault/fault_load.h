/* Helpers of the fault programs (tests/fault): a keep-alive HTTPS client
 * per thread, a mixed load that tallies every answer by the phase of the
 * fault it was sent in, and a look at the pool's processes. */
#ifndef GALA_FAULT_LOAD_H
#define GALA_FAULT_LOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

/* One connection to nginx, kept between requests (as a real client does). */
struct fclient {
	CURL *curl;
	char *body;         /* the last answer's body ("" when none) */
	size_t body_len;
	char request_id[80];   /* its X-Request-ID header */
	char content_type[80];
};

void fclient_init(struct fclient *c);
void fclient_free(struct fclient *c);

/* Sends a request to TEST_BASE_URL + path; token, idempotency_key and body
 * (JSON) may be NULL. Returns the HTTP status, 0 when no answer came. */
long fclient_do(struct fclient *c, const char *method, const char *path, const char *token,
    const char *idempotency_key, const char *body);

/* NULL when the last answer is an error envelope of that status and code,
 * as the API promises it (JSON, type, message, request_id equal to the
 * X-Request-ID header); else what is wrong with it, in a static buffer. */
const char *fclient_error_problem(const struct fclient *c, long status, long want_status,
    const char *want_code);

enum load_phase { PHASE_BEFORE, PHASE_FAULT, PHASE_AFTER, PHASE__COUNT };

struct load_tally {
	long requests;
	long ok;             /* 2xx */
	long unavailable;    /* 503 database_unavailable, well formed */
	long other;          /* anything else */
	char sample[640];    /* the first "other" answer */
};

#define LOAD_MAX_THREADS 8
#define LOAD_MAX_CREATES 20000

/* A create the load sent: its title (unique, and its key when keyed), its
 * body (a retry under the key must send the same) and its answer. */
struct load_create {
	char title[48];
	char body[128];
	bool keyed;
	long status;
};

/* Reads (health, an event), creates with and without Idempotency-Key, from
 * nthreads threads, as fast as the pool answers. */
struct load {
	const char *token;          /* a verified customer's */
	const char *event_id;       /* one of the customer's events */
	int nthreads;
	pthread_t threads[LOAD_MAX_THREADS];
	atomic_int phase;
	atomic_bool stop;
	pthread_mutex_t mu;
	struct load_tally tally[PHASE__COUNT];
	struct load_create creates[LOAD_MAX_CREATES];
	int ncreates;
};

void load_start(struct load *l, const char *token, const char *event_id, int nthreads);
void load_set_phase(struct load *l, enum load_phase p);
void load_stop(struct load *l);
/* "before: 120 requests, 120 ok, ..." for the test's log. */
void load_report(const struct load *l, const char *label);

/* The pool's worker pids, sorted, space separated (malloc'd). */
char *fault_worker_pids(void);
int fault_master_pid(void);

/* Lines of gala's log (TEST_GALA_LOG) after byte offset from that contain
 * needle. */
int fault_log_count(long from, const char *needle);
long fault_log_size(void);

/* Waits up to secs for /api/health to answer want; true when it did. */
bool fault_wait_health(long want, int secs);

#endif
