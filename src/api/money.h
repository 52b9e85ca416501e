/* Handlers of the money routes (api/money.c): pay, release and refund of a
 * booking, provider Stripe onboarding, and the Stripe webhook. */
#ifndef GALA_API_MONEY_H
#define GALA_API_MONEY_H

#include "http/request.h"

void api_event_services_pay(struct request *req);
void api_event_services_release(struct request *req);
void api_event_services_refund(struct request *req);
void api_providers_stripe_onboarding(struct request *req);
void api_webhooks_stripe(struct request *req);

#endif
