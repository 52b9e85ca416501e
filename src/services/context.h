/* What a service knows of the request it serves: the arena its memory
 * comes from, the caller, and the request's identity for the audit trail.
 * Nothing of HTTP: api/ fills it (the pipeline, from the request) and
 * services read it, returning an error value of core/errors.h. */
#ifndef GALA_SERVICES_CONTEXT_H
#define GALA_SERVICES_CONTEXT_H

#include "core/arena.h"

struct session;

struct svc_ctx {
	arena_t *arena;
	struct session *caller;        /* the signed-in caller, or NULL */
	const char *request_id;
	const char *ip;                /* the client's address */
	const char *user_agent;        /* NULL when not sent */
	const char *idempotency_key;   /* the client's Idempotency-Key, or NULL */
	const char *log_user_id;       /* who the request acted as (access log);
	                                * a service sets it when it signs one in */
};

#endif
