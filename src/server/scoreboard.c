#include "autoconf.h"

#include "server/scoreboard.h"

#include <string.h>
#include <sys/mman.h>

struct scoreboard *scoreboard_create(void)
{
	/* An anonymous mapping takes fd -1, which cppcheck's POSIX model does
	 * not know. */
	void *p = mmap(NULL, sizeof(struct scoreboard), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0); /* cppcheck-suppress invalidFunctionArg */
	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, sizeof(struct scoreboard));
	return p;
}
