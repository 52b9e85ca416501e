#include "autoconf.h"

#include "server/fcgi.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/clock.h"

/* The FastCGI 1.0 specification's numbers. */
enum {
	FCGI_VERSION_1 = 1,
	REC_BEGIN_REQUEST = 1,
	REC_ABORT_REQUEST = 2,
	REC_END_REQUEST = 3,
	REC_PARAMS = 4,
	REC_STDIN = 5,
	REC_STDOUT = 6,
	REC_GET_VALUES = 9,
	REC_GET_VALUES_RESULT = 10,
	REC_UNKNOWN_TYPE = 11,
	ROLE_RESPONDER = 1,
	FLAG_KEEP_CONN = 1,
	STATUS_REQUEST_COMPLETE = 0,
	STATUS_CANT_MPX_CONN = 1,
	STATUS_UNKNOWN_ROLE = 3,
};

#define HEADER_LEN 8
/* The largest multiple of 8 a record's content can hold. */
#define STDOUT_CHUNK 65528

/* Where the content of the current record goes. */
enum { SINK_SKIP, SINK_BEGIN, SINK_PARAMS, SINK_BODY };

void fcgi_parser_init(struct fcgi_parser *p, arena_t *a)
{
	memset(p, 0, sizeof *p);
	p->arena = a;
	p->state = FCGI_IDLE;
}

static bool reading(const struct fcgi_parser *p)
{
	return p->state == FCGI_IDLE || p->state == FCGI_READ_PARAMS ||
	    p->state == FCGI_READ_BODY;
}

/* A request has begun and has not ended. */
static bool active(const struct fcgi_parser *p)
{
	return p->state == FCGI_READ_PARAMS || p->state == FCGI_READ_BODY;
}

static void fail(struct fcgi_parser *p, const char *why)
{
	p->state = FCGI_FAILED;
	p->error = why;
}

static void put_header(unsigned char *h, unsigned type, unsigned id, size_t content_len)
{
	h[0] = FCGI_VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(content_len >> 8);
	h[5] = (unsigned char)content_len;
	h[6] = 0;
	h[7] = 0;
}

/* FCGI_END_REQUEST: app status 0 and protocol_status. */
static void put_end_request(unsigned char out[16], unsigned id, unsigned protocol_status)
{
	put_header(out, REC_END_REQUEST, id, 8);
	memset(out + HEADER_LEN, 0, 8);
	out[HEADER_LEN + 4] = (unsigned char)protocol_status;
}

/* The answer to a management record: GET_VALUES gets a result naming no
 * variable (the specification lets an application omit those it does not
 * answer), any other type UNKNOWN_TYPE. */
static void reply_management(struct fcgi_parser *p)
{
	if (p->type == REC_GET_VALUES) {
		put_header(p->reply, REC_GET_VALUES_RESULT, 0, 0);
		p->reply_len = HEADER_LEN;
		return;
	}
	put_header(p->reply, REC_UNKNOWN_TYPE, 0, 8);
	memset(p->reply + HEADER_LEN, 0, 8);
	p->reply[HEADER_LEN] = (unsigned char)p->type;
	p->reply_len = 16;
}

/* Where the content of the record whose header just arrived goes; false
 * when the header alone breaks the protocol. */
