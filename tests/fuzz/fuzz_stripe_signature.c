/* Stripe-Signature parsing and verification (clients/stripe.c). The input
 * is the header, a line of secrets and the payload; "v1=@" in the header
 * stands for the true signature of the payload at FUZZ_NOW under the first
 * secret, so that the fuzzer reaches the matching path. A canonical header
 * with the true signature always verifies; nothing verifies without a
 * secret. */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "clients/stripe.h"
#include "core/crypto.h"

#include "fuzz.h"

#define FUZZ_NOW 1800000000LL
#define TOLERANCE 300

/* The v1 signature of payload at FUZZ_NOW under secret. */
static void sign(arena_t *a, const char *secret, const char *payload, size_t len, char mac[65])
{
	char *signed_payload = arena_alloc(a, len + 32);
	int n = snprintf(signed_payload, 32, "%lld.", FUZZ_NOW);
	memcpy(signed_payload + n, payload, len);
	crypto_hmac_sha256_hex(secret, signed_payload, (size_t)n + len, mac);
}

/* header with each "v1=@" made "v1=<mac>". */
static const char *with_signature(arena_t *a, const char *header, const char *mac)
{
	size_t n = 0;
	for (const char *p = strstr(header, "v1=@"); p != NULL; p = strstr(p + 4, "v1=@"))
		n++;
	char *out = arena_alloc(a, strlen(header) + n * 64 + 1), *o = out;
	for (const char *p = header; *p != '\0';) {
		if (strncmp(p, "v1=@", 4) == 0) {
			o += sprintf(o, "v1=%s", mac);
			p += 4;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	arena_t *a = fuzz_arena();
	char *header, *secrets;
	fuzz_split(a, &data, &size, &header);
	fuzz_split(a, &data, &size, &secrets);
	const char *payload = fuzz_string(a, data, size);

	char *first = arena_strdup(a, secrets);
	first[strcspn(first, ",")] = '\0';
	char mac[65];
	sign(a, first, payload, size, mac);
	stripe_signature_valid(with_signature(a, header, mac), payload, size, secrets, FUZZ_NOW,
	    TOLERANCE);
	FUZZ_ASSERT(!stripe_signature_valid(header, payload, size, "", FUZZ_NOW, TOLERANCE));

	bool plain_secret = *first != '\0' && first[0] != ' ' && first[strlen(first) - 1] != ' ' &&
	    strlen(first) < 256;
	if (plain_secret) {
		const char *canonical = arena_printf(a, "t=%lld,v1=%s", FUZZ_NOW, mac);
		FUZZ_ASSERT(stripe_signature_valid(canonical, payload, size, secrets, FUZZ_NOW,
		    TOLERANCE));
	}
	return 0;
}
