/* FastCGI params → request (server/fcgi.c, http/request.c and the route
 * table): any byte stream a peer could send, fed to the parser in chunks
 * or read by the worker's own reads from a socket (the first input byte
 * picks), either fails with a reason or yields requests whose params,
 * headers, query, cookies and route the rest of the worker can read. The
 * parser never takes more than it asked for, nor keeps more of a body than
 * it was allowed, and the reads end with the input. */
#include "autoconf.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/routes.h"
#include "core/clock.h"
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

/* After a request: checks what the parser kept and starts the next one. */
static void request_done(arena_t *a, struct fcgi_parser *p, size_t expected)
{
	FUZZ_ASSERT(fcgi_want(p) == 0);
	if (p->state == FCGI_REQUEST_DONE)
		FUZZ_ASSERT(p->body_len <= expected && p->body[p->body_len] == '\0' &&
		    p->body_len == (p->stdin_len < expected ? p->stdin_len : expected));
	fcgi_parser_init(p, a);
}

/* The parser fed chunk bytes at a time, at most what it asks for. */
static void feed_in_chunks(arena_t *a, const uint8_t *data, size_t size, size_t chunk)
{
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
			request_done(a, &p, expected);
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
}

/* nginx's side of the socket: takes every record the worker writes, as
 * it comes, until the worker's side is shut. */
static void *peer_reads(void *arg)
{
	int fd = *(int *)arg;
	char sink[65536];
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		poll(&pfd, 1, -1);
		ssize_t n = read(fd, sink, sizeof sink);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return NULL;
	}
}

/* The worker's own reads and writes (fcgi_read, fcgi_write_response) on
 * a socket that holds the whole input, then its end. */
static void read_from_socket(arena_t *a, const uint8_t *data, size_t size)
{
	int sv[2];
	FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	size_t sent = 0;
	while (sent < size) {
		ssize_t n = write(sv[1], data + sent, size - sent);
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	shutdown(sv[1], SHUT_WR);
	pthread_t peer;
	FUZZ_ASSERT(pthread_create(&peer, NULL, peer_reads, &sv[1]) == 0);
	struct fcgi_parser p;
	fcgi_parser_init(&p, a);
	long long deadline = clock_ms() + 5000;
	size_t expected = 0;
	for (int requests = 0; requests < 64; requests++) {
		if (fcgi_read(sv[0], &p, deadline) == FCGI_PARAMS_DONE) {
			expected = params_to_request(a, &p);
			fcgi_expect_body(&p, expected);
			fcgi_read(sv[0], &p, deadline);
		}
		if (p.state == FCGI_REQUEST_DONE)
			fcgi_write_response(sv[0], p.request_id, p.body, p.body_len, deadline);
		else if (p.state == FCGI_ABORTED)
			fcgi_end_request(sv[0], p.request_id, deadline);
		else
			break;
		request_done(a, &p, expected);
	}
	/* The reads end with the input, and nothing waited. */
	FUZZ_ASSERT(p.state == FCGI_FAILED || p.state == FCGI_IDLE);
	FUZZ_ASSERT(clock_ms() < deadline);
	shutdown(sv[0], SHUT_WR);
	pthread_join(peer, NULL);
	close(sv[0]);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* The first byte: 0xff, through a socket; else the chunk size (0:
	 * all at once). */
	uint8_t mode = data[0];
	data++, size--;
	arena_t *a = fuzz_arena();
	if (mode == 0xff)
		read_from_socket(a, data, size < 65536 ? size : 65536);
	else
		feed_in_chunks(a, data, size, mode == 0 ? (size_t)-1 : mode);
	return 0;
}
