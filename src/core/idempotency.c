#include "autoconf.h"

#include "core/idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "core/config.h"
#include "core/crypto.h"
#include "core/log.h"
#include "db/db.h"
#include "http/auth.h"
#include "http/response.h"
#include "http/router.h"

/* The response headers a replay repeats besides the body. */
static const char *const replayed_headers[] = { "Location", "Set-Cookie" };
#define NREPLAYED (sizeof replayed_headers / sizeof replayed_headers[0])

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

bool idempotency_should_store(int status, enum gala_error error)
{
	if (status < 400)
		return true;
	switch (status) {
	case 400:
	case 401:
	case 413:
	case 415:
	case 422:
	case 429:
		return false;
	case 403:
		return error != GE_CSRF_FAILED && error != GE_EMAIL_NOT_VERIFIED;
	case 409:
		return error != GE_PAYOUT_IN_PROGRESS && error != GE_IDEMPOTENCY_KEY_IN_USE;
	case 502:
		return error == GE_STRIPE_ERROR;
	default:
		return status < 500;
	}
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
    "request_body_sha256, lock_token, locked_at) SELECT $1, $2, $3, $4, $5, $6, now() "
    "FROM (SELECT set_config('synchronous_commit', 'off', true)) async "
    "ON CONFLICT (scope, key) DO UPDATE SET "
    "lock_token = CASE WHEN k.response_status IS NULL AND k.request_method = $3 "
    "AND k.request_path = $4 AND k.request_body_sha256 = $5 "
    "AND k.locked_at < now() - $7::int * interval '1 second' THEN $6 ELSE k.lock_token END, "
    "locked_at = CASE WHEN k.response_status IS NULL AND k.request_method = $3 "
    "AND k.request_path = $4 AND k.request_body_sha256 = $5 "
    "AND k.locked_at < now() - $7::int * interval '1 second' THEN now() ELSE k.locked_at END "
    "RETURNING k.lock_token IS NOT DISTINCT FROM $6, "
    "k.request_method = $3 AND k.request_path = $4 AND k.request_body_sha256 = $5, "
    "k.response_status, k.response_content_type, encode(k.response_body, 'hex'), "
    "k.response_headers::text";

static void replay(struct request *req, const PGresult *res)
{
	struct response *r = &req->resp;
	r->status = atoi(db_value(res, 0, 2));
	r->content_type = db_value(res, 0, 3);
	const char *hex = db_value(res, 0, 4);
	size_t hexlen = hex ? strlen(hex) : 0;
	char *body = arena_alloc(req->arena, hexlen / 2 + 1);
	size_t len = 0;
	if (hexlen > 0)
		sodium_hex2bin((unsigned char *)body, hexlen / 2, hex, hexlen, NULL, &len, NULL);
	body[len] = '\0';
	r->body = body;
	r->body_len = len;
	cJSON *h = cJSON_Parse(db_value(res, 0, 5));
	for (size_t i = 0; i < NREPLAYED; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, replayed_headers[i]);
		if (cJSON_IsString(v))
			response_header(req, replayed_headers[i], v->valuestring);
	}
	cJSON_Delete(h);
	response_header(req, "Idempotent-Replayed", "true");
}