static bool record_start(struct fcgi_parser *p)
{
	const unsigned char *h = p->header;
	if (h[0] != FCGI_VERSION_1) {
		fail(p, "unsupported FastCGI version");
		return false;
	}
	p->type = h[1];
	p->id = (unsigned)h[2] << 8 | h[3];
	p->content_len = p->content_left = (size_t)h[4] << 8 | h[5];
	p->padding_left = h[6];
	p->sink = SINK_SKIP;
	bool mine = active(p) && p->id == p->request_id;
	if (p->id == 0)
		return true;
	switch (p->type) {
	case REC_BEGIN_REQUEST:
		if (p->content_len != sizeof p->begin) {
			fail(p, "a BEGIN_REQUEST record of the wrong length");
			return false;
		}
		p->sink = SINK_BEGIN;
		p->begin_len = 0;
		return true;
	case REC_ABORT_REQUEST:
		return true;
	case REC_PARAMS:
		if (mine && p->state != FCGI_READ_PARAMS) {
			fail(p, "a PARAMS record after the end of the params");
			return false;
		}
		p->sink = mine ? SINK_PARAMS : SINK_SKIP;
		return true;
	case REC_STDIN:
		if (mine && p->state != FCGI_READ_BODY) {
			fail(p, "a STDIN record before the end of the params");
			return false;
		}
		p->sink = mine ? SINK_BODY : SINK_SKIP;
		return true;
	default:
		if (mine) {
			fail(p, "a record of an unexpected type in a request");
			return false;
		}
		return true;
	}
}

static void params_append(struct fcgi_parser *p, const unsigned char *data, size_t n)
{
	if (n > FCGI_PARAMS_MAX - p->params_len) {
		fail(p, "params over FCGI_PARAMS_MAX");
		return;
	}
	if (p->params_len + n > p->params_cap) {
		size_t cap = p->params_cap ? p->params_cap : 4096;
		while (cap < p->params_len + n)
			cap *= 2;
		char *bigger = arena_alloc(p->arena, cap);
		if (p->params_len > 0)
			memcpy(bigger, p->params, p->params_len);
		p->params = bigger;
		p->params_cap = cap;
	}
	memcpy(p->params + p->params_len, data, n);
	p->params_len += n;
}

static void record_content(struct fcgi_parser *p, const unsigned char *data, size_t n)
{
	switch (p->sink) {
	case SINK_BEGIN:
		memcpy(p->begin + p->begin_len, data, n);
		p->begin_len += n;
		break;
	case SINK_PARAMS:
		params_append(p, data, n);
		break;
	case SINK_BODY: {
		size_t keep = p->body_max - p->body_len;
		if (keep > n)
			keep = n;
		memcpy(p->body + p->body_len, data, keep);
		p->body_len += keep;
		p->stdin_len += n;
		break;
	}
	default:
		break;
	}
}

/* A name or value length: one byte below 128, else four (31 bits). */
static bool read_length(const unsigned char **s, const unsigned char *end, size_t *len)
{
	if (*s >= end)
		return false;
	if (**s < 0x80) {
		*len = *(*s)++;
		return true;
	}
	if (end - *s < 4)
		return false;
	const unsigned char *b = *s;
	*len = (size_t)(b[0] & 0x7f) << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3];
	*s += 4;
	return true;
}

/* The params stream as NAME=VALUE strings. A pair must fit the stream; a
 * name is not empty and holds no '=' or NUL, a value no NUL (nginx sends
 * neither: it refuses such requests itself). */
static void params_decode(struct fcgi_parser *p)
{
	const unsigned char *s = (const unsigned char *)p->params;
	const unsigned char *end = s != NULL ? s + p->params_len : s;   /* NULL: no params */
	size_t n = 0;
	for (const unsigned char *q = s; q < end; n++) {
		size_t nlen, vlen;
		if (!read_length(&q, end, &nlen) || !read_length(&q, end, &vlen) ||
		    nlen > (size_t)(end - q) || vlen > (size_t)(end - q) - nlen) {
			fail(p, "a truncated name-value pair in the params");
			return;
		}
		if (nlen == 0 || memchr(q, '=', nlen) != NULL || memchr(q, '\0', nlen + vlen) != NULL) {
			fail(p, "a param with an empty name or a NUL or '=' where it cannot be");
			return;
		}
		q += nlen + vlen;
	}
	p->envp = arena_alloc(p->arena, (n + 1) * sizeof *p->envp);
	for (size_t i = 0; i < n; i++) {
		/* Checked by the loop above. */
		size_t nlen = 0, vlen = 0;
		read_length(&s, end, &nlen);
		read_length(&s, end, &vlen);
		char *pair = arena_alloc(p->arena, nlen + vlen + 2);
		memcpy(pair, s, nlen);
		pair[nlen] = '=';
		memcpy(pair + nlen + 1, s + nlen, vlen);
		pair[nlen + 1 + vlen] = '\0';
		p->envp[i] = pair;
		s += nlen + vlen;
	}
	p->envp[n] = NULL;
	p->state = FCGI_PARAMS_DONE;
}

