/* gala maintenance: the periodic clean-up of state that expires, run by
 * systemd/gala-maintenance.timer every few minutes on any number of hosts
 * at once (every task is safe to run concurrently and to repeat). Purges
 * delete in small batches, each its own short statement, so no lock is
 * held long and replication never sees one huge transaction. */
#ifndef GALA_SERVICES_MAINTENANCE_H
#define GALA_SERVICES_MAINTENANCE_H

#include "core/arena.h"
#include "db/db.h"

/* Rows per DELETE statement. */
#define MAINTENANCE_BATCH 1000

/* Every task below does its work and adds what it did to *count; a task
 * that fails returns the status and the others still run. A new task (the
 * payouts' "complete stuck payouts") is one more function and one more row
 * in the table of maintenance.c. */

/* Runs every task in order and logs one JSON line with the counts.
 * Returns 0, or 1 when a task failed. */
int maintenance_run(void);

#endif
