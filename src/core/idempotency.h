/* Idempotency keys (API.md, Conventions: Idempotency-Key; the IETF httpapi
 * Idempotency-Key draft as Stripe behaves). For a route with
 * ROUTE_IDEMPOTENT and an Idempotency-Key header:
 *
 *   begin   one INSERT ... ON CONFLICT claims (scope, key) in
 *           idempotency_keys, committed before the handler runs, so that a
 *           duplicate on any worker or host sees it. Scope is the user, or
 *           the client IP when anonymous; the fingerprint is method, path
 *           and SHA-256 of the body. A finished key with the same
 *           fingerprint is replayed (status, body byte for byte, Location
 *           and Set-Cookie, plus Idempotent-Replayed: true); another
 *           fingerprint is 422 idempotency_key_reused; a key still in
 *           flight is 409 idempotency_key_in_use with Retry-After, unless
 *           its owner is older than REQUEST_TIMEOUT_SECONDS plus a margin
 *           (the worker was killed): then this request takes it over.
 *   finish  after the handler, stores the response the handler decided on
 *           after looking at the state, or deletes the claim for answers
 *           that must not pin the key (idempotency_should_store).
 *
 * Keys live 72 hours (gala maintenance purges older ones). If the worker
 * dies between the handler's commit and finish, the key is re-executed by
 * a retry after the stale period: the same window every at-least-once
 * system has, kept to one statement. */
#ifndef GALA_IDEMPOTENCY_H
#define GALA_IDEMPOTENCY_H

#include <stdbool.h>

#include "http/errors.h"
#include "http/request.h"

/* How long keys are kept; gala maintenance deletes older ones. */
#define IDEMPOTENCY_KEEP_HOURS 72
/* Added to REQUEST_TIMEOUT_SECONDS before an in-flight claim is stale: the
 * master kills a worker a little after the timeout. */
#define IDEMPOTENCY_STALE_MARGIN_SECONDS 10

struct idempotency {
	bool active;            /* this request owns a claim that finish settles */
	const char *scope;
	const char *key;
	char lock_token[33];
};

/* Returns 0 to run the handler (state->active tells whether a claim is
 * held), or -1 when it answered: a replay, 400, 409, 422 or 503. */
int idempotency_begin(struct request *req, struct idempotency *state);

/* Stores or releases the claim according to req->resp. Never changes the
 * response; a failure is logged. */
void idempotency_finish(struct request *req, const struct idempotency *state);

/* --- Pure parts, exposed for the unit tests. --- */

/* 1..255 printable ASCII characters (space included). */
bool idempotency_key_valid(const char *key);

/* Whether a response is replayed to later requests with the same key: what
 * the handler decided after looking at the state (2xx, 403 on ownership,
 * 404, 409 invalid_state..., a 502 for a definite Stripe refusal), not
 * refusals a corrected retry may fix (400, 401, 403 CSRF or unverified
 * email, 413, 415, 422, 429) nor transient answers (409
 * payout_in_progress, 502 payout_unconfirmed or Stripe unreachable, 5xx). */
bool idempotency_should_store(int status, enum gala_error error);

#endif