static void begin_request(struct fcgi_parser *p)
{
	unsigned role = (unsigned)p->begin[0] << 8 | p->begin[1];
	if (active(p) && p->id == p->request_id) {
		fail(p, "a second BEGIN_REQUEST for the request in progress");
		return;
	}
	if (active(p) || role != ROLE_RESPONDER) {
		put_end_request(p->reply, p->id, active(p) ? STATUS_CANT_MPX_CONN : STATUS_UNKNOWN_ROLE);
		p->reply_len = 16;
		return;
	}
	p->request_id = p->id;
	p->keep_conn = (p->begin[2] & FLAG_KEEP_CONN) != 0;
	p->state = FCGI_READ_PARAMS;
}

/* The record is complete (content and padding). */
static void record_end(struct fcgi_parser *p)
{
	p->header_len = 0;
	bool mine = active(p) && p->id == p->request_id;
	if (p->id == 0) {
		reply_management(p);
		return;
	}
	switch (p->type) {
	case REC_BEGIN_REQUEST:
		begin_request(p);
		break;
	case REC_ABORT_REQUEST:
		if (mine)
			p->state = FCGI_ABORTED;
		break;
	case REC_PARAMS:
		if (p->sink == SINK_PARAMS && p->content_len == 0)
			params_decode(p);
		break;
	case REC_STDIN:
		if (p->sink == SINK_BODY && p->content_len == 0) {
			p->body[p->body_len] = '\0';
			p->state = FCGI_REQUEST_DONE;
		}
		break;
	default:
		break;
	}
}

/* The rest of a record header, or of a record's content and padding. */
static size_t feed_step(struct fcgi_parser *p, const unsigned char *data, size_t len)
{
	if (p->header_len < HEADER_LEN) {
		size_t n = HEADER_LEN - p->header_len;
		if (n > len)
			n = len;
		memcpy(p->header + p->header_len, data, n);
		p->header_len += n;
		if (p->header_len == HEADER_LEN && record_start(p) &&
		    p->content_left + p->padding_left == 0)
			record_end(p);
		return n;
	}
	size_t used = p->content_left < len ? p->content_left : len;
	if (used > 0) {
		record_content(p, data, used);
		p->content_left -= used;
		if (p->state == FCGI_FAILED)
			return used;
	}
	size_t pad = p->padding_left < len - used ? p->padding_left : len - used;
	p->padding_left -= pad;
	used += pad;
	if (p->content_left == 0 && p->padding_left == 0)
		record_end(p);
	return used;
}

size_t fcgi_feed(struct fcgi_parser *p, const unsigned char *data, size_t len)
{
	size_t used = 0;
	while (used < len && reading(p) && p->reply_len == 0)
		used += feed_step(p, data + used, len - used);
	return used;
}

void fcgi_expect_body(struct fcgi_parser *p, size_t max)
{
	p->body_max = max;
	p->body = arena_alloc(p->arena, max + 1);
	p->state = FCGI_READ_BODY;
}

