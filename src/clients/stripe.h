/* The one Stripe client of the product, over libcurl.
 *
 * Requests are form-encoded with Stripe's nested keys (the caller writes them
 * out: "metadata[event_service_id]", "expand[]", "items[0][price]"), carry
 * "Authorization: Bearer STRIPE_SECRET_KEY", a pinned Stripe-Version and, on
 * every POST, the caller's Idempotency-Key. Network errors, 409 (lock or key
 * in use), 429 and 5xx are retried with exponential backoff and jitter under
 * the same key, honouring Stripe-Should-Retry, inside a time budget that
 * stays below REQUEST_TIMEOUT_SECONDS. STRIPE_API_BASE points it at the fake
 * in tests. There is no mock: without a key every call answers
 * STRIPE_NOT_CONFIGURED.
 *
 * The outcome tells a caller moving money what it may conclude:
 *   STRIPE_OK           done; the object is in result.object
 *   STRIPE_REFUSED      Stripe answered with a definite refusal (4xx): nothing
 *                       happened under this key, and Stripe may replay the
 *                       refusal for it, so a new attempt needs a new key
 *   STRIPE_UNAVAILABLE  never reached Stripe (connect failure, 429 to every
 *                       attempt): nothing happened; the key may be reused
 *   STRIPE_AMBIGUOUS    it may or may not have happened (timeout after the
 *                       request was sent, 5xx or 409 after the retries): look
 *                       it up, or retry under the same key
 *   STRIPE_NOT_CONFIGURED no STRIPE_SECRET_KEY */
#ifndef GALA_STRIPE_H
#define GALA_STRIPE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "core/buf.h"

#define STRIPE_API_VERSION "2024-06-20"

enum stripe_outcome {
	STRIPE_OK,
	STRIPE_REFUSED,
	STRIPE_UNAVAILABLE,
	STRIPE_AMBIGUOUS,
	STRIPE_NOT_CONFIGURED,
};

/* The outcome's label in GET /metrics: "ok", "refused"... */
const char *stripe_outcome_name(enum stripe_outcome o);

/* One form field; a NULL value leaves the field out. */
struct stripe_param {
	const char *key;
	const char *value;
};

struct stripe_result {
	enum stripe_outcome outcome;
	long http_status;          /* of the last answer, 0 when none arrived */
	int attempts;
	/* From Stripe's error object ("" when absent): card_error,
	 * invalid_request_error, api_error, rate_limit_error,
	 * idempotency_error, authentication_error... */
	const char *error_type;
	const char *error_code;    /* card_declined, resource_missing, ... */
	const char *decline_code;
	const char *error_param;
	const char *message;       /* Stripe's message, or what went wrong locally */
	const char *request_id;    /* Stripe's Request-Id of the last answer, or "" */
	cJSON *object;             /* the parsed 2xx body, owned by the arena */
};

/* Sends one request. method is "GET", "POST" or "DELETE"; path starts with
 * "/v1/", or is NULL (an id stripe_object_path refused): STRIPE_REFUSED
 * without a request. For GET the params go into the query string.
 * idempotency_key is required for POST (NULL → STRIPE_REFUSED without a request) and ignored
 * otherwise. Everything in *out lives in the arena. Returns out->outcome. */
enum stripe_outcome stripe_call(arena_t *a, const char *method, const char *path,
    const struct stripe_param *params, size_t nparams, const char *idempotency_key,
    struct stripe_result *out);

/* For ids from webhooks or the database, before they are stored or put in a
 * URL path (a forged "../customers/cus_x" must reach no other endpoint):
 * true when id is prefix ("sub_", "cus_", "acct_", "pi_", "ch_", "tr_",
 * "re_", "evt_"...) followed by 1 to STRIPE_ID_MAX characters of [A-Za-z0-9],
 * the shape of every id Stripe makes. */
#define STRIPE_ID_MAX 255
bool stripe_id_valid(const char *id, const char *prefix);

/* "/v1/<collection>/<id>" (and "/<action>" when action is not NULL), the id
 * percent-encoded; NULL, and logged, when id fails stripe_id_valid(id,
 * prefix). collection and action are the caller's constants. */
const char *stripe_object_path(arena_t *a, const char *collection, const char *prefix,
    const char *id, const char *action);

/* What stripe_call runs before a request leaves for Stripe: whatever must
 * be durable before an outside effect (db_commit_held, the work an
 * idempotent request holds: a reservation others must see). When it
 * returns false nothing is sent: STRIPE_UNAVAILABLE. NULL: nothing. */
void stripe_set_before_send(bool (*fn)(void));

/* True when STRIPE_SECRET_KEY is set. */
bool stripe_configured(void);

/* A member of an object: string, or NULL. "latest_charge" that Stripe may
 * have expanded into an object reads as that object's "id". */
const char *stripe_str(const cJSON *obj, const char *name);
/* An integer member, or def. */
long long stripe_int(const cJSON *obj, const char *name, long long def);

/* Webhook signatures (Stripe-Signature: t=<unix>,v1=<hex>[,v1=...][,v0=...]):
 * true when a v1 entry is the HMAC-SHA256 of "<t>.<payload>" under one of
 * the comma-separated secrets (constant-time compare) and |now - t| is at
 * most tolerance seconds. */
bool stripe_signature_valid(const char *header, const char *payload, size_t payload_len,
    const char *secrets, long long now, long long tolerance);

/* --- For the unit tests. --- */

/* Appends the form encoding of params to out ("a=1&metadata%5Bk%5D=v"):
 * every byte but [A-Za-z0-9-._~] percent-encoded. Returns 0 or -1 (full). */
int stripe_form_encode(buf_t *out, const struct stripe_param *params, size_t nparams);

/* Reads a Stripe error body into r (type, code, message...). Returns 0, or
 * -1 when body is not a Stripe error object. */
int stripe_parse_error(arena_t *a, const char *body, size_t len, struct stripe_result *r);

/* Whether a failed attempt should be retried, as Stripe's own libraries
 * decide: should_retry is the Stripe-Should-Retry header (NULL when
 * absent); status 0 means no answer arrived. */
bool stripe_should_retry(long status, const char *should_retry);

/* The delay before retry number n (1, 2, ...): exponential from 250 ms,
 * capped at 2 s, with jitter into the upper half. */
long stripe_backoff_ms(int n);

#endif
