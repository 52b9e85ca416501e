#include "autoconf.h"

#include "core/clock.h"

#include <time.h>

long long clock_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

long long clock_ms(void)
{
	return clock_us() / 1000;
}
