#include "autoconf.h"

#include "http/pipeline.h"

#include <ctype.h>
#include <setjmp.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "http/idempotency_stage.h"
#include "core/log.h"
#include "http/ratelimit_stage.h"
#include "db/db.h"
#include "http/auth.h"
#include "http/json.h"
#include "http/response.h"

static bool method_has_body(const char *m)
{
	return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0 ||
	    strcmp(m, "DELETE") == 0;
}

/* application/json, optionally with parameters; a charset other than UTF-8
 * is refused since JSON bodies are UTF-8 by definition (RFC 8259). */
static bool content_type_is_json(const char *ct)
{
	if (ct == NULL)
		return false;
	while (*ct == ' ')
		ct++;
	size_t n = strlen("application/json");
	if (strncasecmp(ct, "application/json", n) != 0)
		return false;
	const char *rest = ct + n;
	while (*rest == ' ')
		rest++;
	if (*rest == '\0')
		return true;
	if (*rest != ';')
		return false;
	const char *cs = strcasestr(rest, "charset=");
	if (cs == NULL)
		return true;
	cs += strlen("charset=");
	if (*cs == '"')
		cs++;
	return strncasecmp(cs, "utf-8", 5) == 0 || strncasecmp(cs, "utf8", 4) == 0;
}

static int stage_body(struct request *req)
{
	if (!method_has_body(req->method) || req->body_len == 0)
		return 0;
	if (!content_type_is_json(request_header(req, "Content-Type"))) {
		http_respond_error(req, GE_UNSUPPORTED_MEDIA_TYPE, NULL, NULL);
		return -1;
	}
	if (req->route->flags & ROUTE_RAW_BODY)
		return 0;
	return json_parse_request(req);
}

static void run_handler(struct request *req)
{
	req->route->handler(req);
	if (req->resp.status == 0) {
		log_error("gala.pipeline", "handler of %s %s set no response",
		    req->route->method, req->route->pattern);
		http_respond_error(req, GE_INTERNAL, NULL, NULL);
	}
}

void pipeline_route(struct request *req, const struct route *table, size_t n)
{
	char allow[128];
	req->route_result = (int)router_match(table, n, req, allow, sizeof allow);
	req->allow = arena_strdup(req->arena, allow);
	req->routed = true;
}

size_t pipeline_body_limit(const struct request *req)
{
	if (req->route != NULL && req->route->max_body > 0)
		return req->route->max_body;
	return (size_t)gala_config->max_body_bytes;
}

/* The deferred checks have the last word, the session's first. A request
 * refused 401 (no valid credentials, found by the auth stage or by the
 * session check) counts against its client IP; one that a stage refused
 * otherwise before the limiter still carries the route's RateLimit
 * fields, from the buckets as they stand (it did not count). */
static enum auth_outcome settle(struct request *req)
{
	enum auth_outcome o = auth_settle(req);
	if (o == AUTH_RETRY)
		return o;
	if (o == AUTH_REFUSED || req->limits == NULL) {
		db_end_refusal();
		if (req->resp.status == 401)
			ratelimit_count_anonymous(req);
		else
			ratelimit_annotate(req);
		return o;
	}
	ratelimit_settle(req);
	return o;
}

/* Each stage either lets the request go on or leaves its answer. The
 * limiter runs after authentication because the write rule counts per
 * user; CSRF is part of auth_stage. The checks auth_stage and the limiter
 * queue go out with the first statement that follows. */
static enum auth_outcome run_stages(struct request *req, enum auth_mode mode)
{
	if (stage_body(req) == 0 && auth_stage(req, mode) == 0) {
		ratelimit_stage(req);
		struct idempotency idem;
		if (idempotency_begin(req, &idem) == 0) {
			if (ratelimit_gate(req) == 0)
				run_handler(req);
			idempotency_finish(req, &idem);
		}
	}
	return settle(req);
}

static void answer_request(struct request *req, const struct route *table, size_t n)
{
	if (!req->routed)
		pipeline_route(req, table, n);
	if (req->bad_input.error != GE_OK) {
		http_respond_error(req, req->bad_input.error, req->bad_input.param, "%s",
		    req->bad_input.message);
		return;
	}
	if (req->body_too_large) {
		http_respond_error(req, GE_PAYLOAD_TOO_LARGE, NULL,
		    "the request body is larger than %zu bytes", pipeline_body_limit(req));
		return;
	}
	switch ((enum router_result)req->route_result) {
	case ROUTER_NOT_FOUND:
		http_respond_error(req, GE_NOT_FOUND, NULL, "no route for %s", req->path);
		return;
	case ROUTER_METHOD_NOT_ALLOWED:
		http_respond_error(req, GE_METHOD_NOT_ALLOWED, NULL,
		    "%s is not allowed on %s", req->method, req->path);
		response_header(req, "Allow", req->allow);
		return;
	case ROUTER_MATCH:
		break;
	}
	if (run_stages(req, AUTH_DEFERRED) == AUTH_RETRY) {
		/* The session check aborted everything sent with it and refused
		 * the rest: nothing of the first run reached the database. */
		db_request_done();
		req->resp = (struct response){ 0 };
		req->limits = NULL;
		run_stages(req, AUTH_EAGER);
	}
}

/* Worker-owned: where pipeline_run resumes when its request passes the
 * arena's cap. */
static jmp_buf pipeline_over_cap;

static void pipeline_abandon(void *ctx)
{
	(void)ctx;
	longjmp(pipeline_over_cap, 1);
}

void pipeline_run(struct request *req, const struct route *table, size_t n)
{
	if (setjmp(pipeline_over_cap) != 0) {
		arena_on_cap(req->arena, NULL, NULL);
		db_abandon();
		req->abandoned = true;
		log_error("gala.pipeline", "%s %s abandoned: it needed more memory than one "
		    "request may use", req->method, req->path);
		req->resp = (struct response){ 0 };
		http_respond_error(req, GE_SERVICE_UNAVAILABLE, NULL,
		    "the request needed more memory than the server gives one request");
		return;
	}
	arena_on_cap(req->arena, pipeline_abandon, NULL);
	answer_request(req, table, n);
	arena_on_cap(req->arena, NULL, NULL);
}
