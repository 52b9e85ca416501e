/* The request pipeline: route, body checks, the middleware of the route
 * (authentication and CSRF, rate limit, idempotency), then the handler and
 * the idempotency record of its answer. Always leaves a response in
 * req->resp. */
#ifndef GALA_PIPELINE_H
#define GALA_PIPELINE_H

#include <stddef.h>

#include "http/request.h"
#include "http/router.h"

void pipeline_run(struct request *req, const struct route *table, size_t n);

#endif
