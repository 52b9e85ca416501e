/* Idempotency keys (API.md, Conventions: Idempotency-Key; the IETF httpapi
 * Idempotency-Key draft as Stripe behaves): the claim on (scope, key) in
 * idempotency_keys and the response stored under it. Which requests take
 * a key, and how each outcome is answered, is the pipeline's business
 * (http/idempotency_stage.h).
 *
 *   claim    one INSERT ... ON CONFLICT claims the key, committed before
 *            the request's own work, so that a duplicate on any worker or
 *            host sees it. The fingerprint is method, path and an
 *            HMAC-SHA256 of the body under a server key: a body that held a
 *            code or a password leaves nothing at rest to guess it from. A key still in flight whose owner is older than the
 *            stale age (the worker was killed) is taken over.
 *   store    the response, once the request's work is done;
 *   release  the claim, for an answer that must not pin the key.
 * Both go in one round trip with the COMMIT of the work the request holds
 * (db/db.h, db_hold): the work and the stored response are committed
 * together or not at all.
 *
 * Keys live 72 hours (gala maintenance purges older ones). A worker that
 * dies before that COMMIT leaves nothing of the held work behind: the
 * retry after the stale period runs the request once. What a request
 * commits before a Stripe call (a payout's reservation, which every other
 * worker must see) is committed at that moment; those flows resume from it
 * on the retry, under their own Stripe idempotency keys. */
#ifndef GALA_IDEMPOTENCY_H
#define GALA_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "db/db.h"

/* How long keys are kept; gala maintenance deletes older ones. */
#define IDEMPOTENCY_KEEP_HOURS 72
/* Added to REQUEST_TIMEOUT_SECONDS before an in-flight claim is stale: the
 * master kills a worker a little after the timeout. */
#define IDEMPOTENCY_STALE_MARGIN_SECONDS 10

struct idempotency_claim {
	const char *scope;      /* "user:<id>", or "ip:<address>" when anonymous */
	const char *key;
	char lock_token[33];    /* set by idempotency_claim */
};

/* What a key's first request is recognised by. */
struct idempotency_request {
	const char *method;
	const char *path;
	const char *body;
	size_t body_len;
	const char *fingerprint_key;   /* the HMAC key of the body's fingerprint */
};

struct idempotency_response {
	int status;
	const char *content_type;
	const char *body;
	size_t body_len;
	const char *headers_json;   /* the headers a replay repeats, as an object */
};

enum idempotency_outcome {
	IDEMPOTENCY_CLAIMED,         /* ours: run the request, then store or release */
	IDEMPOTENCY_OTHER_REQUEST,   /* the key was used with another fingerprint */
	IDEMPOTENCY_IN_FLIGHT,       /* another request holds it */
	IDEMPOTENCY_FINISHED,        /* *stored holds the response to replay */
};

/* Claims c->scope/c->key for r. DB_OK with *outcome set (and *stored for
 * IDEMPOTENCY_FINISHED, arena-owned); else the status that kept it from
 * being claimed (DB_REFUSED: a deferred statement sent with it failed). */
enum db_status idempotency_claim(arena_t *a, struct idempotency_claim *c,
    const struct idempotency_request *r, int stale_seconds, enum idempotency_outcome *outcome,
    struct idempotency_response *stored);

/* Stores the response under a claim we hold, with the COMMIT of the held
 * work (db_hold_commit), waiting for its WAL flush. */
enum db_status idempotency_store(arena_t *a, const struct idempotency_claim *c,
    const struct idempotency_response *r);

/* Lets go of a claim we hold, with the COMMIT of the held work if any
 * (db_hold_commit). */
enum db_status idempotency_release(arena_t *a, const struct idempotency_claim *c);

/* 1..255 printable ASCII characters (space included). */
bool idempotency_key_valid(const char *key);

#endif
