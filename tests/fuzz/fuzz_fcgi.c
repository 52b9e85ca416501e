/* FastCGI params → request (server/fcgi.c, http/request.c and the route
 * table): any byte stream a peer could send, fed as the worker reads it
 * (the first input byte picks the chunk size), either fails with a reason
 * or yields requests whose params, headers, query, cookies and route the
 * rest of the worker can read. The parser never takes more than it asked
 * for, nor keeps more of a body than it was allowed. */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "api/routes.h"
#include "http/auth.h"
#include "http/pipeline.h"
#include "http/request.h"
#include "server/fcgi.h"

#include "fuzz.h"

/* What the worker does between the params and the body (worker_read):
 * returns the most of the body to keep. */
static size_t params_to_request(arena_t *a, const struct fcgi_parser *p)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t chunk = data[0] == 0 ? (size_t)-1 : data[0];
	data++, size--;
	arena_t *a = fuzz_arena();
	struct fcgi_parser p;
	fcgi_parser_init(&p, a);
	size_t off = 0, expected = 0;
	while (p.state != FCGI_FAILED) {
		size_t want = fcgi_want(&p);
		if (p.state == FCGI_PARAMS_DONE) {
			FUZZ_ASSERT(want == 0);
			expected = params_to_request(a, &p);
			fcgi_expect_body(&p, expected);
			continue;
		}
		if (p.state == FCGI_REQUEST_DONE || p.state == FCGI_ABORTED) {
			FUZZ_ASSERT(want == 0);
			if (p.state == FCGI_REQUEST_DONE)
				FUZZ_ASSERT(p.body_len <= expected && p.body[p.body_len] == '\0' &&
				    p.body_len == (p.stdin_len < expected ? p.stdin_len : expected));
			fcgi_parser_init(&p, a);
			continue;
		}
		FUZZ_ASSERT(want > 0);
		if (off == size)
			break;
		size_t n = size - off < chunk ? size - off : chunk;
		if (n > want)
			n = want;
		size_t took = fcgi_feed(&p, data + off, n);
		FUZZ_ASSERT(took > 0 && took <= n);
		/* The worker sends the reply and feeds the rest of what it read;
		 * nothing is left over otherwise, unless the peer broke the
		 * protocol. */
		FUZZ_ASSERT(took == n || p.reply_len > 0 || p.state == FCGI_FAILED);
		p.reply_len = 0;
		off += took;
	}
	FUZZ_ASSERT(p.state != FCGI_FAILED || p.error != NULL);
	return 0;
}
