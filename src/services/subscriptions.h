/* Subscriptions (seed: Critical Gap 2): start, cancel, sync and list a
 * user's Stripe subscriptions, and apply customer.subscription.* webhooks.
 * The Stripe customer is created once per user (users.stripe_customer_id);
 * the state stored for a subscription only ever moves forward in Stripe's
 * time, whatever order the webhooks arrive in. */
#ifndef GALA_SUBSCRIPTIONS_H
#define GALA_SUBSCRIPTIONS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "core/errors.h"
#include "services/context.h"

/* True when price_id is one of STRIPE_PRICE_IDS. */
bool subscriptions_price_allowed(const char *price_id);

/* {"items":[{"price_id":...}]} of STRIPE_PRICE_IDS. */
cJSON *subscriptions_plans_json(void);

/* Starts a subscription of the signed-in user; *sub and *client_secret are
 * set on success (the secret may be NULL when Stripe needs no payment). */
enum gala_error subscriptions_start(struct svc_ctx *cx, const char *price_id, cJSON **sub,
    const char **client_secret);

/* {"items","total","limit","offset"} of the caller's subscriptions. */
enum gala_error subscriptions_list(struct svc_ctx *cx, int limit, int offset, cJSON **out);

/* Cancels at period end (Stripe's flag) or at once; GE_INVALID_STATE when
 * the stored subscription has ended already (canceled, incomplete_expired). */
enum gala_error subscriptions_cancel(struct svc_ctx *cx, const char *id, bool at_period_end,
    cJSON **sub);
enum gala_error subscriptions_sync(struct svc_ctx *cx, const char *id, cJSON **sub);

/* Applies a customer.subscription.created|updated|deleted event whose
 * data.object is obj and whose Stripe time is created, inside the caller's
 * transaction. Returns DB status semantics via gala_error (GE_OK when
 * applied or ignored as older/unknown). The owner is the user whose stored
 * customer (users.stripe_customer_id) the event names; metadata.user_id
 * counts only for a user with no stored customer. An id not of Stripe's
 * shape (sub_, cus_) has the event ignored. */
enum gala_error subscriptions_apply_event(arena_t *a, const cJSON *obj, long long created);

#endif
