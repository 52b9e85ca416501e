/* Small cryptographic helpers over libsodium and OpenSSL: random tokens,
 * keyed hashes for OTPs and reset tokens, constant-time comparison. */
#ifndef GALA_CRYPTO_H
#define GALA_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

/* A random UUID v4 into out (37 bytes). */
void crypto_uuid4(char out[37]);

/* True for a canonical 8-4-4-4-12 hex UUID (either case). */
bool uuid_valid(const char *s);

/* nbytes random bytes as lowercase hex into out (2*nbytes+1). */
void crypto_random_hex(char *out, size_t nbytes);

/* nbytes random bytes as unpadded base64url into out (needs 4*nbytes/3+2). */
void crypto_random_token(char *out, size_t outlen, size_t nbytes);

/* HMAC-SHA256(key, msg) as lowercase hex into out (65 bytes). */
void crypto_hmac_sha256_hex(const char *key, const void *msg, size_t msglen, char out[65]);

/* SHA-256(msg) as lowercase hex into out (65 bytes). */
void crypto_sha256_hex(const void *msg, size_t msglen, char out[65]);

/* Constant-time equality of two NUL-terminated strings (time depends only
 * on the lengths). */
bool crypto_str_equal(const char *a, const char *b);

#endif
