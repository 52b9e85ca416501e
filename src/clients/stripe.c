#include "autoconf.h"

#include "clients/stripe.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <sodium.h>

#include "core/config.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/clock.h"

#define STRIPE_MAX_RESPONSE ((size_t)1024 * 1024)
#define STRIPE_MAX_FORM ((size_t)64 * 1024)
#define STRIPE_MAX_ATTEMPTS 4
#define STRIPE_CONNECT_TIMEOUT_MS 5000L
/* No attempt starts with less time than this left: it could only time out. */
#define STRIPE_MIN_ATTEMPT_MS 300L

/* One handle per process: it keeps the TLS connection to Stripe alive
 * between requests of a worker. Workers are single-threaded. */
static CURL *stripe_handle;

struct answer {
	buf_t body;
	char request_id[128];
	char should_retry[8];
	long retry_after_s;
};

bool stripe_configured(void)
{
	return gala_config != NULL && gala_config->stripe_secret_key != NULL;
}

/* The whole call, retries included, must end well before the master's
 * REQUEST_TIMEOUT_SECONDS kills the worker, leaving time for the database
 * work around it. */
static long budget_ms(void)
{
	long ms = (long)gala_config->request_timeout_seconds * 600;
	return ms < 1000 ? 1000 : ms;
}

static int put_encoded(buf_t *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			if (buf_append(out, p, 1) != 0)
				return -1;
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			if (buf_append(out, e, 3) != 0)
				return -1;
		}
	}
	return 0;
}

int stripe_form_encode(buf_t *out, const struct stripe_param *params, size_t nparams)
{
	bool first = out->len == 0;
	for (size_t i = 0; i < nparams; i++) {
		if (params[i].value == NULL)
			continue;
		if ((!first && buf_puts(out, "&") != 0) || put_encoded(out, params[i].key) != 0 ||
		    buf_puts(out, "=") != 0 || put_encoded(out, params[i].value) != 0)
			return -1;
		first = false;
	}
	return 0;
}

bool stripe_id_valid(const char *id, const char *prefix)
{
	size_t pl = strlen(prefix);
	if (id == NULL || strncmp(id, prefix, pl) != 0)
		return false;
	size_t n = 0;
	for (const char *p = id + pl; *p != '\0'; p++, n++)
		if (n >= STRIPE_ID_MAX || !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9')))
			return false;
	return n > 0;
}

const char *stripe_object_path(arena_t *a, const char *collection, const char *prefix,
    const char *id, const char *action)
{
	if (!stripe_id_valid(id, prefix)) {
		log_error("gala.stripe", "refusing a %s id that is not %s + letters and digits",
		    collection, prefix);
		return NULL;
	}
	/* Encoded as well (a no-op for a valid id): a '/', '?', '#' or '%'
	 * could never leave this path segment. */
	buf_t seg;
	buf_init(&seg, 4 * (size_t)STRIPE_ID_MAX);
	const char *path = NULL;
	if (put_encoded(&seg, id) == 0)
		path = arena_printf(a, "/v1/%s/%s%s%s", collection, seg.data,
		    action != NULL ? "/" : "", action != NULL ? action : "");
	buf_free(&seg);
	return path;
}

static const char *member_str(arena_t *a, const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? arena_strdup(a, v->valuestring) : "";
}

int stripe_parse_error(arena_t *a, const char *body, size_t len, struct stripe_result *r)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (!cJSON_IsObject(e)) {
		cJSON_Delete(root);
		return -1;
	}
	r->error_type = member_str(a, e, "type");
	r->error_code = member_str(a, e, "code");
	r->decline_code = member_str(a, e, "decline_code");
	r->error_param = member_str(a, e, "param");
	r->message = member_str(a, e, "message");
	cJSON_Delete(root);
	return 0;
}

bool stripe_should_retry(long status, const char *should_retry)
{
	if (should_retry != NULL && strcmp(should_retry, "false") == 0)
		return false;
	if (should_retry != NULL && strcmp(should_retry, "true") == 0)
		return true;
	return status == 0 || status == 409 || status == 429 || status >= 500;
}

long stripe_backoff_ms(int n)
{
	long ms = 250;
	for (int i = 1; i < n && ms < 2000; i++)
		ms *= 2;
	if (ms > 2000)
		ms = 2000;
	/* Jitter keeps many workers that failed together from retrying
	 * together: a delay in [ms/2, ms]. */
	return ms / 2 + (long)randombytes_uniform((uint32_t)(ms / 2) + 1);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct answer *ans = ud;
	size_t n = size * nmemb;
	/* Returning less than n aborts the transfer: a response larger than
	 * any Stripe object is not read into memory. */
	return buf_append(&ans->body, ptr, n) == 0 ? n : 0;
}

