/* JWT verification (core/jwt.c) on any token: a token it accepts carries
 * claims that sign and verify again to the same claims, and no token
 * verifies under another key. */
#include "autoconf.h"

#include <string.h>

#include "core/jwt.h"

#include "fuzz.h"

/* The seeds (tests/fuzz/corpus/jwt) expire after this instant or before. */
#define FUZZ_NOW 1800000000LL

static bool claims_equal(const struct jwt_claims *x, const struct jwt_claims *y)
{
	return strcmp(x->sub, y->sub) == 0 && strcmp(x->role, y->role) == 0 && x->iat == y->iat &&
	    x->exp == y->exp && strcmp(x->jti, y->jti) == 0 && strcmp(x->csrf, y->csrf) == 0 &&
	    x->tv == y->tv && x->otp == y->otp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	arena_t *a = fuzz_arena();
	const char *token = fuzz_string(a, data, size);
	struct jwt_claims c, again;
	FUZZ_ASSERT(jwt_verify(token, "another-key-0123456789abcdefghijklmnopq", FUZZ_NOW, &c) !=
	    JWT_OK);
	if (jwt_verify(token, FUZZ_SECRET_KEY, FUZZ_NOW, &c) != JWT_OK)
		return 0;
	FUZZ_ASSERT(c.exp > FUZZ_NOW);
	char signed_again[JWT_MAX + 1];
	FUZZ_ASSERT(jwt_sign(&c, FUZZ_SECRET_KEY, signed_again, sizeof signed_again) == 0);
	FUZZ_ASSERT(jwt_verify(signed_again, FUZZ_SECRET_KEY, FUZZ_NOW, &again) == JWT_OK);
	FUZZ_ASSERT(claims_equal(&c, &again));
	return 0;
}
