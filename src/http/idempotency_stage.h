/* Idempotency keys in the pipeline (services/idempotency.h holds the
 * claim). For a route with ROUTE_IDEMPOTENT and an Idempotency-Key header:
 * the key is claimed before the handler runs, scoped to the user (the
 * client IP when anonymous). A finished key with the same fingerprint is
 * replayed (status, body byte for byte, Location and Set-Cookie, plus
 * Idempotent-Replayed: true); another fingerprint is 422
 * idempotency_key_reused; a key still in flight is 409
 * idempotency_key_in_use with Retry-After. While the claim is held, the
 * handler's work is held too (db/db.h, db_hold); after the handler, the
 * response is stored, or the claim released for answers that must not pin
 * the key (idempotency_should_store), in the one transaction that commits
 * that work. */
#ifndef GALA_IDEMPOTENCY_STAGE_H
#define GALA_IDEMPOTENCY_STAGE_H

#include <stdbool.h>

#include "http/request.h"
#include "services/idempotency.h"

struct idempotency {
	bool active;            /* this request owns a claim that finish settles */
	struct idempotency_claim claim;
};

/* Returns 0 to run the handler (state->active tells whether a claim is
 * held), or -1 when it answered: a replay, 400, 409, 422 or 503. */
int idempotency_begin(struct request *req, struct idempotency *state);

/* Stores or releases the claim according to req->resp, in one transaction
 * with the handler's held work (db_hold). When that work could not be
 * committed, the claim is released and the answer becomes 503
 * database_unavailable; any other failure is logged. */
void idempotency_finish(struct request *req, const struct idempotency *state);

/* --- For the unit tests. --- */

/* Whether a response is replayed to later requests with the same key: what
 * the handler decided after looking at the state (2xx, 403 on ownership,
 * 404, 409 invalid_state..., a 502 for a definite Stripe refusal), not
 * refusals a corrected retry may fix (400, 401, 403 CSRF, unverified
 * email or mfa_required, 413, 415, 422, 429) nor transient answers (409
 * payout_in_progress or payout_on_hold, 502 payout_unconfirmed or Stripe
 * unreachable, 5xx). */
bool idempotency_should_store(int status, enum gala_error error);

#endif
