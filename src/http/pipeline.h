/* The request pipeline: route, body checks, the middleware of the route
 * (rate limit, authentication, CSRF, idempotency), then the handler. Always
 * leaves a response in req->resp. */
#ifndef GALA_PIPELINE_H
#define GALA_PIPELINE_H

#include <stddef.h>

#include "http/request.h"
#include "http/router.h"

void pipeline_run(struct request *req, const struct route *table, size_t n);

#endif
