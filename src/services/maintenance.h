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

/* Limiter buckets that are full again (theoretical arrival time passed). */
enum db_status maintenance_purge_rate_limits(arena_t *a, long long *count);
/* Idempotency keys older than IDEMPOTENCY_KEEP_HOURS. */
enum db_status maintenance_purge_idempotency_keys(arena_t *a, long long *count);
/* Revoked access tokens past their expiry (they fail on exp by then). */
enum db_status maintenance_purge_revoked_tokens(arena_t *a, long long *count);
/* Verification codes used, or expired more than a day ago (until then a
 * late try still hears otp_expired rather than invalid_otp). */
enum db_status maintenance_purge_email_otps(arena_t *a, long long *count);
/* Password reset tokens used or expired. */
enum db_status maintenance_purge_password_reset_tokens(arena_t *a, long long *count);

/* Runs every task in order and logs one JSON line with the counts.
 * Returns 0, or 1 when a task failed. */
int maintenance_run(void);

#endif
