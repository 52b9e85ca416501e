/* Service provider profiles: one per user of role provider, visible to
 * every signed-in user, changed only by their owner. The Stripe columns
 * (stripe_account_id, payouts_enabled) are written by onboarding and the
 * account.updated webhook, never from a request body. */
#ifndef GALA_PROVIDERS_H
#define GALA_PROVIDERS_H

#include <stdbool.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "db/db.h"
#include "core/errors.h"
#include "services/context.h"
#include "core/errors.h"

/* id, user_id, business_name, category, description, city,
 * stripe_account_id, payouts_enabled, created_at (table alias sp) */
#define PROVIDER_COLUMNS \
	"sp.id, sp.user_id, sp.business_name, sp.category, sp.description, sp.city, " \
	"sp.stripe_account_id, sp.payouts_enabled, " SQL_TS("sp.created_at")

/* Fields of a create or PATCH; absent ones are NULL. */
struct provider_fields {
	const char *business_name;
	const char *category;
	const char *description;
	const char *city;
	bool clear_description;    /* PATCH "description": null */
};

/* POST /api/providers: the caller's profile; GE_PROFILE_EXISTS for a
 * second one. */
enum gala_error providers_create(struct svc_ctx *cx, const struct provider_fields *f,
    cJSON **out);

/* GET /api/providers; category and city (case-insensitive) may be NULL. */
enum gala_error providers_list(struct svc_ctx *cx, const char *category, const char *city,
    int limit, int offset, cJSON **out);

enum gala_error providers_get(struct svc_ctx *cx, const char *id, cJSON **out);

/* PATCH /api/providers/{id}: GE_FORBIDDEN for anyone but its user. */
enum gala_error providers_update(struct svc_ctx *cx, const char *id,
    const struct provider_fields *f, cJSON **out, struct refusal *why);

#endif
