/* FastCGI params → request (server/fcgi.c, http/request.c and the route
 * table), in memory: any byte stream a peer could send, fed to the parser
 * in chunks (the first input byte is the chunk size; 0: all at once),
 * either fails with a reason or yields requests whose params, headers,
 * query, cookies and route the rest of the worker can read. The parser
 * stops at the end of each request's params and of the request (the rest
 * is the next stage's), and never keeps more of a body than it was
 * allowed. fuzz_fcgi_socket runs the worker's own reads and writes. */
#include "autoconf.h"

#include "server/fcgi.h"

#include "fcgi_request.h"
#include "fuzz.h"

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
		if (p.state == FCGI_PARAMS_DONE) {
			expected = fuzz_fcgi_params(a, &p);
			fcgi_expect_body(&p, expected);
			continue;
		}
		if (p.state == FCGI_REQUEST_DONE || p.state == FCGI_ABORTED) {
			fuzz_fcgi_request_done(a, &p, expected);
			continue;
		}
		if (off == size)
			break;
		size_t n = size - off < chunk ? size - off : chunk;
		size_t took = fcgi_feed(&p, data + off, n);
		FUZZ_ASSERT(took > 0 && took <= n);
		/* The worker sends the reply and feeds the rest of what it read,
		 * or keeps it for the next stage; nothing is left over otherwise,
		 * unless the peer broke the protocol. */
		FUZZ_ASSERT(took == n || p.reply_len > 0 || p.state == FCGI_PARAMS_DONE ||
		    p.state == FCGI_REQUEST_DONE || p.state == FCGI_ABORTED ||
		    p.state == FCGI_FAILED);
		p.reply_len = 0;
		off += took;
	}
	FUZZ_ASSERT(p.state != FCGI_FAILED || p.error != NULL);
	return 0;
}