static void copy_header_value(char *dst, size_t dstlen, const char *v, size_t vlen)
{
	while (vlen > 0 && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
		vlen--;
	if (vlen >= dstlen)
		vlen = dstlen - 1;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct answer *ans = ud;
	size_t n = size * nmemb;
	const char *colon = memchr(ptr, ':', n);
	if (colon == NULL)
		return n;
	size_t name_len = (size_t)(colon - ptr), vlen = n - name_len - 1;
	char tmp[16];
	if (name_len == 10 && strncasecmp(ptr, "Request-Id", 10) == 0)
		copy_header_value(ans->request_id, sizeof ans->request_id, colon + 1, vlen);
	else if (name_len == 19 && strncasecmp(ptr, "Stripe-Should-Retry", 19) == 0)
		copy_header_value(ans->should_retry, sizeof ans->should_retry, colon + 1, vlen);
	else if (name_len == 11 && strncasecmp(ptr, "Retry-After", 11) == 0) {
		copy_header_value(tmp, sizeof tmp, colon + 1, vlen);
		ans->retry_after_s = strtol(tmp, NULL, 10);
	}
	return n;
}

static CURL *handle(void)
{
	if (stripe_handle == NULL)
		stripe_handle = curl_easy_init();
	else
		curl_easy_reset(stripe_handle);
	return stripe_handle;
}

/* Failures that happen before a byte of the request leaves: name
 * resolution, the TCP connect, the TLS handshake and its verification.
 * Anything else (a timeout included: it may strike after the request went
 * out) counts as possibly received by Stripe. */
static bool never_sent(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
		return true;
	default:
		return false;
	}
}

/* One HTTP exchange. Returns the CURLcode; *status is 0 without an answer
 * and *sent tells whether any of the request may have reached Stripe. */
static CURLcode perform(const char *method, const char *url, const char *form,
    struct curl_slist *headers, long timeout_ms, struct answer *ans, long *status, bool *sent)
{
	CURL *c = handle();
	*status = 0;
	*sent = false;
	if (c == NULL)
		return CURLE_OUT_OF_MEMORY;
	buf_clear(&ans->body);
	ans->request_id[0] = ans->should_retry[0] = '\0';
	ans->retry_after_s = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
	} else if (strcmp(method, "DELETE") == 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, ans);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, ans);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	    timeout_ms < STRIPE_CONNECT_TIMEOUT_MS ? timeout_ms : STRIPE_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "Gala/" PACKAGE_VERSION);
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	*sent = code != 0 || !never_sent(rc);
	if (rc == CURLE_OK)
		*status = code;
	return rc;
}

/* Appends line to *list; false (the list freed) when out of memory. */
static bool header_add(struct curl_slist **list, const char *line)
{
	struct curl_slist *grown = curl_slist_append(*list, line);
	if (grown == NULL) {
		curl_slist_free_all(*list);
		*list = NULL;
		return false;
	}
	*list = grown;
	return true;
}

/* The headers of a call, or NULL when memory ran out. */
static struct curl_slist *build_headers(arena_t *a, const char *method, const char *key)
{
	struct curl_slist *h = NULL;
	bool ok = header_add(&h, arena_printf(a, "Authorization: Bearer %s",
	    gala_config->stripe_secret_key)) &&
	    header_add(&h, "Stripe-Version: " STRIPE_API_VERSION) &&
	    header_add(&h, "Accept: application/json") &&
	    header_add(&h, "Expect:");
	if (ok && strcmp(method, "POST") == 0)
		ok = header_add(&h, "Content-Type: application/x-www-form-urlencoded") &&
		    header_add(&h, arena_printf(a, "Idempotency-Key: %s", key));
	return ok ? h : NULL;
}

static void log_call(const char *method, const char *path, const char *key,
    const struct stripe_result *r, long long started)
{
	static const char *const names[] = { "ok", "refused", "unavailable", "ambiguous",
		"not_configured" };
	cJSON *f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "method", method);
	cJSON_AddStringToObject(f, "path", path);
	if (key != NULL)
		cJSON_AddStringToObject(f, "idempotency_key", key);
	cJSON_AddStringToObject(f, "outcome", names[r->outcome]);
	cJSON_AddNumberToObject(f, "http_status", (double)r->http_status);
	cJSON_AddNumberToObject(f, "attempts", r->attempts);
	cJSON_AddNumberToObject(f, "duration_ms", (double)(clock_ms() - started));
	if (r->request_id[0] != '\0')
		cJSON_AddStringToObject(f, "stripe_request_id", r->request_id);
	if (r->outcome != STRIPE_OK) {
		cJSON_AddStringToObject(f, "error_type", r->error_type);
		cJSON_AddStringToObject(f, "error_code", r->error_code);
		cJSON_AddStringToObject(f, "error", r->message);
	}
	log_emit(r->outcome == STRIPE_OK ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, "gala.stripe",
	    "stripe call", f);
}

