/* The request pipeline: route, body checks, the middleware of the route
 * (authentication and CSRF, rate limit, idempotency), then the handler and
 * the idempotency record of its answer. Always leaves a response in
 * req->resp. */
#ifndef GALA_PIPELINE_H
#define GALA_PIPELINE_H

#include <stddef.h>

#include "http/request.h"
#include "http/router.h"

/* Matches the route, so that the worker knows the body limit before it
 * reads the body; pipeline_run does it itself when it was not done. */
void pipeline_route(struct request *req, const struct route *table, size_t n);

/* The largest body the request's route takes (MAX_BODY_BYTES unless the
 * route says otherwise, as the Stripe webhook does). */
size_t pipeline_body_limit(const struct request *req);

/* A request whose arena passes its cap (arena_set_cap) is abandoned where
 * it stands and answered 503; req->abandoned then tells the worker that
 * state outside the arena (a client's handles, malloc'd memory) may have
 * been left behind. */
void pipeline_run(struct request *req, const struct route *table, size_t n);

#endif
