/* What both FastCGI targets (fuzz_fcgi, fuzz_fcgi_socket) do with a request
 * the parser (server/fcgi.c) yields, as the worker does (worker_read), and
 * the properties they check on it. */
#ifndef GALA_FUZZ_FCGI_REQUEST_H
#define GALA_FUZZ_FCGI_REQUEST_H

#include <stddef.h>

#include "core/arena.h"
#include "server/fcgi.h"

/* At FCGI_PARAMS_DONE: the params made a request whose headers, query,
 * cookies and route the rest of the worker can read. Returns the most of
 * the body to keep (its Content-Length within the route's limit, else 0). */
size_t fuzz_fcgi_params(arena_t *a, const struct fcgi_parser *p);

/* After a request (FCGI_REQUEST_DONE or FCGI_ABORTED): the parser kept no
 * more of the body than expected and no byte of the next request; starts
 * the next one. */
void fuzz_fcgi_request_done(arena_t *a, struct fcgi_parser *p, size_t expected);

#endif
