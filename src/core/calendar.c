#include "autoconf.h"

#include "core/calendar.h"

#include <stdio.h>

long long calendar_days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

void calendar_civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
	z += 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (long long)yoe + era * 400 + (*m <= 2);
}

const char *calendar_rfc3339(long long t, char out[CALENDAR_RFC3339_LEN])
{
	long long days = t / 86400, secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	long long y;
	unsigned m, d;
	calendar_civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) {
		snprintf(out, CALENDAR_RFC3339_LEN, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", y, m, d,
		    secs / 3600, secs / 60 % 60, secs % 60);
		return out;
	}
	/* No printf on the common path. */
	const unsigned f[] = { (unsigned)y, m, d, (unsigned)(secs / 3600),
		(unsigned)(secs / 60 % 60), (unsigned)(secs % 60) };
	static const char seps[] = "--T::Z";
	char *o = out;
	*o++ = (char)('0' + f[0] / 1000);
	*o++ = (char)('0' + f[0] / 100 % 10);
	for (int i = 0; i < 6; i++) {
		*o++ = (char)('0' + f[i] / 10 % 10);
		*o++ = (char)('0' + f[i] % 10);
		*o++ = seps[i];
	}
	*o = '\0';
	return out;
}
