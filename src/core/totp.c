#include "autoconf.h"

#include "core/totp.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

long long totp_step(long long t)
{
	return t / TOTP_STEP_SECONDS;
}

long totp_code(const unsigned char *key, size_t keylen, long long counter)
{
	unsigned char msg[8];
	unsigned long long c = (unsigned long long)counter;
	for (int i = 7; i >= 0; i--) {
		msg[i] = (unsigned char)(c & 0xff);
		c >>= 8;
	}
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	if (HMAC(EVP_sha1(), key, (int)keylen, msg, sizeof msg, mac, &maclen) == NULL ||
	    maclen != 20)
		return -1;
	/* RFC 4226, 5.3: dynamic truncation. */
	unsigned off = mac[19] & 0x0f;
	unsigned long bin = ((unsigned long)(mac[off] & 0x7f) << 24) |
	    ((unsigned long)mac[off + 1] << 16) | ((unsigned long)mac[off + 2] << 8) |
	    (unsigned long)mac[off + 3];
	sodium_memzero(mac, sizeof mac);
	return (long)(bin % 1000000ul);
}

bool totp_check(const unsigned char *key, size_t keylen, const char *code, long long now,
    long long after, long long *step)
{
	if (strlen(code) != TOTP_DIGITS || strspn(code, "0123456789") != TOTP_DIGITS)
		return false;
	long long s = totp_step(now);
	bool found = false;
	/* Every candidate is computed and compared, so that the time does not
	 * tell which step matched. */
	for (long long k = s - TOTP_WINDOW; k <= s + TOTP_WINDOW; k++) {
		long v = totp_code(key, keylen, k);
		char want[TOTP_DIGITS + 1];
		if (v < 0)
			return false;
		for (int i = TOTP_DIGITS - 1; i >= 0; i--) {
			want[i] = (char)('0' + v % 10);
			v /= 10;
		}
		want[TOTP_DIGITS] = '\0';
		bool eq = sodium_memcmp(want, code, TOTP_DIGITS) == 0;
		if (eq && k > after && !found) {
			found = true;
			*step = k;
		}
	}
	return found;
}

int base32_encode(const unsigned char *in, size_t inlen, char *out, size_t outlen)
{
	if ((inlen * 8 + 4) / 5 + 1 > outlen)
		return -1;
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < inlen; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = b32_alphabet[(acc >> bits) & 31];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0)
		out[o++] = b32_alphabet[(acc << (5 - bits)) & 31];
	out[o] = '\0';
	return 0;
}

long base32_decode(const char *in, unsigned char *out, size_t outlen)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (const char *p = in; *p != '\0' && *p != '='; p++) {
		char c = *p;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		const char *hit = c != '\0' ? strchr(b32_alphabet, c) : NULL;
		if (hit == NULL)
			return -1;
		acc = (acc << 5) | (unsigned)(hit - b32_alphabet);
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outlen)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
		}
		acc &= (1u << bits) - 1;
	}
	return (long)o;
}