/* Waits until fd is ready for events or deadline_ms passes; 0 or -1. */
static int wait_fd(int fd, short events, long long deadline_ms)
{
	for (;;) {
		long long left = deadline_ms - clock_ms();
		if (left <= 0)
			return -1;
		struct pollfd pfd = { .fd = fd, .events = events };
		int n = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static int write_all(int fd, struct iovec *iov, int iovcnt, long long deadline_ms)
{
	while (iovcnt > 0) {
		ssize_t n = writev(fd, iov, iovcnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN || wait_fd(fd, POLLOUT, deadline_ms) != 0)
				return -1;
			continue;
		}
		size_t done = (size_t)n;
		while (iovcnt > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return 0;
}

void fcgi_carry_free(struct fcgi_carry *c)
{
	free(c->data);
	c->data = NULL;
	c->len = 0;
}

/* Keeps the len bytes at data for the connection's next read; a peer that
 * sent more than anyone needs (past the read buffer) is cut off by the
 * parser, so this is at most FCGI_READ_SIZE bytes. */
static bool carry_keep(struct fcgi_carry *c, const unsigned char *data, size_t len)
{
	if (len == 0)
		return true;
	c->data = malloc(len);
	if (c->data == NULL)
		return false;
	memcpy(c->data, data, len);
	c->len = len;
	return true;
}

/* One read takes all of a request nginx sends at once (its headers are at
 * most 32 KiB, a body is read on). */
#define FCGI_READ_SIZE 16384

enum fcgi_state fcgi_read(int fd, struct fcgi_parser *p, struct fcgi_carry *carry,
    long long deadline_ms)
{
	unsigned char buf[FCGI_READ_SIZE];
	size_t have = carry->len, fed = 0;
	if (have > 0)
		memcpy(buf, carry->data, have);
	fcgi_carry_free(carry);
	for (;;) {
		if (p->reply_len > 0) {
			struct iovec iov = { p->reply, p->reply_len };
			p->reply_len = 0;
			if (write_all(fd, &iov, 1, deadline_ms) != 0) {
				fail(p, "could not send a reply");
				return p->state;
			}
		}
		if (fed < have && reading(p)) {
			fed += fcgi_feed(p, buf + fed, have - fed);
			continue;
		}
		if (!reading(p)) {
			if (p->state != FCGI_FAILED && !carry_keep(carry, buf + fed, have - fed))
				fail(p, "out of memory");
			return p->state;
		}
		bool between = p->state == FCGI_IDLE && p->header_len == 0;
		if (clock_ms() >= deadline_ms) {
			fail(p, "the request did not arrive in time");
			return p->state;
		}
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			have = (size_t)n;
			fed = 0;
		} else if (n == 0) {
			fail(p, between ? NULL : "the connection closed in the middle of a request");
			return p->state;
		} else if (errno == EAGAIN) {
			if (between)
				return p->state;
			if (wait_fd(fd, POLLIN, deadline_ms) != 0) {
				fail(p, "the request did not arrive in time");
				return p->state;
			}
		} else if (errno != EINTR) {
			fail(p, "reading the connection failed");
			return p->state;
		}
	}
}

int fcgi_write_response(int fd, unsigned request_id, const char *data, size_t len,
    long long deadline_ms)
{
	/* Up to 16 STDOUT records a call; the last call adds the empty one
	 * and END_REQUEST. */
	unsigned char headers[16][HEADER_LEN], tail[HEADER_LEN + 16];
	put_header(tail, REC_STDOUT, request_id, 0);
	put_end_request(tail + HEADER_LEN, request_id, STATUS_REQUEST_COMPLETE);
	size_t off = 0;
	do {
		struct iovec iov[33];
		int n = 0;
		for (int r = 0; r < 16 && off < len; r++) {
			size_t chunk = len - off < STDOUT_CHUNK ? len - off : STDOUT_CHUNK;
			put_header(headers[r], REC_STDOUT, request_id, chunk);
			iov[n++] = (struct iovec){ headers[r], HEADER_LEN };
			iov[n++] = (struct iovec){ (char *)data + off, chunk };
			off += chunk;
		}
		if (off == len)
			iov[n++] = (struct iovec){ tail, sizeof tail };
		if (write_all(fd, iov, n, deadline_ms) != 0)
			return -1;
	} while (off < len);
	return 0;
}

int fcgi_end_request(int fd, unsigned request_id, long long deadline_ms)
{
	unsigned char rec[16];
	put_end_request(rec, request_id, STATUS_REQUEST_COMPLETE);
	struct iovec iov = { rec, sizeof rec };
	return write_all(fd, &iov, 1, deadline_ms);
}
