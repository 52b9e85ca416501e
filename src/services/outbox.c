#include "autoconf.h"

#include "services/outbox.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/config.h"
#include "core/crypto.h"
#include "services/audit.h"

/* The sealing key: a subkey of SECRET_KEY (crypto_kdf, context "galamail"). */
static void mail_key(unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES])
{
	unsigned char master[crypto_kdf_KEYBYTES];
	crypto_generichash(master, sizeof master, (const unsigned char *)gala_config->secret_key,
	    strlen(gala_config->secret_key), NULL, 0);
	crypto_kdf_derive_from_key(key, crypto_aead_xchacha20poly1305_ietf_KEYBYTES, 1, "galamail",
	    master);
	sodium_memzero(master, sizeof master);
}

/* What a seal is bound to: a body opens only for its own row, recipient
 * and subject. */
static const char *seal_context(arena_t *a, const char *id, const char *to, const char *subject)
{
	return arena_printf(a, "%s\n%s\n%s", id, to, subject);
}

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

/* nonce || XChaCha20-Poly1305(text), as hex for a text column. */
static char *seal(arena_t *a, const char *context, const char *text)
{
	size_t n = strlen(text), boxlen = NONCE_BYTES + n + TAG_BYTES;
	unsigned char *box = arena_alloc(a, boxlen);
	unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	mail_key(key);
	randombytes_buf(box, NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(box + NONCE_BYTES, NULL,
	    (const unsigned char *)text, n, (const unsigned char *)context, strlen(context), NULL,
	    box, key);
	sodium_memzero(key, sizeof key);
	char *hex = arena_alloc(a, 2 * boxlen + 1);
	return sodium_bin2hex(hex, 2 * boxlen + 1, box, boxlen);
}

/* The text sealed under context, or NULL when it does not open. */
static char *unseal(arena_t *a, const char *context, const char *hex)
{
	if (hex == NULL)
		return NULL;
	size_t hexlen = strlen(hex), boxlen;
	unsigned char *box = arena_alloc(a, hexlen / 2 + 1);
	if (sodium_hex2bin(box, hexlen / 2 + 1, hex, hexlen, NULL, &boxlen, NULL) != 0 ||
	    boxlen < NONCE_BYTES + TAG_BYTES)
		return NULL;
	size_t n = boxlen - NONCE_BYTES - TAG_BYTES;
	char *text = arena_alloc(a, n + 1);
	unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	mail_key(key);
	int rc = crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)text, NULL, NULL,
	    box + NONCE_BYTES, boxlen - NONCE_BYTES, (const unsigned char *)context,
	    strlen(context), box, key);
	sodium_memzero(key, sizeof key);
	if (rc != 0)
		return NULL;
	text[n] = '\0';
	return text;
}

enum db_status outbox_put(const struct svc_ctx *cx, const struct outbox_mail *m, bool due)
{
	arena_t *a = cx->arena;
	char id[37];
	crypto_uuid4(id);
	const char *sealed = seal(a, seal_context(a, id, m->to, m->subject), m->text);
	const char *params[] = { id, m->kind, m->user_id, m->to, m->subject, sealed,
		cx->request_id, due ? "true" : "false" };
	PGresult *res;
	return db_exec(a, &res,
	    "INSERT INTO mail_outbox (id, kind, user_id, recipient, subject, sealed, request_id) "
	    "SELECT $1::uuid, $2, $3::uuid, $4, $5, $6, $7 WHERE $8::boolean", 8, params);
}

