/* TOTP (RFC 6238) over HOTP (RFC 4226): HMAC-SHA1, 6 digits, 30-second
 * steps from the Unix epoch, accepted one step either side of now; and the
 * base32 alphabet of RFC 4648 that authenticator apps read secrets in. */
#ifndef GALA_TOTP_H
#define GALA_TOTP_H

#include <stdbool.h>
#include <stddef.h>

#define TOTP_STEP_SECONDS 30
#define TOTP_DIGITS 6
#define TOTP_WINDOW 1          /* steps accepted either side of now */
#define TOTP_SECRET_BYTES 20   /* 160 bits, RFC 4226's recommendation */
/* The base32 form of a TOTP_SECRET_BYTES secret, without padding, + NUL. */
#define TOTP_SECRET_B32_LEN 33

/* The step of unix time t. */
long long totp_step(long long t);

/* HOTP(key, counter) truncated to TOTP_DIGITS digits; -1 if HMAC fails. */
long totp_code(const unsigned char *key, size_t keylen, long long counter);

/* Checks a code of exactly TOTP_DIGITS ASCII digits against the steps
 * around now, skipping any step <= after (one already accepted: a code is
 * never taken twice). Returns true and sets *step to the matching step. The
 * comparison of each candidate is constant-time. */
bool totp_check(const unsigned char *key, size_t keylen, const char *code, long long now,
    long long after, long long *step);

/* Base32 (RFC 4648, upper case, no padding) of in into out; returns 0, or
 * -1 when out (outlen bytes, NUL included) is too small. */
int base32_encode(const unsigned char *in, size_t inlen, char *out, size_t outlen);

/* Decodes base32 (either case, padding and trailing bits ignored); returns
 * the byte count, or -1 on a character outside the alphabet or when out is
 * too small. */
long base32_decode(const char *in, unsigned char *out, size_t outlen);

#endif