static void result_init(struct stripe_result *r)
{
	memset(r, 0, sizeof *r);
	r->error_type = r->error_code = r->decline_code = r->error_param = "";
	r->message = r->request_id = "";
}

/* Worker-owned, set once at start. */
static bool (*stripe_before_send)(void);

void stripe_set_before_send(bool (*fn)(void))
{
	stripe_before_send = fn;
}

enum stripe_outcome stripe_call(arena_t *a, const char *method, const char *path,
    const struct stripe_param *params, size_t nparams, const char *idempotency_key,
    struct stripe_result *out)
{
	result_init(out);
	bool post = strcmp(method, "POST") == 0, mutating = strcmp(method, "GET") != 0;
	if (!stripe_configured()) {
		out->outcome = STRIPE_NOT_CONFIGURED;
		out->message = "STRIPE_SECRET_KEY is not set";
		return out->outcome;
	}
	buf_t form;
	buf_init(&form, STRIPE_MAX_FORM);
	bool keyless = post && (idempotency_key == NULL || *idempotency_key == '\0');
	if (path == NULL || keyless || stripe_form_encode(&form, params, nparams) != 0) {
		buf_free(&form);
		out->outcome = STRIPE_REFUSED;
		out->message = path == NULL ? "the Stripe id is not valid" : keyless ?
		    "a POST to Stripe needs an idempotency key" : "the request is too large";
		log_error("gala.stripe", "%s %s not sent: %s", method, path ? path : "(no path)",
		    out->message);
		return out->outcome;
	}
	const char *base = gala_config->stripe_api_base;
	size_t bl = strlen(base);
	const char *slash = bl > 0 && base[bl - 1] == '/' ? "" : "/";
	const char *url = arena_printf(a, "%.*s%s%s%s%s", (int)bl, base, slash,
	    path[0] == '/' ? path + 1 : path, !post && form.len > 0 ? "?" : "",
	    !post && form.data != NULL ? form.data : "");
	const char *body = post && form.data != NULL ? arena_strdup(a, form.data) : "";
	buf_free(&form);
	if (stripe_before_send != NULL && !stripe_before_send()) {
		out->outcome = STRIPE_UNAVAILABLE;
		out->message = "the work that comes before it could not be committed";
		log_error("gala.stripe", "%s %s not sent: %s", method, path, out->message);
		return out->outcome;
	}
	struct curl_slist *headers = build_headers(a, method, idempotency_key);
	if (headers == NULL) {
		out->outcome = STRIPE_UNAVAILABLE;
		out->message = "out of memory while building the request";
		log_error("gala.stripe", "%s %s not sent: %s", method, path, out->message);
		return out->outcome;
	}

	struct answer ans;
	buf_init(&ans.body, STRIPE_MAX_RESPONSE);
	long long started = clock_ms(), deadline = started + budget_ms();
	bool maybe_executed = false, done = false;
	for (int attempt = 1; attempt <= STRIPE_MAX_ATTEMPTS; attempt++) {
		long left = (long)(deadline - clock_ms());
		if (attempt > 1 && left < STRIPE_MIN_ATTEMPT_MS)
			break;
		long status;
		bool sent, retry;
		out->attempts = attempt;
		CURLcode rc = perform(method, url, body, headers, left, &ans, &status, &sent);
		out->http_status = status;
		out->request_id = arena_strdup(a, ans.request_id);
		const char *rbody = ans.body.data ? ans.body.data : "";
		if (rc != CURLE_OK) {
			/* A request that may have reached Stripe stays possibly
			 * executed whatever later attempts see. */
			maybe_executed = maybe_executed || (sent && mutating);
			out->error_type = "api_connection_error";
			out->message = arena_printf(a, "network error: %s", curl_easy_strerror(rc));
			retry = true;
		} else if (status >= 200 && status < 300) {
			out->object = json_defer(a, cJSON_ParseWithLength(rbody, ans.body.len));
			if (out->object == NULL) {
				maybe_executed = maybe_executed || mutating;
				out->error_type = "api_error";
				out->message = "Stripe answered with a body that is not JSON";
				break;
			}
			out->outcome = STRIPE_OK;
			done = true;
			break;
		} else {
			if (stripe_parse_error(a, rbody, ans.body.len, out) != 0) {
				out->error_type = status >= 500 ? "api_error" : "invalid_request_error";
				out->message = arena_printf(a, "Stripe answered HTTP %ld", status);
			}
			if (status == 409 || status >= 500)
				maybe_executed = maybe_executed || mutating;
			retry = stripe_should_retry(status, ans.should_retry[0] ? ans.should_retry : NULL);
			if (!retry && status < 500 && status != 409 && status != 429) {
				/* Stripe's answer under this key is authoritative:
				 * a replay of what the first attempt did, if any. */
				out->outcome = STRIPE_REFUSED;
				done = true;
				break;
			}
		}
		if (!retry || attempt == STRIPE_MAX_ATTEMPTS)
			break;
		long wait = stripe_backoff_ms(attempt);
		if (ans.retry_after_s > 0 && ans.retry_after_s * 1000 > wait)
			wait = ans.retry_after_s * 1000;
		if (clock_ms() + wait + STRIPE_MIN_ATTEMPT_MS > deadline)
			break;
		usleep((useconds_t)wait * 1000);
	}
	if (!done)
		out->outcome = maybe_executed ? STRIPE_AMBIGUOUS : STRIPE_UNAVAILABLE;
	curl_slist_free_all(headers);
	buf_free(&ans.body);
	metrics_add(METRIC_STRIPE_REQUESTS, out->outcome);
	log_call(method, path, post ? idempotency_key : NULL, out, started);
	return out->outcome;
}

