/* Passwords: Argon2id through libsodium's crypto_pwhash_str (INTERACTIVE
 * limits), the length rule and the common-password list. */
#ifndef GALA_PASSWORD_H
#define GALA_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#define PASSWORD_HASH_MAX 128   /* crypto_pwhash_STRBYTES */

extern const char *const common_passwords[];
extern const size_t common_passwords_count;

/* NULL when acceptable, else the reason (for a 422 message). */
const char *password_policy_error(const char *password);

/* Hashes into out (PASSWORD_HASH_MAX). Returns 0 or -1 (out of memory). */
int password_hash(const char *password, char out[PASSWORD_HASH_MAX]);

/* Verifies password against hash; with hash NULL spends the same work on a
 * dummy hash and returns false, so that unknown accounts cost as much as
 * wrong passwords. */
bool password_verify(const char *password, const char *hash);

/* True when hash was made with weaker limits than the current ones. */
bool password_needs_rehash(const char *hash);

/* Makes the dummy hash now (in the master, before the workers fork) rather
 * than on the first unknown login, so that no login ever pays for it. */
void password_prepare(void);

#endif
