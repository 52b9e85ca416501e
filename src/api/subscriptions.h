/* Handlers of /api/subscriptions (API.md, Subscriptions). */
#ifndef GALA_API_SUBSCRIPTIONS_H
#define GALA_API_SUBSCRIPTIONS_H

#include "http/request.h"

void api_subscription_plans(struct request *req);
void api_subscription_start(struct request *req);
void api_subscription_list(struct request *req);
void api_subscription_cancel(struct request *req);
void api_subscription_sync(struct request *req);

#endif
