/* Events: a customer's (or an admin's) plans, which bookings hang off.
 * Visible to the owner, admins and a provider with a booking on the event
 * (any status: services/event_access.h); changed only by the owner. Cancelling one (DELETE) cancels
 * its open bookings and is refused while money is moving for one of them. */
#ifndef GALA_EVENTS_H
#define GALA_EVENTS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "core/errors.h"
#include "services/context.h"
#include "core/errors.h"

/* Fields of a create or PATCH. A member that is absent stays NULL / false;
 * for PATCH, *_clear asks to set an optional field to null. */
struct event_fields {
	const char *title;
	const char *description;
	const char *city;
	const char *venue;
	const char *starts_at;
	const char *ends_at;
	const char *currency;
	long long budget_cents;
	bool has_budget;
	bool clear_description, clear_city, clear_venue, clear_ends_at, clear_budget;
	bool publish;          /* PATCH "status": "published" */
};

/* POST /api/events: a draft owned by the caller. */
enum gala_error events_create(struct svc_ctx *cx, const struct event_fields *f, cJSON **out);

/* GET /api/events: the caller's own (admins: all, or owner_id's). */
enum gala_error events_list(struct svc_ctx *cx, const char *owner_id, int limit, int offset,
    cJSON **out);

enum gala_error events_get(struct svc_ctx *cx, const char *id, cJSON **out);

/* PATCH /api/events/{id} (owner). GE_INVALID_STATE for a cancelled event;
 * GE_VALIDATION (why->param) when ends_at would not follow starts_at. */
enum gala_error events_update(struct svc_ctx *cx, const char *id, const struct event_fields *f,
    cJSON **out, struct refusal *why);

/* DELETE /api/events/{id} (owner): status cancelled, with its requested and
 * accepted bookings; GE_INVALID_STATE while one is payment_pending, paid or
 * completed. Cancelling a cancelled event is a no-op. */
enum gala_error events_cancel(struct svc_ctx *cx, const char *id, struct refusal *why);

#endif
