/* Payouts to providers (API.md "release"; seed Phases 1 and 3): a Stripe
 * Transfer of amount_cents - platform_fee_cents to the provider's
 * connected account, exactly once whatever fails.
 *
 * Atomic phases, no transaction or lock held across the Stripe call:
 *   1. under the booking's row lock: the payout row (service_payment,
 *      payout_started, attempt n) is inserted and committed; a concurrent
 *      release finds it and answers 409 payout_in_progress;
 *   2. the Transfer: destination = stripe_account_id, source_transaction =
 *      the charge, transfer_group = the booking id, idempotency key
 *      release_payment:{id} (release_payment:{id}:{n} for n > 1);
 *   3. one transaction: payout released with the transfer id and payee,
 *      booking released, audit rows payment.release and booking.released.
 * A definite refusal deletes the payout row (the booking stays completed)
 * and counts the attempt, so the next one uses a new key. An ambiguous
 * failure leaves payout_started: once older than PAYOUT_IN_PROGRESS_SECONDS
 * it is stuck, and the next release or gala maintenance looks the transfer
 * up by transfer_group (it never pays twice), adopts it when it exists and
 * otherwise retries under the key of the attempt in flight. */
#ifndef GALA_PAYOUTS_H
#define GALA_PAYOUTS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "db/db.h"
#include "core/errors.h"
#include "services/context.h"
#include "core/errors.h"

#define PAYOUT_IN_PROGRESS_SECONDS 60
/* The stuck payouts of payments, $1 being PAYOUT_IN_PROGRESS_SECONDS. */
#define PAYOUTS_STUCK_WHERE "payment_type = 'service_payment' AND status = 'payout_started' " \
	"AND updated_at < now() - make_interval(secs => $1::int)"

/* POST /api/event-services/{id}/release for the signed-in caller (admin,
 * or the event owner once completed). *payment is the payout;
 * *already_released tells that an earlier call made it. */
enum gala_error payouts_release(struct svc_ctx *cx, const char *event_service_id,
    cJSON **payment, bool *already_released, struct refusal *why);

/* gala maintenance: completes every payout stuck in payout_started for
 * longer than PAYOUT_IN_PROGRESS_SECONDS and adds how many it settled
 * (released, or rolled back after a refusal) to *count; each one is also
 * logged, the ones still unconfirmed as warnings. Without a Stripe key
 * there is nothing it can do: DB_OK. */
enum db_status payouts_complete_stuck(arena_t *a, long long *count);

#endif
