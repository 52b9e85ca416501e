/* RFC 3339 parsing (http/validate.c): a time that converts is valid, its
 * UTC form is valid too, names the same second and converts to itself. */
#include "autoconf.h"

#include <string.h>

#include "http/validate.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	arena_t *a = fuzz_arena();
	const char *s = fuzz_string(a, data, size);
	bool valid = rfc3339_valid(s);
	long long t, t2;
	int rc = rfc3339_to_unix(s, &t);
	FUZZ_ASSERT(rc != 0 || valid);
	const char *utc = rfc3339_to_utc(a, s);
	if (utc == NULL)
		return 0;
	FUZZ_ASSERT(rc == 0);
	FUZZ_ASSERT(rfc3339_valid(utc));
	FUZZ_ASSERT(rfc3339_to_unix(utc, &t2) == 0 && t2 == t);
	const char *again = rfc3339_to_utc(a, utc);
	FUZZ_ASSERT(again != NULL && strcmp(again, utc) == 0);
	return 0;
}
