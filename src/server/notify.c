#include "autoconf.h"

#include "server/notify.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The master's: where systemd listens, and the socket it sends from. */
static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;
static int notify_fd = -1;

void notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len = path != NULL ? strlen(path) : 0;
	if (len == 0 || len >= sizeof notify_addr.sun_path || (path[0] != '/' && path[0] != '@')) {
		unsetenv("NOTIFY_SOCKET");
		return;
	}
	memset(&notify_addr, 0, sizeof notify_addr);
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, path, len);
	/* "@name" is the abstract namespace: a leading NUL, no terminator. */
	if (path[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
	    (path[0] == '/' ? 1 : 0));
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsetenv("NOTIFY_SOCKET");
}

void notify_send(const char *state)
{
	if (notify_fd < 0)
		return;
	(void)sendto(notify_fd, state, strlen(state), MSG_NOSIGNAL,
	    (const struct sockaddr *)&notify_addr, notify_addr_len);
}

void notify_free(void)
{
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
}
