#include "autoconf.h"

#include "core/jwt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* The HMAC state keyed with the last key used (the pads hashed once per
 * process, not per token); re-keyed when the key changes (reload). */
static char jwt_state_key[256];
static crypto_auth_hmacsha256_state jwt_keyed;

static void sign_hs256(const char *key, const char *data, size_t len, unsigned char mac[32])
{
	size_t klen = strlen(key);
	crypto_auth_hmacsha256_state st;
	if (klen >= sizeof jwt_state_key) {
		crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, klen);
	} else {
		if (strcmp(jwt_state_key, key) != 0) {
			crypto_auth_hmacsha256_init(&jwt_keyed, (const unsigned char *)key, klen);
			memcpy(jwt_state_key, key, klen + 1);
		}
		st = jwt_keyed;
	}
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)data, len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof st);
}

int jwt_sign(const struct jwt_claims *c, const char *key, char *out, size_t outlen)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "sub", c->sub);
	cJSON_AddStringToObject(p, "role", c->role);
	cJSON_AddNumberToObject(p, "iat", (double)c->iat);
	cJSON_AddNumberToObject(p, "exp", (double)c->exp);
	cJSON_AddStringToObject(p, "jti", c->jti);
	cJSON_AddStringToObject(p, "csrf", c->csrf);
	cJSON_AddNumberToObject(p, "tv", (double)c->tv);
	cJSON *amr = cJSON_AddArrayToObject(p, "amr");
	cJSON_AddItemToArray(amr, cJSON_CreateString("pwd"));
	if (c->otp)
		cJSON_AddItemToArray(amr, cJSON_CreateString("otp"));
	char *payload = cJSON_PrintUnformatted(p);
	cJSON_Delete(p);
	if (payload == NULL)
		return -1;
	size_t plen = strlen(payload);
	size_t hb = sodium_base64_ENCODED_LEN(sizeof header - 1, B64URL);
	size_t pb = sodium_base64_ENCODED_LEN(plen, B64URL);
	size_t sb = sodium_base64_ENCODED_LEN(32, B64URL);
	if (hb + pb + sb + 2 > outlen || hb + pb + sb + 2 > JWT_MAX) {
		cJSON_free(payload);
		return -1;
	}
	sodium_bin2base64(out, hb, (const unsigned char *)header, sizeof header - 1, B64URL);
	size_t off = strlen(out);
	out[off++] = '.';
	sodium_bin2base64(out + off, pb, (const unsigned char *)payload, plen, B64URL);
	cJSON_free(payload);
	off += strlen(out + off);
	unsigned char mac[32];
	sign_hs256(key, out, off, mac);
	out[off++] = '.';
	sodium_bin2base64(out + off, sb, mac, sizeof mac, B64URL);
	return 0;
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decodes one unpadded base64url segment; returns its length or -1. None
 * of it is secret (the signature is compared in constant time after), so
 * a plain table decoder does. Unused trailing bits must be zero, so that
 * each value has exactly one encoding. */
static long b64url_decode(const char *seg, size_t seglen, unsigned char *out, size_t outlen)
{
	if (seglen % 4 == 1 || seglen / 4 * 3 + (seglen % 4 ? seglen % 4 - 1 : 0) > outlen)
		return -1;
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < seglen; i++) {
		int v = b64url_value((unsigned char)seg[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
		acc &= (1u << bits) - 1;
	}
	return acc != 0 ? -1 : (long)o;
}

static int copy_string(const cJSON *o, const char *name, char *out, size_t outlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	size_t n = cJSON_IsString(v) ? strlen(v->valuestring) : outlen;
	if (n >= outlen)
		return -1;
	memcpy(out, v->valuestring, n + 1);
	return 0;
}

static int copy_int(const cJSON *o, const char *name, long long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
	    fabs(v->valuedouble) > 9007199254740991.0)
		return -1;
	*out = (long long)v->valuedouble;
	return 0;
}

/* The "amr" claim: absent, or an array of strings; sets *otp when it
 * names "otp". */
static int copy_amr(const cJSON *o, bool *otp)
{
	const cJSON *amr = cJSON_GetObjectItemCaseSensitive(o, "amr");
	*otp = false;
	if (amr == NULL)
		return 0;
	if (!cJSON_IsArray(amr))
		return -1;
	const cJSON *m;
	cJSON_ArrayForEach(m, amr) {
		if (!cJSON_IsString(m))
			return -1;
		if (strcmp(m->valuestring, "otp") == 0)
			*otp = true;
	}
	return 0;
}

enum jwt_result jwt_verify(const char *token, const char *key, long long now,
    struct jwt_claims *c)
{
	size_t len = strlen(token);
	if (len == 0 || len > JWT_MAX)
		return JWT_MALFORMED;
	const char *d1 = strchr(token, '.');
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL)
		return JWT_MALFORMED;

	unsigned char buf[JWT_MAX];
	long n = b64url_decode(token, (size_t)(d1 - token), buf, sizeof buf - 1);
	if (n <= 0)
		return JWT_MALFORMED;
	cJSON *h = cJSON_ParseWithLength((const char *)buf, (size_t)n);
	if (!cJSON_IsObject(h)) {
		cJSON_Delete(h);
		return JWT_MALFORMED;
	}
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
	int alg_ok = cJSON_IsString(alg) && strcmp(alg->valuestring, "HS256") == 0 &&
	    cJSON_GetObjectItemCaseSensitive(h, "crit") == NULL;
	cJSON_Delete(h);
	if (!alg_ok)
		return JWT_BAD_ALGORITHM;

	unsigned char sig[64];
	if (b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof sig) != 32)
		return JWT_BAD_SIGNATURE;
	unsigned char mac[32];
	sign_hs256(key, token, (size_t)(d2 - token), mac);
	if (crypto_verify_32(mac, sig) != 0)
		return JWT_BAD_SIGNATURE;

	n = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf, sizeof buf - 1);
	if (n <= 0)
		return JWT_MALFORMED;
	cJSON *p = cJSON_ParseWithLength((const char *)buf, (size_t)n);
	memset(c, 0, sizeof *c);
	int bad = !cJSON_IsObject(p) || copy_string(p, "sub", c->sub, sizeof c->sub) ||
	    copy_string(p, "role", c->role, sizeof c->role) || copy_int(p, "iat", &c->iat) ||
	    copy_int(p, "exp", &c->exp) || copy_string(p, "jti", c->jti, sizeof c->jti) ||
	    copy_string(p, "csrf", c->csrf, sizeof c->csrf) || copy_int(p, "tv", &c->tv) || copy_amr(p, &c->otp);
	cJSON_Delete(p);
	if (bad)
		return JWT_MALFORMED;
	if (now >= c->exp)
		return JWT_EXPIRED;
	return JWT_OK;
}
