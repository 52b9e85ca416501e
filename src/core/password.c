#include "autoconf.h"

#include "core/password.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>


#define PASSWORD_MIN_CHARS 8
#define PASSWORD_MAX_CHARS 128

/* Process-wide: the hash verified for unknown accounts, made once by the
 * master before it forks (password_prepare) and inherited by the workers. */
static char dummy_hash[PASSWORD_HASH_MAX];

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static int cmp_common(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

static bool password_is_common(const char *password)
{
	char lower[PASSWORD_MAX_CHARS * 4 + 1];
	size_t n = strlen(password);
	if (n >= sizeof lower)
		return false;
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char)tolower((unsigned char)password[i]);
	return bsearch(lower, common_passwords, common_passwords_count, sizeof common_passwords[0],
	    cmp_common) != NULL;
}

const char *password_policy_error(const char *password)
{
	size_t chars = utf8_chars(password);
	if (chars < PASSWORD_MIN_CHARS)
		return "password must be at least 8 characters";
	if (chars > PASSWORD_MAX_CHARS)
		return "password must be at most 128 characters";
	if (password_is_common(password))
		return "password is too common; choose one that is harder to guess";
	return NULL;
}

int password_hash(const char *password, char out[PASSWORD_HASH_MAX])
{
	return crypto_pwhash_str(out, password, strlen(password),
	    crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE);
}

void password_prepare(void)
{
	if (dummy_hash[0] != '\0')
		return;
	char pw[33];
	unsigned char raw[16];
	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(pw, sizeof pw, raw, sizeof raw);
	if (password_hash(pw, dummy_hash) != 0)
		dummy_hash[0] = '\0';
}

bool password_verify(const char *password, const char *hash)
{
	if (hash == NULL) {
		password_prepare();
		/* The answer is always "no"; only the work matters. */
		int spent = crypto_pwhash_str_verify(dummy_hash, password, strlen(password));
		(void)spent;
		return false;
	}
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

bool password_needs_rehash(const char *hash)
{
	return crypto_pwhash_str_needs_rehash(hash, crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0;
}