int idempotency_begin(struct request *req, struct idempotency *state)
{
	memset(state, 0, sizeof *state);
	if (!(req->route->flags & ROUTE_IDEMPOTENT))
		return 0;
	const char *key = request_header(req, "Idempotency-Key");
	if (key == NULL)
		return 0;
	if (!idempotency_key_valid(key)) {
		http_respond_error(req, GE_INVALID_IDEMPOTENCY_KEY, NULL, NULL);
		return -1;
	}
	const char *scope = req->cx.caller != NULL ? arena_printf(req->arena, "user:%s", req->cx.caller->id) :
	    arena_printf(req->arena, "ip:%s", req->client_ip);
	char body_hash[65], stale[16];
	crypto_sha256_hex(req->body ? req->body : "", req->body_len, body_hash);
	crypto_random_hex(state->lock_token, 16);
	snprintf(stale, sizeof stale, "%d",
	    gala_config->request_timeout_seconds + IDEMPOTENCY_STALE_MARGIN_SECONDS);
	const char *params[] = { scope, key, req->method, req->path, body_hash,
		state->lock_token, stale };
	PGresult *res;
	enum db_status st = db_exec(req->arena, &res, begin_sql, 7, params);
	if (st == DB_REFUSED) {
		/* The session check or the limiter refused: they answer. */
		http_respond_error(req, GE_SERVICE_UNAVAILABLE, NULL, NULL);
		return -1;
	}
	if (st != DB_OK) {
		log_error("gala.idempotency", "could not claim an idempotency key (%s)",
		    st == DB_UNAVAILABLE ? "database unavailable" : db_sqlstate(res));
		http_respond_error(req, st == DB_UNAVAILABLE ? GE_DB_UNAVAILABLE : GE_INTERNAL,
		    NULL, NULL);
		return -1;
	}
	if (db_bool(res, 0, 0)) {
		state->active = true;
		state->scope = scope;
		state->key = key;
		return 0;
	}
	if (!db_bool(res, 0, 1)) {
		http_respond_error(req, GE_IDEMPOTENCY_KEY_REUSED, NULL, NULL);
		return -1;
	}
	if (db_value(res, 0, 2) == NULL) {
		http_respond_error(req, GE_IDEMPOTENCY_KEY_IN_USE, NULL, NULL);
		response_header(req, "Retry-After", "1");
		return -1;
	}
	replay(req, res);
	return -1;
}

/* The replayed headers of the response as a JSON object. */
static char *stored_headers(struct request *req)
{
	cJSON *o = cJSON_CreateObject();
	for (int i = 0; i < req->resp.nheaders; i++)
		for (size_t j = 0; j < NREPLAYED; j++)
			if (strcasecmp(req->resp.headers[i].name, replayed_headers[j]) == 0)
				cJSON_AddStringToObject(o, replayed_headers[j], req->resp.headers[i].value);
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	char *copy = arena_strdup(req->arena, text ? text : "{}");
	cJSON_free(text);
	return copy;
}

void idempotency_finish(struct request *req, const struct idempotency *state)
{
	if (!state->active)
		return;
	/* The claim must outlive whatever the handler did: a transaction it
	 * left open would swallow the update below. */
	db_rollback();
	const struct response *r = &req->resp;
	PGresult *res;
	enum db_status st;
	if (idempotency_should_store(r->status, r->error)) {
		char status[8];
		snprintf(status, sizeof status, "%d", r->status);
		char *hex = arena_alloc(req->arena, r->body_len * 2 + 1);
		sodium_bin2hex(hex, r->body_len * 2 + 1, (const unsigned char *)r->body, r->body_len);
		const char *params[] = { state->scope, state->key, state->lock_token, status,
			r->content_type, hex, stored_headers(req) };
		st = db_exec(req->arena, &res,
		    "UPDATE idempotency_keys SET response_status = $4::int, "
		    "response_content_type = $5, response_body = decode($6, 'hex'), "
		    "response_headers = $7::jsonb, completed_at = now(), lock_token = NULL, "
		    "locked_at = NULL WHERE scope = $1 AND key = $2 AND lock_token = $3", 7, params);
	} else {
		const char *params[] = { state->scope, state->key, state->lock_token };
		st = db_exec(req->arena, &res, "DELETE FROM idempotency_keys "
		    "WHERE scope = $1 AND key = $2 AND lock_token = $3 "
		    "AND set_config('synchronous_commit', 'off', true) IS NOT NULL", 3, params);
	}
	if (st != DB_OK)
		log_warn("gala.idempotency", "could not settle an idempotency key after %d; "
		    "a retry after the stale period runs the request again", r->status);
}
