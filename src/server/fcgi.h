/* The FastCGI protocol on the worker's connections: the responder role,
 * one request at a time on a connection (FCGI_MPXS_CONNS is 0), as nginx
 * speaks it. It replaces libfcgi, whose record parser trusts its peer (a
 * GET_VALUES record naming 40 variables overflows a 64-byte stack buffer
 * and aborts the worker) and whose reads wait as long as the peer likes.
 *
 * The parser is fed bytes and never takes more than the rest of the
 * request it is in; a read takes whatever is waiting (one read for
 * nginx's whole request), and the bytes past the request wait in the
 * connection's carry for its next one. Its
 * memory comes from the request's arena and is bounded: FCGI_PARAMS_MAX
 * bytes of params, and of the body what the caller allows (the rest is
 * counted and dropped). Reads and writes on a connection (non-blocking)
 * stop at a deadline, so a slow or silent peer holds a worker for a
 * bounded time. */
#ifndef GALA_FCGI_H
#define GALA_FCGI_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"

/* More than nginx ever sends: its request headers are at most 32 KiB
 * (large_client_header_buffers 4 8k), each a param of a few more bytes. */
#define FCGI_PARAMS_MAX ((size_t)256 * 1024)

enum fcgi_state {
	FCGI_IDLE,           /* between requests: waiting for a BEGIN_REQUEST */
	FCGI_READ_PARAMS,
	FCGI_PARAMS_DONE,    /* envp is complete: call fcgi_expect_body() */
	FCGI_READ_BODY,
	FCGI_REQUEST_DONE,   /* the whole request is in */
	FCGI_ABORTED,        /* the web server aborted it: only fcgi_end_request() */
	FCGI_FAILED,         /* close the connection; error says why (NULL: the
	                      * peer closed it between requests) */
};

struct fcgi_parser {
	arena_t *arena;
	enum fcgi_state state;
	const char *error;
	unsigned request_id;
	bool keep_conn;          /* else the connection closes after the response */
	char **envp;             /* NAME=VALUE, NULL-terminated, from FCGI_PARAMS_DONE */
	char *body;              /* NUL-terminated, from FCGI_REQUEST_DONE */
	size_t body_len;         /* what was kept: at most the caller's maximum */
	size_t stdin_len;        /* every body byte the peer sent */
	/* A record to send back before reading on: the answer to a management
	 * record, or the refusal of a BEGIN_REQUEST. */
	unsigned char reply[16];
	size_t reply_len;
	/* The record being read. */
	unsigned char header[8];
	size_t header_len;
	unsigned type, id;
	size_t content_len, content_left, padding_left;
	int sink;
	unsigned char begin[8];
	size_t begin_len;
	char *params;
	size_t params_len, params_cap;
	size_t body_max;
};

void fcgi_parser_init(struct fcgi_parser *p, arena_t *a);

/* Takes up to len bytes, stopping early when a reply waits in p->reply
 * or the parser needs the caller (the end of the params, of the request,
 * or a failure): what is left belongs to what comes next. Returns how many
 * it took. */
size_t fcgi_feed(struct fcgi_parser *p, const unsigned char *data, size_t len);

/* After FCGI_PARAMS_DONE: keep at most max bytes of the body (drop the
 * rest) and read on. */
void fcgi_expect_body(struct fcgi_parser *p, size_t max);

/* Bytes a read took past what the parser was fed (what a peer sent behind
 * a request), kept with the connection and fed first at its next
 * fcgi_read(). Starts zeroed; fcgi_carry_free() when the connection
 * closes. */
struct fcgi_carry {
	unsigned char *data;   /* malloc'd, NULL when empty */
	size_t len;
};
void fcgi_carry_free(struct fcgi_carry *c);

/* Reads from the non-blocking fd (after what carry holds) until the parser
 * needs the caller, or until nothing more is waiting between requests
 * (FCGI_IDLE), and sends the replies it makes on the way; what was read
 * past that point is left in carry. Fails (FCGI_FAILED) past deadline_ms
 * (clock_ms()). Returns p->state. */
enum fcgi_state fcgi_read(int fd, struct fcgi_parser *p, struct fcgi_carry *carry,
    long long deadline_ms);

/* The response of request_id: data as FCGI_STDOUT records, then the end
 * of the stream and FCGI_END_REQUEST. 0, or -1 (write error or deadline). */
int fcgi_write_response(int fd, unsigned request_id, const char *data, size_t len,
    long long deadline_ms);

/* FCGI_END_REQUEST alone, for an aborted request. 0 or -1. */
int fcgi_end_request(int fd, unsigned request_id, long long deadline_ms);

#endif
