/* Stripe Connect onboarding of service providers (API.md "Service
 * providers": stripe-onboarding; seed Phase 1). A provider is paid out to
 * an Express connected account, created once per provider: the Stripe
 * idempotency key connect_account:{provider_id} makes two concurrent
 * onboardings create one account, and the id is stored only where none is
 * stored yet. Stripe's account.updated webhook keeps payouts_enabled. */
#ifndef GALA_CONNECT_H
#define GALA_CONNECT_H

#include "core/errors.h"
#include "services/context.h"
#include "core/errors.h"

/* POST /api/providers/{id}/stripe-onboarding by the provider's own user:
 * the account (created when missing) and a fresh onboarding link. */
enum gala_error connect_onboard(struct svc_ctx *cx, const char *provider_id,
    const char **url, const char **stripe_account_id, struct refusal *why);

#endif
