#include "autoconf.h"

#include "server/scoreboard.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>

struct scoreboard *scoreboard_create(void)
{
	void *p = mmap(NULL, sizeof(struct scoreboard), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, sizeof(struct scoreboard));
	return p;
}

long long monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}
