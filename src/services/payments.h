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

/* The row of a payment, of table alias p. */
#define PAYMENT_COLUMNS \
	"p.id, p.event_service_id, p.payment_type, p.payer_id, p.payee_id, p.amount_cents, " \
	"p.currency, p.status, p.stripe_payment_intent_id, p.stripe_transfer_id, " \
	"p.stripe_refund_id, " SQL_TS("p.created_at") ", " SQL_TS("p.updated_at") ", p.attempt"
enum {
	PAY_ID, PAY_EVENT_SERVICE_ID, PAY_TYPE, PAY_PAYER_ID, PAY_PAYEE_ID, PAY_AMOUNT_CENTS,
	PAY_CURRENCY, PAY_STATUS, PAY_PAYMENT_INTENT, PAY_TRANSFER, PAY_REFUND, PAY_CREATED_AT,
	PAY_UPDATED_AT, PAY_ATTEMPT,
	PAY__COLUMNS
};

/* The Payment object of API.md from a row of PAYMENT_COLUMNS. */
cJSON *payment_json(const PGresult *res, int row);

/* GET /api/payments: where the caller is payer or payee (admins: all). */
enum gala_error payments_list(struct svc_ctx *cx, int limit, int offset, cJSON **out);

/* GET /api/payments/{id}: same visibility, GE_NOT_FOUND otherwise. */
enum gala_error payments_get(struct svc_ctx *cx, const char *id, cJSON **out);

#endif
