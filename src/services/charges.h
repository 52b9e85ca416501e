/* Charging for bookings and refunding them (API.md "Event services": pay,
 * cancel of a paid booking, refund; seed Critical Gap 3).
 *
 * Like every flow that moves money (DESIGN.md), these are atomic phases:
 * what Gala is about to do is committed first, the Stripe call carries a
 * deterministic idempotency key, and the outcome is recorded in a second
 * transaction. No transaction or row lock is held across a Stripe call, so
 * a caller here must have no transaction open.
 *
 * Stripe idempotency keys:
 *   payment_intent:{event_service_id}      PaymentIntent of the first attempt
 *   payment_intent:{event_service_id}:{n}  of attempt n after a failed payment
 *   reverse_transfer:{event_service_id}    reversal of the payout (refund after release)
 *   refund:{event_service_id}              the Refund of the charge
 * A refund is never more than the charge, whatever races: every path uses
 * the one refund key with the same parameters and no amount (Stripe refunds
 * what is left of the charge, once). */
#ifndef GALA_CHARGES_H
#define GALA_CHARGES_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "clients/stripe.h"
#include "core/arena.h"
#include "db/db.h"
#include "core/errors.h"
#include "services/context.h"
#include "core/errors.h"

/* POST /api/event-services/{id}/pay (the event owner, verified email): a
 * PaymentIntent, the customer_payment row (requires_payment) and the
 * booking to payment_pending. Again while payment_pending: the same
 * payment and client secret. *payment is the Payment object. */
enum gala_error charges_pay(struct svc_ctx *cx, const char *event_service_id,
    cJSON **payment, const char **client_secret, struct refusal *why);

/* POST /api/event-services/{id}/refund (admin): refunds a paid, completed
 * or released booking; for a released one the payout's transfer is
 * reversed first. *booking is the updated Event service object.
 * GE_MFA_REQUIRED for an admin without TOTP under ADMIN_MFA_REQUIRED. */
enum gala_error charges_refund(struct svc_ctx *cx, const char *event_service_id,
    cJSON **booking, struct refusal *why);

/* The refund branch of POST /api/event-services/{id}/cancel (owner or
 * provider of a paid booking). */
enum gala_error charges_cancel_paid(struct svc_ctx *cx, const char *event_service_id,
    cJSON **booking, struct refusal *why);

/* gala maintenance: refunds charges that succeeded for a booking that was
 * cancelled while its payment was pending (the customer completed the
 * payment form after the cancel), with the booking's one refund key. Adds
 * how many were refunded to *count; the ones Stripe refuses are logged
 * for an operator. */
enum db_status charges_refund_orphans(arena_t *a, long long *count);

/* A refund begun (a cancel or an admin refund marked the charge) that no
 * request finished for this long: its request ended without Stripe's
 * answer (502, 504) and was not retried. */
#define REFUND_STARTED_GRACE_MINUTES 10

/* gala maintenance: finishes each refund begun more than
 * REFUND_STARTED_GRACE_MINUTES ago on a booking still paid, completed or
 * released, as a retry of its request would (the released payout reversed
 * first, then the charge refunded, under the booking's same Stripe keys),
 * so that the money asked back goes back and the booking does not stay
 * blocked for payouts. Adds how many were finished to *count; the ones
 * Stripe refuses get their mark cleared (when nothing was reversed) and
 * are logged for an operator, the others are tried again at the next run. */
enum db_status charges_finish_started_refunds(arena_t *a, long long *count);

/* The answer for a Stripe call that did not succeed: a refusal is 502
 * payment_error with a generic message and Stripe's request id in why
 * (never Stripe's own text: that is logged), anything else 502
 * stripe_unavailable (503 when no key is configured). */
enum gala_error charges_stripe_error(arena_t *a, const struct stripe_result *r,
    struct refusal *why);

/* A payment row of a booking with the money columns the API does not show. */
struct money_row {
	PGresult *res;              /* row 0 has PAYMENT_COLUMNS first; NULL: no row */
	const char *id;
	const char *status;
	const char *payee_id;
	long long amount_cents;
	const char *currency;
	const char *payment_intent;
	const char *charge;         /* stripe_charge_id */
	const char *transfer;
	const char *refund;
	const char *reversal;       /* stripe_transfer_reversal_id */
	int attempt;
	bool refund_started;
	long long idle_seconds;     /* since updated_at */
};

/* Reads the booking's payment of type ("customer_payment" or
 * "service_payment"), FOR UPDATE when lock. out->res is NULL when there is
 * none. */
enum gala_error charges_load_row(arena_t *a, const char *event_service_id, const char *type,
    bool lock, struct money_row *out);

#endif
