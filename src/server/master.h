/* gala serve: the pre-forking master. It holds the listening socket and the
 * configuration, forks WORKERS workers, respawns dead ones with backoff,
 * kills a worker stuck past REQUEST_TIMEOUT_SECONDS, drains on SIGTERM
 * (a second SIGTERM exits at once) and on SIGHUP reloads the configuration
 * and replaces the workers one by one. It holds no database connection. */
#ifndef GALA_MASTER_H
#define GALA_MASTER_H

#include <stddef.h>

#include "core/config.h"
#include "http/router.h"

/* Takes ownership of cfg (loaded and checked by the caller). Returns the
 * process exit status. */
int master_run(struct config *cfg, const struct route *table, size_t nroutes);

#endif
