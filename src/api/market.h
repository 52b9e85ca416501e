/* Handlers of the marketplace: service providers, events, bookings (event
 * services) and the read side of payments (api/providers.c, api/events.c,
 * api/bookings.c, api/payments.c), and what they share (api/market.c). */
#ifndef GALA_API_MARKET_H
#define GALA_API_MARKET_H

#include <stdbool.h>

#include "http/errors.h"
#include "http/request.h"
#include "core/errors.h"

/* api/providers.c */
void api_providers_create(struct request *req);
void api_providers_list(struct request *req);
void api_providers_get(struct request *req);
void api_providers_update(struct request *req);

/* api/events.c */
void api_events_create(struct request *req);
void api_events_list(struct request *req);
void api_events_get(struct request *req);
void api_events_update(struct request *req);
void api_events_delete(struct request *req);

/* api/bookings.c */
void api_event_services_create(struct request *req);
void api_event_services_list(struct request *req);
void api_event_services_get(struct request *req);
void api_event_services_accept(struct request *req);
void api_event_services_decline(struct request *req);
void api_event_services_complete(struct request *req);
void api_event_services_cancel(struct request *req);

/* api/payments.c */
void api_payments_list(struct request *req);
void api_payments_get(struct request *req);

/* api/market.c */

/* Answers e, with why's param and message when set (why may be NULL). */
void market_respond_error(struct request *req, enum gala_error e, const struct refusal *why);

/* The path's first parameter when it is a UUID; anything else names no
 * object, so the request is answered 404 and NULL returned. */
const char *market_path_id(struct request *req);

/* True when the body has name with a JSON null (PATCH: clear the field). */
bool market_field_null(const struct request *req, const char *name);

/* Answers 200 with out when e is GE_OK, else e as market_respond_error
 * does (out, then NULL, is not used). */
void market_respond(struct request *req, enum gala_error e, cJSON *out,
    const struct refusal *why);

/* Answers 201 with body and Location: path. */
void market_respond_created(struct request *req, const char *path, cJSON *body);

#endif
