/* The listening socket of the pool: inherited from systemd (LISTEN_FDS) or
 * opened from LISTEN=unix:PATH|HOST:PORT. It is made non-blocking so that
 * every worker can poll it and an accept that lost the race returns. */
#ifndef GALA_LISTEN_H
#define GALA_LISTEN_H

#include <stddef.h>

/* Returns the fd, or -1 with a message in err. *from_systemd tells whether
 * it came from socket activation (then it is not unlinked at exit). */
int listen_open(const char *spec, int *from_systemd, char *err, size_t errlen);

/* Removes a unix socket this process created. */
void listen_close(int fd, const char *spec, int from_systemd);

#endif
