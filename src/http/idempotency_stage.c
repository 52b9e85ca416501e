#include "autoconf.h"

#include "http/idempotency_stage.h"

#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/response.h"
#include "http/router.h"
#include "services/session.h"

/* What SECRET_KEY is turned into for fingerprints, so that the key that
 * signs tokens signs nothing else. */
#define FINGERPRINT_KEY_LABEL "gala idempotency fingerprint v1"

/* The response headers a replay repeats besides the body. */
static const char *const replayed_headers[] = { "Location", "Set-Cookie" };
#define NREPLAYED (sizeof replayed_headers / sizeof replayed_headers[0])

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
		return error != GE_CSRF_FAILED && error != GE_EMAIL_NOT_VERIFIED &&
		    error != GE_MFA_REQUIRED;
	case 409:
		return error != GE_PAYOUT_IN_PROGRESS && error != GE_PAYOUT_ON_HOLD &&
		    error != GE_IDEMPOTENCY_KEY_IN_USE;
	case 502:
		return error == GE_STRIPE_ERROR;
	default:
		return status < 500;
	}
}

static void replay(struct request *req, const struct idempotency_response *stored)
{
	struct response *r = &req->resp;
	r->status = stored->status;
	r->content_type = stored->content_type;
	r->body = stored->body;
	r->body_len = stored->body_len;
	cJSON *h = cJSON_Parse(stored->headers_json);
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
	const char *key = req->cx.idempotency_key;
	if (key == NULL)
		return 0;
	if (!idempotency_key_valid(key)) {
		http_respond_error(req, GE_INVALID_IDEMPOTENCY_KEY, NULL, NULL);
		return -1;
	}
	state->claim.scope = req->cx.caller != NULL ?
	    arena_printf(req->arena, "user:%s", req->cx.caller->id) :
	    arena_printf(req->arena, "ip:%s", req->client_ip);
	state->claim.key = key;
	char key_of_fingerprints[65];
	crypto_hmac_sha256_hex(gala_config->secret_key, FINGERPRINT_KEY_LABEL,
	    strlen(FINGERPRINT_KEY_LABEL), key_of_fingerprints);
	const struct idempotency_request fingerprint = { req->method, req->path, req->body,
		req->body_len, key_of_fingerprints };
	enum idempotency_outcome outcome;
	struct idempotency_response stored;
	enum db_status st = idempotency_claim(req->arena, &state->claim, &fingerprint,
	    gala_config->request_timeout_seconds + IDEMPOTENCY_STALE_MARGIN_SECONDS,
	    &outcome, &stored);
	if (st == DB_REFUSED) {
		/* The session check or the limiter refused: they answer. */
		http_respond_error(req, GE_SERVICE_UNAVAILABLE, NULL, NULL);
		return -1;
	}
	if (st != DB_OK) {
		log_error("gala.idempotency", "could not claim an idempotency key (%s)",
		    st == DB_UNAVAILABLE ? "database unavailable" : "statement failed");
		http_respond_error(req, st == DB_UNAVAILABLE ? GE_DB_UNAVAILABLE : GE_INTERNAL,
		    NULL, NULL);
		return -1;
	}
	switch (outcome) {
	case IDEMPOTENCY_CLAIMED:
		state->active = true;
		db_hold();
		return 0;
	case IDEMPOTENCY_OTHER_REQUEST:
		http_respond_error(req, GE_IDEMPOTENCY_KEY_REUSED, NULL, NULL);
		return -1;
	case IDEMPOTENCY_IN_FLIGHT:
		http_respond_error(req, GE_IDEMPOTENCY_KEY_IN_USE, NULL, NULL);
		response_header(req, "Retry-After", "1");
		return -1;
	case IDEMPOTENCY_FINISHED:
		metrics_add(METRIC_IDEMPOTENCY_REPLAYS, 0);
		replay(req, &stored);
		return -1;
	}
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
	const struct response *r = &req->resp;
	bool work_held = db_hold_pending();
	enum db_status st;
	if (idempotency_should_store(r->status, r->error)) {
		const struct idempotency_response stored = { r->status, r->content_type, r->body,
			r->body_len, stored_headers(req) };
		st = idempotency_store(req->arena, &state->claim, &stored);
	} else {
		st = idempotency_release(req->arena, &state->claim);
	}
	if (st == DB_OK)
		return;
	if (!work_held) {
		log_warn("gala.idempotency", "could not settle an idempotency key after %d; "
		    "a retry after the stale period runs the request again", r->status);
		return;
	}
	/* The work did not commit: the answer must not say it did, and a retry
	 * must run it. Should the connection have died after the COMMIT went
	 * through, the response is stored and this release finds nothing. */
	log_error("gala.idempotency", "the request's work and its idempotency key could not be "
	    "committed (%s); answering 503", st == DB_UNAVAILABLE ? "database unavailable" :
	    "statement failed");
	if (idempotency_release(req->arena, &state->claim) != DB_OK)
		log_warn("gala.idempotency", "could not release an idempotency key; a retry after "
		    "the stale period runs the request");
	req->resp = (struct response){ 0 };
	http_respond_error(req, GE_DB_UNAVAILABLE, NULL, NULL);
}
