/* A FastCGI worker: accepts one request at a time on the shared listening
 * socket, runs the pipeline, writes one response and one access log line,
 * and frees the request's memory in one go. */
#ifndef GALA_WORKER_H
#define GALA_WORKER_H

#include <stddef.h>

#include "http/router.h"
#include "server/scoreboard.h"

/* Runs until SIGTERM (after the request in flight) or until
 * MAX_REQUESTS_PER_WORKER requests are served, in slot of board. Returns
 * the exit status. */
int worker_run(int listen_fd, const struct scoreboard *board, struct worker_slot *slot,
    const struct route *table, size_t nroutes);

#endif
