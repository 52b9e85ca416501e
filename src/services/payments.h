/* Payments: the charge (customer_payment) and the payout (service_payment)
 * of a booking, at most one of each (unique in the database). This module
 * has the row's shape and the read routes; the money code (Stripe
 * PaymentIntents, transfers, refunds, webhooks: services/charges.c,
 * payouts.c, webhooks.c) writes the rows in its own transactions and changes
 * the booking's status with booking_transition() (services/bookings.h). */
#ifndef GALA_PAYMENTS_H
#define GALA_PAYMENTS_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "core/arena.h"
#include "db/db.h"
#include "core/errors.h"
#include "services/context.h"

/* id, event_service_id, payment_type, payer_id, payee_id, amount_cents,
 * currency, status, stripe_payment_intent_id, stripe_transfer_id,
 * stripe_refund_id, created_at, updated_at, attempt (of table alias p) */
#define PAYMENT_COLUMNS \
	"p.id, p.event_service_id, p.payment_type, p.payer_id, p.payee_id, p.amount_cents, " \
	"p.currency, p.status, p.stripe_payment_intent_id, p.stripe_transfer_id, " \
	"p.stripe_refund_id, " SQL_TS("p.created_at") ", " SQL_TS("p.updated_at") ", p.attempt"
#define PAYMENT_COL_ID 0
#define PAYMENT_COL_STATUS 7
#define PAYMENT_COL_ATTEMPT 13

/* The Payment object of API.md from a row of PAYMENT_COLUMNS. */
cJSON *payment_json(const PGresult *res, int row);

/* GET /api/payments: where the caller is payer or payee (admins: all). */
enum gala_error payments_list(struct svc_ctx *cx, int limit, int offset, cJSON **out);

/* GET /api/payments/{id}: same visibility, GE_NOT_FOUND otherwise. */
enum gala_error payments_get(struct svc_ctx *cx, const char *id, cJSON **out);

#endif
