/* The one clock for durations and deadlines: CLOCK_MONOTONIC, which no
 * change of the wall clock moves. */
#ifndef GALA_CLOCK_H
#define GALA_CLOCK_H

long long clock_us(void);
long long clock_ms(void);

#endif
