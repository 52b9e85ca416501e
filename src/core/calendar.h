/* Proleptic Gregorian calendar arithmetic on day counts since 1970-01-01
 * (Howard Hinnant's days_from_civil and civil_from_days), and the RFC 3339
 * UTC text of an epoch second, which every response carries several of. */
#ifndef GALA_CALENDAR_H
#define GALA_CALENDAR_H

#define CALENDAR_RFC3339_LEN 64

long long calendar_days_from_civil(long long y, unsigned m, unsigned d);
void calendar_civil_from_days(long long days, long long *y, unsigned *m, unsigned *d);

/* "2026-12-03T13:25:01Z" for t seconds since the epoch, into out; returns
 * out. */
const char *calendar_rfc3339(long long t, char out[CALENDAR_RFC3339_LEN]);

#endif
