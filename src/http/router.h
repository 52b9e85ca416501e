/* The route table's shape and the matcher. Routes are declared in one place
 * (api/routes.c) with everything the pipeline needs to know about them. */
#ifndef GALA_ROUTER_H
#define GALA_ROUTER_H

#include <stddef.h>

#include "http/request.h"

enum route_auth {
	AUTH_NONE,          /* no token looked at */
	AUTH_OPTIONAL,      /* a valid token identifies the caller; none is fine */
	AUTH_REQUIRED,      /* 401 without a valid token */
};

enum rate_rule {
	RATE_NONE,          /* exempt (reads, the Stripe webhook) */
	RATE_AUTH,          /* per client IP */
	RATE_AUTH_EMAIL,    /* per client IP and per target email */
	RATE_AUTH_USER,     /* per client IP and per user (second factor) */
	RATE_WRITE,         /* per user, per IP when anonymous */
};

/* Role bits for route.roles; 0 lets every authenticated role in. */
#define ROLE_BIT_CUSTOMER 0x1u
#define ROLE_BIT_PROVIDER 0x2u
#define ROLE_BIT_ADMIN    0x4u

/* route.flags */
#define ROUTE_RAW_BODY    0x1u   /* the handler gets the raw body, unparsed */
#define ROUTE_IDEMPOTENT  0x2u   /* Idempotency-Key honoured */
#define ROUTE_VERIFIED    0x4u   /* the caller's email must be verified (403
                                  * email_not_verified), asked by the session check */

typedef void (*route_handler)(struct request *req);

struct route {
	const char *method;
	const char *pattern;        /* "/api/events/{id}/services" */
	route_handler handler;
	enum route_auth auth;
	unsigned roles;
	enum rate_rule rate;
	unsigned flags;
	size_t max_body;            /* largest body in bytes; 0: MAX_BODY_BYTES */
};

enum router_result {
	ROUTER_MATCH,
	ROUTER_NOT_FOUND,
	ROUTER_METHOD_NOT_ALLOWED,
};

/* Matches method and path against the table. On a match sets req->route and
 * req->path_params. On ROUTER_METHOD_NOT_ALLOWED writes the Allow list
 * ("GET, HEAD, PATCH") to allow. HEAD matches GET routes. */
enum router_result router_match(const struct route *table, size_t n,
    struct request *req, char *allow, size_t allowlen);

#endif
