#include "autoconf.h"

#include "services/idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/crypto.h"

bool idempotency_key_valid(const char *key)
{
	size_t n = 0;
	for (; key[n] != '\0'; n++) {
		unsigned char c = (unsigned char)key[n];
		if (c < 0x20 || c > 0x7e || n >= 255)
			return false;
	}
	return n >= 1;
}

/* Claims the key, or returns the row as it stands. The claim is taken when
 * the key is new, or when it is in flight for the same request but its
 * owner is stale; the no-op update otherwise still returns the row, which
 * tells this request what to answer. $7 is the stale age in seconds.
 *
 * The claim commits without waiting for its WAL flush (synchronous_commit
 * off for this statement's transaction only, nothing left on the session):
 * other workers see it at once all the same, and whatever the handler then
 * commits, or the stored response, is flushed after it in the WAL, so a
 * crash can lose the claim only together with everything that followed it.
 * Releasing a claim is equally harmless to lose (a stale claim is taken
 * over); storing a response waits for its flush, since losing it after the
 * handler's commit would let a retry run the request twice. */
static const char begin_sql[] =
    "INSERT INTO idempotency_keys AS k (scope, key, request_method, request_path, "
    "request_fingerprint, lock_token, locked_at) SELECT $1, $2, $3, $4, $5, $6, now() "
    "FROM (SELECT set_config('synchronous_commit', 'off', true)) async "
    "ON CONFLICT (scope, key) DO UPDATE SET "
    "lock_token = CASE WHEN k.response_status IS NULL AND k.request_method = $3 "
    "AND k.request_path = $4 AND k.request_fingerprint = $5 "
    "AND k.locked_at < now() - $7::int * interval '1 second' THEN $6 ELSE k.lock_token END, "
    "locked_at = CASE WHEN k.response_status IS NULL AND k.request_method = $3 "
    "AND k.request_path = $4 AND k.request_fingerprint = $5 "
    "AND k.locked_at < now() - $7::int * interval '1 second' THEN now() ELSE k.locked_at END "
    "RETURNING k.lock_token IS NOT DISTINCT FROM $6, "
    "k.request_method = $3 AND k.request_path = $4 AND k.request_fingerprint = $5, "
    "k.response_status, k.response_content_type, encode(k.response_body, 'hex'), "
    "k.response_headers::text";

/* The columns begin_sql returns. */
enum { CL_OURS, CL_SAME_REQUEST, CL_STATUS, CL_CONTENT_TYPE, CL_BODY_HEX, CL_HEADERS };

enum db_status idempotency_claim(arena_t *a, struct idempotency_claim *c,
    const struct idempotency_request *r, int stale_seconds, enum idempotency_outcome *outcome,
    struct idempotency_response *stored)
{
	char body_hash[65], stale[16];
	crypto_hmac_sha256_hex(r->fingerprint_key, r->body ? r->body : "", r->body_len, body_hash);
	crypto_random_hex(c->lock_token, 16);
	snprintf(stale, sizeof stale, "%d", stale_seconds);
	const char *params[] = { c->scope, c->key, r->method, r->path, body_hash,
		c->lock_token, stale };
	PGresult *res;
	enum db_status st = db_exec(a, &res, begin_sql, 7, params);
	if (st != DB_OK)
		return st;
	if (db_bool(res, 0, CL_OURS))
		*outcome = IDEMPOTENCY_CLAIMED;
	else if (!db_bool(res, 0, CL_SAME_REQUEST))
		*outcome = IDEMPOTENCY_OTHER_REQUEST;
	else if (db_value(res, 0, CL_STATUS) == NULL)
		*outcome = IDEMPOTENCY_IN_FLIGHT;
	else
		*outcome = IDEMPOTENCY_FINISHED;
	if (*outcome != IDEMPOTENCY_FINISHED)
		return DB_OK;
	stored->status = atoi(db_value(res, 0, CL_STATUS));
	stored->content_type = db_value(res, 0, CL_CONTENT_TYPE);
	const char *hex = db_value(res, 0, CL_BODY_HEX);
	size_t hexlen = hex ? strlen(hex) : 0;
	char *body = arena_alloc(a, hexlen / 2 + 1);
	size_t len = 0;
	if (hexlen > 0)
		sodium_hex2bin((unsigned char *)body, hexlen / 2, hex, hexlen, NULL, &len, NULL);
	body[len] = '\0';
	stored->body = body;
	stored->body_len = len;
	stored->headers_json = db_value(res, 0, CL_HEADERS);
	return DB_OK;
}

/* Sends sql with the COMMIT of the request's held work (db_hold_commit):
 * the key is settled in the same transaction as the work. */
static enum db_status settle(arena_t *a, const char *sql, int nparams, const char *const *params)
{
	const char **kept = arena_alloc(a, (size_t)nparams * sizeof *kept);
	memcpy(kept, params, (size_t)nparams * sizeof *kept);
	struct db_deferred *d = arena_calloc(a, 1, sizeof *d);
	*d = (struct db_deferred){ .sql = sql, .nparams = nparams, .params = kept };
	db_defer(d);
	return db_hold_commit(a);
}

enum db_status idempotency_store(arena_t *a, const struct idempotency_claim *c,
    const struct idempotency_response *r)
{
	char *status = arena_printf(a, "%d", r->status);
	char *hex = arena_alloc(a, r->body_len * 2 + 1);
	sodium_bin2hex(hex, r->body_len * 2 + 1, (const unsigned char *)r->body, r->body_len);
	const char *params[] = { c->scope, c->key, c->lock_token, status, r->content_type, hex,
		r->headers_json };
	return settle(a,
	    "UPDATE idempotency_keys SET response_status = $4::int, "
	    "response_content_type = $5, response_body = decode($6, 'hex'), "
	    "response_headers = $7::jsonb, completed_at = now(), lock_token = NULL, "
	    "locked_at = NULL WHERE scope = $1 AND key = $2 AND lock_token = $3", 7, params);
}

enum db_status idempotency_release(arena_t *a, const struct idempotency_claim *c)
{
	const char *params[] = { c->scope, c->key, c->lock_token };
	/* Without its WAL flush only alone: a transaction that carries held
	 * work must be as durable as the work. */
	return settle(a, db_hold_pending() ?
	    "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND lock_token = $3" :
	    "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND lock_token = $3 "
	    "AND set_config('synchronous_commit', 'off', true) IS NOT NULL", 3, params);
}
