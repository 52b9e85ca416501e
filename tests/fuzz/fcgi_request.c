#include "autoconf.h"

#include "fcgi_request.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes.h"
#include "http/auth.h"
#include "http/pipeline.h"
#include "http/request.h"

#include "fuzz.h"

size_t fuzz_fcgi_params(arena_t *a, const struct fcgi_parser *p)
{
	for (char **e = p->envp; *e != NULL; e++)
		FUZZ_ASSERT(strchr(*e, '=') != NULL && **e != '=');
	struct request req;
	request_init(&req, a, p->envp, NULL, 0);
	FUZZ_ASSERT(req.method != NULL && req.path != NULL && req.query != NULL);
	FUZZ_ASSERT(request_id_valid(req.request_id));
	pipeline_route(&req, api_routes, api_routes_count);
	request_query(&req, "limit");
	request_cookie(&req, SESSION_COOKIE);
	bool from_cookie, malformed;
	auth_request_token(&req, &from_cookie, &malformed);
	const char *cl = request_header(&req, "Content-Length");
	long long clen = cl && *cl ? strtoll(cl, NULL, 10) : 0;
	size_t limit = pipeline_body_limit(&req);
	return clen > 0 && (unsigned long long)clen <= limit ? (size_t)clen : 0;
}

void fuzz_fcgi_request_done(arena_t *a, struct fcgi_parser *p, size_t expected)
{
	if (p->state == FCGI_REQUEST_DONE)
		FUZZ_ASSERT(p->body_len <= expected && p->body[p->body_len] == '\0' &&
		    p->body_len == (p->stdin_len < expected ? p->stdin_len : expected));
	fcgi_parser_init(p, a);
}
