/* The route table: every route of the API in one place, with the method,
 * the path pattern, the handler and what the pipeline enforces for it. */
#ifndef GALA_ROUTES_H
#define GALA_ROUTES_H

#include <stddef.h>

#include "http/router.h"

extern const struct route api_routes[];
extern const size_t api_routes_count;

#endif
