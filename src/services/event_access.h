/* Who may see an event: its owner, admins, and a provider with a booking
 * on it (any status). Events and bookings both ask, so the rule lives
 * below both. */
#ifndef GALA_EVENT_ACCESS_H
#define GALA_EVENT_ACCESS_H

#include "core/arena.h"
#include "core/errors.h"
#include "services/session.h"

/* How the caller relates to an event; 0: may not see it (404). */
#define EVENT_ACCESS_OWNER    0x1u
#define EVENT_ACCESS_ADMIN    0x2u
#define EVENT_ACCESS_PROVIDER 0x4u   /* a provider booked on it, any status */

enum event_lock {
	EVENT_LOCK_NONE,
	EVENT_LOCK_SHARE,    /* FOR SHARE: no cancel while a booking is added */
	EVENT_LOCK_UPDATE,   /* FOR NO KEY UPDATE: PATCH and DELETE */
};

struct event_ref {
	const char *id;
	const char *owner_id;
	const char *status;
	const char *currency;
	unsigned access;      /* EVENT_ACCESS_* of the user it was loaded for */
};

/* u's access to the event event_id owned by owner_id, into *access. */
enum gala_error event_access(arena_t *a, const char *event_id, const char *owner_id,
    const struct session *u, unsigned *access);

/* Loads the event and u's access to it (locks need a transaction).
 * GE_NOT_FOUND when there is none or u may not see it. */
enum gala_error event_ref_load(arena_t *a, const char *id, const struct session *u,
    enum event_lock lock, struct event_ref *out);

#endif
