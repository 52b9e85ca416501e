/* One HTTP request as the worker sees it: the FastCGI params, the body, the
 * matched route and the response being built. Everything hangs off the
 * request's arena and dies with it. */
#ifndef GALA_REQUEST_H
#define GALA_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "http/errors.h"
#include "services/context.h"

#define REQUEST_MAX_PATH_PARAMS 4
#define RESPONSE_MAX_HEADERS 24

struct route;
struct ratelimit_state;

struct response_header {
	const char *name;
	const char *value;
};

struct response {
	int status;                  /* 0 until a response is set */
	const char *content_type;    /* NULL: no body */
	const char *body;
	size_t body_len;
	struct response_header headers[RESPONSE_MAX_HEADERS];
	int nheaders;
	bool headers_overflowed;     /* a header found no room: not sent as is */
	enum gala_error error;       /* what an error response said, for the pipeline */
};

/* The first decoded input of a request that is not text (valid UTF-8
 * without NUL): nothing reads it, the pipeline answers this instead. */
struct input_refusal {
	enum gala_error error;       /* GE_OK: every input is text */
	const char *param;           /* the query parameter of a 422, or NULL */
	const char *message;
};

struct request {
	arena_t *arena;
	char **envp;                 /* FastCGI params, NULL-terminated NAME=VALUE */
	const char *method;
	const char *path;            /* valid UTF-8 (scrubbed when bad_input says not) */
	const char *query;           /* without '?', "" when none */
	const char *request_id;
	const char *remote_addr;
	const char *client_ip;
	const char *body;            /* NUL-terminated, may be NULL when empty */
	size_t body_len;
	bool body_too_large;         /* CONTENT_LENGTH above MAX_BODY_BYTES: not read */
	cJSON *json;                 /* parsed body of JSON routes, else NULL */
	const struct route *route;
	bool routed;                 /* route_result and allow are set */
	int route_result;            /* enum router_result */
	const char *allow;           /* the Allow list of a 405 */
	const char *path_params[REQUEST_MAX_PATH_PARAMS];
	int npath_params;
	struct svc_ctx cx;           /* what the services see: the arena, the
	                              * caller (set by the auth stage), ids */
	struct ratelimit_state *limits;  /* the limiter's checks, or NULL */
	long long started_us;
	struct input_refusal bad_input;
	bool abandoned;              /* the pipeline gave up mid-way (arena cap) */
	struct response resp;
};

/* Fills the request from FastCGI params and a body already read into the
 * arena. Never fails: missing params read as empty strings. Checks that
 * the path, every query parameter (name and value, once decoded) and every
 * header is text, valid UTF-8 without NUL; the first that is not is
 * described in req->bad_input: 422 naming a query parameter whose value
 * is not, else 400. */
void request_init(struct request *req, arena_t *arena, char **envp,
    const char *body, size_t body_len);

/* An HTTP request header by its usual name ("X-CSRF-Token"), or NULL. */
const char *request_header(const struct request *req, const char *name);

/* The percent-decoded value of a query parameter, or NULL when absent (an
 * empty value "?limit=" reads as ""). */
const char *request_query(const struct request *req, const char *key);

/* The value of a cookie, or NULL. */
const char *request_cookie(const struct request *req, const char *name);

/* --- For the unit tests. --- */

/* True when s is a usable request id: 1..64 of [A-Za-z0-9._-]. */
bool request_id_valid(const char *s);

#endif
