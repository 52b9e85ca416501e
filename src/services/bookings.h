/* Bookings (event_services) and their state machine, the one place that
 * decides which status change is allowed to whom (API.md, "Event services").
 *
 * Every status change goes through booking_transition(): inside the
 * caller's transaction it checks the change against the table, applies it
 * with UPDATE ... WHERE status = <the status it checked> on a row the caller
 * has locked (bookings_load with lock), and writes the audit row
 * "booking.<new status>". Two concurrent changes of one booking therefore
 * never both win: the second waits for the lock and then finds a status the
 * table refuses (409 invalid_state). The money code (pay, webhooks,
 * release, refund) changes statuses with the same function. */
#ifndef GALA_BOOKINGS_H
#define GALA_BOOKINGS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "services/session.h"
#include "core/errors.h"
#include "services/context.h"
#include "core/errors.h"

enum booking_status {
	BOOKING_REQUESTED,
	BOOKING_ACCEPTED,
	BOOKING_DECLINED,
	BOOKING_CANCELLED,
	BOOKING_PAYMENT_PENDING,
	BOOKING_PAID,
	BOOKING_COMPLETED,
	BOOKING_RELEASED,
	BOOKING_REFUNDED,
	BOOKING__STATUS_COUNT
};

enum booking_action {
	BOOKING_ACCEPT,             /* provider: requested -> accepted */
	BOOKING_DECLINE,            /* provider: requested -> declined */
	BOOKING_CANCEL,             /* owner or provider; a paid one is refunded */
	BOOKING_PAY,                /* owner: accepted -> payment_pending */
	BOOKING_PAYMENT_SUCCEEDED,  /* webhook: payment_pending -> paid */
	BOOKING_PAYMENT_FAILED,     /* webhook: payment_pending -> accepted */
	BOOKING_COMPLETE,           /* owner or admin: paid -> completed */
	BOOKING_RELEASE,            /* admin, or owner: completed -> released */
	BOOKING_REFUND,             /* admin: paid, completed, released -> refunded */
	BOOKING_CHARGE_REFUNDED,    /* webhook charge.refunded: -> refunded */
	BOOKING__ACTION_COUNT
};

/* Who acts, as a set: a caller can be several at once (an admin who owns
 * the event). 0 means the caller may not even see the booking. */
#define BOOKING_ACTOR_OWNER    0x1u   /* the event's owner */
#define BOOKING_ACTOR_PROVIDER 0x2u   /* the user of the booked provider profile */
#define BOOKING_ACTOR_ADMIN    0x4u
#define BOOKING_ACTOR_SYSTEM   0x8u   /* Stripe webhooks and gala maintenance */

/* One booking with what authorization and payments need to know about it.
 * Strings live in the arena of the call that loaded it. */
struct booking {
	const char *id;
	const char *event_id;
	const char *service_provider_id;
	const char *description;
	long long amount_cents;
	const char *currency;
	long long platform_fee_cents;
	enum booking_status status;
	char created_at[DB_TIME_LEN];
	char updated_at[DB_TIME_LEN];
	const char *event_owner_id;          /* events.owner_id */
	const char *event_status;            /* draft, published, cancelled */
	const char *provider_user_id;        /* service_providers.user_id */
	const char *provider_stripe_account_id;   /* NULL before onboarding */
	bool provider_payouts_enabled;
};

const char *booking_status_name(enum booking_status s);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int booking_status_parse(const char *name, enum booking_status *out);
/* "accept", "cancel"... as the routes spell them. */
const char *booking_action_name(enum booking_action a);

/* The machine of API.md. Sets *to and returns GE_OK when actor may take
 * action from status from; GE_FORBIDDEN when none of actor's roles may
 * take this action from there (or at all: the event owner accepting, a
 * cancel of a completed booking whose refund is admin only);
 * GE_INVALID_STATE when actor may take the action, but not from this
 * status. */
enum gala_error booking_decide(enum booking_status from, enum booking_action action,
    unsigned actor, enum booking_status *to);

/* The caller's relation to b (BOOKING_ACTOR_* bits); 0 when u may not see
 * it (then answer 404). */
unsigned booking_actor(const struct booking *b, const struct session *u);

/* Reads one booking; with lock, FOR UPDATE of its row (call inside a
 * transaction). GE_NOT_FOUND when there is none (id must be a UUID).
 * Checks no visibility. */
enum gala_error bookings_load(arena_t *a, const char *id, bool lock, struct booking *out);

/* Changes b's status by action, inside the caller's open transaction (it
 * neither commits nor rolls back). b should have been loaded with lock in
 * that transaction. actor_user_id is the audit row's actor (NULL for the
 * system); metadata (owned, may be NULL) is merged into the audit row's.
 * GE_OK: b->status and b->updated_at are the new ones. GE_FORBIDDEN,
 * GE_INVALID_STATE: why->message names the current status. A row changed
 * since it was read is decided again on its current status. */
enum gala_error booking_transition(struct svc_ctx *cx, arena_t *a, struct booking *b,
    enum booking_action action, unsigned actor, const char *actor_user_id,
    cJSON *metadata, struct refusal *why);

/* For DELETE /api/events/{id}, inside the caller's transaction (the event
 * row locked): locks the event's bookings; GE_INVALID_STATE (why->message)
 * when one is payment_pending, paid or completed, else cancels every
 * requested or accepted one as the event's owner. */
enum gala_error bookings_cancel_for_event(struct svc_ctx *cx, arena_t *a, const char *event_id,
    struct refusal *why);

/* The Event service object of API.md. */
cJSON *booking_json(const struct booking *b);

/* POST /api/event-services/{id}/accept|decline|complete|cancel for the
 * signed-in caller, in one transaction. *out is the updated booking. A
 * cancel of a paid booking is a refund, which money code does: this
 * changes nothing, sets *refund and returns GE_OK (the caller goes on
 * with charges_cancel_paid(), services/charges.h). */
enum gala_error bookings_act(struct svc_ctx *cx, const char *id, enum booking_action action,
    cJSON **out, struct refusal *why, bool *refund);

struct booking_new {
	const char *service_provider_id;
	const char *description;
	long long amount_cents;
};

/* POST /api/events/{event_id}/services by the signed-in caller: the event
 * owner books a provider at amount_cents in the event's currency, with the
 * platform fee of PLATFORM_FEE_BPS fixed now. GE_VALIDATION (param
 * service_provider_id) for an unknown provider; GE_INVALID_STATE for a
 * cancelled event. */
enum gala_error bookings_create(struct svc_ctx *cx, const char *event_id,
    const struct booking_new *in, cJSON **out, struct refusal *why);

/* GET /api/event-services/{id}. */
enum gala_error bookings_get(struct svc_ctx *cx, const char *id, cJSON **out);

/* GET /api/events/{event_id}/services: all of them for the owner and
 * admins, a provider's own for a provider with a booking on the event. */
enum gala_error bookings_list(struct svc_ctx *cx, const char *event_id, int limit, int offset,
    cJSON **out);

#endif