enum db_status outbox_claim(arena_t *a, struct outbox_claim *c, bool *found)
{
	char lease[16];
	snprintf(lease, sizeof lease, "%lld", OUTBOX_LEASE_SECONDS);
	const char *params[] = { lease };
	enum {
		CL_ID, CL_KIND, CL_USER_ID, CL_REQUEST_ID, CL_RECIPIENT, CL_SUBJECT, CL_SEALED,
		CL_ATTEMPTS, CL_CREATED_AT, CL_AGE
	};
	PGresult *res;
	/* The oldest due mail: pending and due, or claimed by a mailer whose
	 * lease ran out. */
	enum db_status st = db_exec(a, &res,
	    "UPDATE mail_outbox SET state = 'sending', attempts = attempts + 1, "
	    "next_attempt_at = now() + make_interval(secs => $1::int) "
	    "WHERE id = (SELECT id FROM mail_outbox WHERE state IN ('pending', 'sending') "
	    "AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
	    "RETURNING id, kind, user_id, request_id, recipient, subject, sealed, attempts, "
	    SQL_TS("created_at") ", trunc(date_part('epoch', now() - created_at))::bigint",
	    1, params);
	*found = st == DB_OK && PQntuples(res) == 1;
	if (!*found)
		return st;
	c->id = db_value(res, 0, CL_ID);
	c->kind = db_value(res, 0, CL_KIND);
	c->user_id = db_value(res, 0, CL_USER_ID);
	c->request_id = db_value(res, 0, CL_REQUEST_ID);
	c->to = db_value(res, 0, CL_RECIPIENT);
	c->subject = db_value(res, 0, CL_SUBJECT);
	c->attempt = (int)db_int(res, 0, CL_ATTEMPTS);
	c->created_at = db_int(res, 0, CL_CREATED_AT);
	c->age = db_int(res, 0, CL_AGE);
	c->text = unseal(a, seal_context(a, c->id, c->to, c->subject), db_value(res, 0, CL_SEALED));
	return DB_OK;
}

/* Gives up on the mail: erases the body and audits email.delivery, in one
 * transaction. */
static enum db_status record_failure(arena_t *a, const struct outbox_claim *c,
    const char *const params[3])
{
	PGresult *res;
	enum db_status st = db_begin(a);
	if (st != DB_OK ||
	    (st = db_exec(a, &res, "UPDATE mail_outbox SET state = 'failed', sealed = NULL, "
		"finished_at = now(), last_error = $3 "
		"WHERE id = $1 AND attempts = $2::int AND state = 'sending'", 3, params)) != DB_OK) {
		db_rollback();
		return st;
	}
	if (strcmp(PQcmdTuples(res), "1") == 0) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "mail", c->kind);
		cJSON_AddNumberToObject(m, "attempts", c->attempt);
		cJSON_AddStringToObject(m, "reason", params[2]);
		/* The cause's request id ties the failure to it. */
		struct svc_ctx cx = { .arena = a, .request_id = c->request_id };
		if ((st = audit_write(&cx, a, NULL, c->user_id, "email.delivery", "failure", m)) != DB_OK) {
			db_rollback();
			return st;
		}
	}
	return db_commit(a);
}

enum db_status outbox_record(arena_t *a, const struct outbox_claim *c,
    enum outbox_outcome *outcome, int retry_in, const char *error)
{
	char attempt[16], delay[16];
	snprintf(attempt, sizeof attempt, "%d", c->attempt);
	snprintf(delay, sizeof delay, "%d", retry_in);
	if (*outcome == OUTBOX_RETRY && c->age + retry_in >= OUTBOX_GIVE_UP_SECONDS)
		*outcome = OUTBOX_FAILED;
	PGresult *res;
	switch (*outcome) {
	case OUTBOX_SENT: {
		const char *p[] = { c->id, attempt };
		return db_exec(a, &res, "UPDATE mail_outbox SET state = 'sent', sealed = NULL, "
		    "finished_at = now(), last_error = NULL "
		    "WHERE id = $1 AND attempts = $2::int AND state = 'sending'", 2, p);
	}
	case OUTBOX_RETRY: {
		const char *p[] = { c->id, attempt, error, delay };
		return db_exec(a, &res, "UPDATE mail_outbox SET state = 'pending', last_error = $3, "
		    "next_attempt_at = now() + make_interval(secs => $4::int) "
		    "WHERE id = $1 AND attempts = $2::int AND state = 'sending'", 4, p);
	}
	case OUTBOX_FAILED: {
		const char *p[] = { c->id, attempt, error };
		return record_failure(a, c, p);
	}
	}
	return DB_ERROR;
}

int outbox_retry_delay(int failed, int base_seconds, uint32_t random)
{
	long long d = base_seconds;
	for (int i = 1; i < failed && d < OUTBOX_RETRY_MAX_SECONDS; i++)
		d *= 2;
	if (d > OUTBOX_RETRY_MAX_SECONDS)
		d = OUTBOX_RETRY_MAX_SECONDS;
	long long half = d / 2;
	return (int)(d - half + (long long)(random % (uint32_t)(half + 1)));
}
