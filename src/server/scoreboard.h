/* Shared memory between the master and its workers: one slot per worker,
 * written by the worker (ready, busy since, route) and read by the master to
 * find stuck requests. */
#ifndef GALA_SCOREBOARD_H
#define GALA_SCOREBOARD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/config.h"

/* Twice the most workers: during a reload every worker of the old
 * generation keeps its slot until a new one is ready in another, and old
 * ones draining after that still hold theirs. */
#define SCOREBOARD_SLOTS (2 * CONFIG_WORKERS_MAX)
_Static_assert(SCOREBOARD_SLOTS > CONFIG_WORKERS_MAX,
    "a reload at the most WORKERS needs a free slot for the new generation");

struct worker_slot {
	pid_t pid;                     /* 0: free (master-owned fields below) */
	unsigned generation;
	int term_sent;
	long long spawned_ms;
	long long respawn_after_ms;    /* backoff after a crash */
	int crashes;
	int stop_reason;               /* enum metrics_restart the master stopped it for; -1 */
	/* written by the worker */
	volatile sig_atomic_t ready;
	volatile sig_atomic_t draining;    /* leaving: serves its kept connections only */
	volatile long long busy_since_ms;   /* 0: idle */
	volatile sig_atomic_t conns;       /* FastCGI connections it holds */
	volatile long long asleep_since_ms; /* waiting for work, until it took some; 0: not */
	char route[96];
	unsigned long long requests;
};

struct scoreboard {
	/* One past the highest slot the master ever gave a worker (it fills
	 * the lowest free one): a worker looking for others reads as many
	 * slots as the pool has had, not the whole board. */
	volatile sig_atomic_t high;
	struct worker_slot slots[SCOREBOARD_SLOTS];
};

/* Maps an anonymous shared region inherited by the workers, or NULL. */
struct scoreboard *scoreboard_create(void);

/* Whether a worker other than self, ready, not leaving, asleep for want
 * of work since before asleep_before_ms, holds fewer than conns
 * connections. */
bool scoreboard_idle_worker_holds_fewer(const struct scoreboard *board,
    const struct worker_slot *self, int conns, long long asleep_before_ms);

#endif
