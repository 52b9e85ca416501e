#include "autoconf.h"

#include "server/scoreboard.h"

#include <string.h>
#include <sys/mman.h>

struct scoreboard *scoreboard_create(void)
{
	void *p = mmap(NULL, sizeof(struct scoreboard), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, sizeof(struct scoreboard));
	return p;
}
