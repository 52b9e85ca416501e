/* Access tokens: HS256 JWTs signed with SECRET_KEY (OpenSSL HMAC). Only
 * "alg":"HS256" is accepted; "none" and every other algorithm are refused
 * before any signature work. A token without "amr" (issued before the
 * claim existed) counts as ["pwd"]. */
#ifndef GALA_JWT_H
#define GALA_JWT_H

#include <stdbool.h>
#include <stddef.h>

#define JWT_MAX 1024

struct jwt_claims {
	char sub[64];        /* user id */
	char role[16];
	long long iat;
	long long exp;
	char jti[64];
	char csrf[80];
	long long tv;        /* the user's token version when issued */
	bool otp;            /* "amr": ["pwd","otp"] (a second factor), else ["pwd"] */
};

enum jwt_result {
	JWT_OK = 0,
	JWT_MALFORMED,
	JWT_BAD_ALGORITHM,
	JWT_BAD_SIGNATURE,
	JWT_EXPIRED,
};

/* Writes the compact token into out. Returns 0 or -1 (does not fit). */
int jwt_sign(const struct jwt_claims *c, const char *key, char *out, size_t outlen);

/* Checks structure, algorithm, signature and expiry at now (unix seconds)
 * and fills *c. Anything but JWT_OK is a 401. */
enum jwt_result jwt_verify(const char *token, const char *key, long long now,
    struct jwt_claims *c);

#endif