const char *stripe_outcome_name(enum stripe_outcome o)
{
	static const char *const names[] = { "ok", "refused", "unavailable", "ambiguous",
		"not_configured" };
	return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "unknown";
}

const char *stripe_str(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (cJSON_IsObject(v))
		v = cJSON_GetObjectItemCaseSensitive(v, "id");
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

long long stripe_int(const cJSON *obj, const char *name, long long def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	return cJSON_IsNumber(v) ? (long long)v->valuedouble : def;
}

/* ------------------------------------------------------------ webhooks */

static bool secret_matches(const char *secret, size_t secret_len, const char *signed_payload,
    size_t signed_len, const char *const *sigs, size_t nsigs)
{
	char key[256], mac[65];
	if (secret_len == 0 || secret_len >= sizeof key)
		return false;
	memcpy(key, secret, secret_len);
	key[secret_len] = '\0';
	crypto_hmac_sha256_hex(key, signed_payload, signed_len, mac);
	sodium_memzero(key, sizeof key);
	bool ok = false;
	/* Every candidate is compared, so the time does not tell which one
	 * (or whether any) matched. */
	for (size_t i = 0; i < nsigs; i++)
		ok |= crypto_str_equal(mac, sigs[i]);
	return ok;
}

bool stripe_signature_valid(const char *header, const char *payload, size_t payload_len,
    const char *secrets, long long now, long long tolerance)
{
	if (header == NULL || secrets == NULL || strlen(header) > 4096)
		return false;
	char copy[4097];
	snprintf(copy, sizeof copy, "%s", header);
	const char *sigs[16];
	size_t nsigs = 0;
	long long t = -1;
	char *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		while (*item == ' ')
			item++;
		if (strncmp(item, "t=", 2) == 0) {
			char *end;
			long long v = strtoll(item + 2, &end, 10);
			if (end == item + 2 || *end != '\0' || v < 0)
				return false;
			t = v;
		} else if (strncmp(item, "v1=", 3) == 0 && nsigs < sizeof sigs / sizeof sigs[0]) {
			sigs[nsigs++] = item + 3;
		}
	}
	if (t < 0 || nsigs == 0)
		return false;
	long long skew = now - t;
	if (skew > tolerance || skew < -tolerance)
		return false;
	size_t signed_len = 0;
	char *signed_payload = malloc(payload_len + 32);
	if (signed_payload == NULL)
		return false;
	signed_len = (size_t)snprintf(signed_payload, 32, "%lld.", t);
	memcpy(signed_payload + signed_len, payload, payload_len);
	signed_len += payload_len;
	bool ok = false;
	for (const char *s = secrets; *s != '\0';) {
		const char *comma = strchr(s, ',');
		size_t n = comma ? (size_t)(comma - s) : strlen(s);
		const char *b = s;
		size_t bn = n;
		while (bn > 0 && *b == ' ')
			b++, bn--;
		while (bn > 0 && b[bn - 1] == ' ')
			bn--;
		ok |= secret_matches(b, bn, signed_payload, signed_len, sigs, nsigs);
		s = comma ? comma + 1 : s + n;
	}
	free(signed_payload);
	return ok;
}
