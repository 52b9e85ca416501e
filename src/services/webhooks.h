/* Stripe webhooks (API.md "Stripe webhook", seed Phase 2).
 *
 * The raw body is authenticated before it is parsed; each event id is
 * recorded in stripe_events in the same transaction as the event's effect,
 * so a redelivery changes nothing and is answered as a duplicate. Handlers
 * are looked up by event type in one table (webhooks.c); unknown types are
 * acknowledged and ignored (their ids recorded all the same). Every handler is idempotent and tolerates
 * events arriving out of order: it compares what the event says with the
 * current rows and only ever moves them forward. */
#ifndef GALA_WEBHOOKS_H
#define GALA_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "core/config.h"
#include "db/db.h"
#include "core/errors.h"
#include "services/context.h"

/* Stripe's events are not ours to size: the webhook takes bodies up to
 * this, whatever MAX_BODY_BYTES says (nginx's location matches it). */
#define WEBHOOK_MAX_BODY_BYTES ((size_t)1024 * 1024)

/* Signed events older or newer than this are refused (replay window). */
#define WEBHOOK_TOLERANCE_SECONDS 300

enum webhook_auth {
	WEBHOOK_DENY,        /* 403 */
	WEBHOOK_VERIFIED,    /* a v1 signature of one of the secrets matched */
	WEBHOOK_UNVERIFIED,  /* no secret, opted in outside production: accepted, logged */
};

/* With secrets (comma-separated) the Stripe-Signature header must verify
 * within +-WEBHOOK_TOLERANCE_SECONDS of now. Without a secret every event is
 * refused, unless allow_unsigned (STRIPE_WEBHOOK_UNSIGNED_INSECURE_ALLOW)
 * outside production: then it is accepted unverified. header may be NULL. */
enum webhook_auth webhook_authenticate(enum gala_environment env, bool allow_unsigned,
    const char *secrets, const char *header, const char *payload, size_t len, long long now);

/* One event as a handler sees it, inside the open transaction that also
 * records its id. */
struct webhook_event {
	struct svc_ctx *cx;
	arena_t *arena;
	const char *id;
	const char *type;
	long long created;          /* the event's "created", 0 when absent */
	const cJSON *object;        /* data.object */
	const cJSON *previous;      /* data.previous_attributes, or NULL */
};

/* Applies the event; must neither commit nor roll back. GE_OK when the
 * event had its effect or needed none (an older event than the state). */
typedef enum gala_error (*webhook_handler)(const struct webhook_event *ev);

struct webhook_route {
	const char *type;
	webhook_handler handler;
};

struct webhook_outcome {
	bool duplicate;             /* the event id was processed before */
	bool ignored;               /* no handler for the type */
};

/* Processes one authenticated, parsed event (the root object of the body).
 * GE_INVALID_WEBHOOK_PAYLOAD when it has no string id and type. */
enum gala_error webhooks_process(struct svc_ctx *cx, const cJSON *event,
    struct webhook_outcome *out);

/* gala maintenance: forgets processed event ids after 30 days (Stripe
 * stops redelivering after three). Adds the rows deleted to *count. */
enum db_status webhooks_purge_events(arena_t *a, long long *count);

#endif
