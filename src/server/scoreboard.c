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

bool scoreboard_idle_worker_holds_fewer(const struct scoreboard *board,
    const struct worker_slot *self, int conns, long long asleep_before_ms)
{
	for (int i = 0; i < board->high; i++) {
		const struct worker_slot *s = &board->slots[i];
		long long asleep = s->asleep_since_ms;
		if (s != self && s->pid != 0 && s->ready && !s->draining &&
		    asleep != 0 && asleep < asleep_before_ms && s->conns < conns)
			return true;
	}
	return false;
}
