/* A hostile FastCGI peer on the pool's socket itself, without nginx:
 * broken records, oversized and truncated params, multiplexing, aborts,
 * slow senders and a client that never reads its responses. After every
 * case no worker has died (the same pids, no exit in the master's log),
 * no worker's memory grew past WORKER_RSS_BOUND_KB, and the pool answers
 * a normal request on another connection at once — also while a slow case
 * is still holding its worker. Runs on the test stack (WORKERS=3). */
#include "autoconf.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

/* The worker's WORKER_IO_TIMEOUT_MS: how long a peer may take to send a
 * request or to take a response. */
#define IO_TIMEOUT_MS 5000

/* The most a worker's resident memory may grow in a case, over the
 * largest worker before it. A worker keeps at most one request: 256 KiB of
 * params (FCGI_PARAMS_MAX) and their decoded copy, and a body of at most
 * 1 MiB (the webhook's limit); its arena hands the memory back after each
 * request, and glibc may keep about as much again as free heap. */
#define WORKER_RSS_BOUND_KB (8 * 1024)

enum {
	BEGIN_REQUEST = 1, ABORT_REQUEST = 2, END_REQUEST = 3, PARAMS = 4, STDIN = 5,
	STDOUT = 6, GET_VALUES = 9, GET_VALUES_RESULT = 10, UNKNOWN_TYPE = 11,
	RESPONDER = 1, KEEP_CONN = 1, CANT_MPX_CONN = 1, UNKNOWN_ROLE = 3,
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* --- Building records --- */

struct bytes {
	unsigned char *data;
	size_t len, cap;
};

static void put(struct bytes *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->data = realloc(b->data, b->cap);
		ck_assert_ptr_nonnull(b->data);
	}
	if (n > 0)
		memcpy(b->data + b->len, d, n);
	b->len += n;
}

static void record(struct bytes *b, int version, int type, unsigned id, const void *content,
    size_t len, unsigned padding)
{
	unsigned char h[8] = { (unsigned char)version, (unsigned char)type,
		(unsigned char)(id >> 8), (unsigned char)id, (unsigned char)(len >> 8),
		(unsigned char)len, (unsigned char)padding, 0 };
	static const unsigned char zeros[255];
	put(b, h, sizeof h);
	put(b, content, len);
	put(b, zeros, padding);
}

static void begin(struct bytes *b, unsigned id, int role)
{
	unsigned char body[8] = { (unsigned char)(role >> 8), (unsigned char)role, KEEP_CONN };
	record(b, 1, BEGIN_REQUEST, id, body, sizeof body, 0);
}

static void length(struct bytes *b, size_t n)
{
	unsigned char l[4] = { (unsigned char)(n >> 24 | 0x80), (unsigned char)(n >> 16),
		(unsigned char)(n >> 8), (unsigned char)n };
	if (n < 128)
		put(b, l + 3, 1);
	else
		put(b, l, 4);
}

static void pair(struct bytes *stream, const char *name, const char *value)
{
	length(stream, strlen(name));
	length(stream, strlen(value));
	put(stream, name, strlen(name));
	put(stream, value, strlen(value));
}

/* The params nginx sends (nginx/gala.conf with fastcgi_params). */
static void nginx_params(struct bytes *stream, const char *method, const char *uri,
    size_t content_length)
{
	char path[512], clen[32] = "";
	snprintf(path, sizeof path, "%.*s", (int)strcspn(uri, "?"), uri);
	if (content_length > 0)
		snprintf(clen, sizeof clen, "%zu", content_length);
	const char *q = strchr(uri, '?');
	pair(stream, "QUERY_STRING", q ? q + 1 : "");
	pair(stream, "REQUEST_METHOD", method);
	pair(stream, "CONTENT_TYPE", content_length > 0 ? "application/json" : "");
	pair(stream, "CONTENT_LENGTH", clen);
	pair(stream, "SCRIPT_NAME", path);
	pair(stream, "REQUEST_URI", uri);
	pair(stream, "DOCUMENT_URI", path);
	pair(stream, "SERVER_PROTOCOL", "HTTP/1.1");
	pair(stream, "HTTPS", "on");
	pair(stream, "REMOTE_ADDR", "127.0.0.1");
	pair(stream, "REQUEST_ID", "0123456789abcdef0123456789abcdef");
	pair(stream, "HTTP_HOST", "localhost");
	pair(stream, "HTTP_USER_AGENT", "check_fcgi_hostile");
}

/* The params stream as PARAMS records, then the empty one. */
static void params(struct bytes *out, unsigned id, const struct bytes *stream)
{
	for (size_t off = 0; off < stream->len; off += 65535) {
		size_t n = stream->len - off < 65535 ? stream->len - off : 65535;
		record(out, 1, PARAMS, id, stream->data + off, n, (8 - n % 8) % 8);
	}
	record(out, 1, PARAMS, id, NULL, 0, 0);
}

static void body(struct bytes *out, unsigned id, const void *data, size_t len, bool end)
{
	for (size_t off = 0; off < len; off += 65535)
		record(out, 1, STDIN, id, (const char *)data + off, len - off < 65535 ? len - off : 65535, 0);
	if (end)
		record(out, 1, STDIN, id, NULL, 0, 0);
}

/* A whole request of id: method, uri and an optional JSON body. */
static void request(struct bytes *out, unsigned id, const char *method, const char *uri,
    const char *json)
{
	struct bytes stream = { 0 };
	size_t len = json ? strlen(json) : 0;
	begin(out, id, RESPONDER);
	nginx_params(&stream, method, uri, len);
	params(out, id, &stream);
	body(out, id, json, len, true);
	free(stream.data);
}

/* --- Talking to the socket --- */

static int fcgi_connect(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof a.sun_path, "%s", test_env("TEST_GALA_SOCKET"));
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

/* Sends what the worker takes; false once it closed the connection. */
static bool send_bytes(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ck_assert_msg(errno == EPIPE || errno == ECONNRESET, "send: %s", strerror(errno));
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool send_all(int fd, const struct bytes *b)
{
	return send_bytes(fd, b->data, b->len);
}

/* What came back on a connection. */
struct reply {
	int status;              /* of the HTTP response on STDOUT, 0: none */
	int end_requests;
	unsigned end_id;         /* request id and protocol status of the last END_REQUEST */
	int protocol_status;
	int unknown_type;        /* the type an UNKNOWN_TYPE record names, 0: none */
	int get_values_results;
	bool closed;             /* the worker closed the connection */
	bool timed_out;
	long long ms;
};

static bool read_full(int fd, void *buf, size_t len, long long deadline, struct reply *r)
{
	char *p = buf;
	while (len > 0) {
		long long left = deadline - now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			r->timed_out = true;
			return false;
		}
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r->closed = true;
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Reads records for at most timeout_ms: up to `ends` END_REQUEST records,
 * or, with ends 0, until the worker closes the connection. */
static struct reply read_reply(int fd, int timeout_ms, int ends)
{
	struct reply r = { 0 };
	long long start = now_ms(), deadline = start + timeout_ms;
	unsigned char h[8], content[65535 + 255];
	while (ends == 0 || r.end_requests < ends) {
		if (!read_full(fd, h, sizeof h, deadline, &r))
			break;
		size_t len = (size_t)h[4] << 8 | h[5];
		if (!read_full(fd, content, len + h[6], deadline, &r))
			break;
		ck_assert_int_eq(h[0], 1);
		if (h[1] == STDOUT && len > 0 && r.status == 0 && len > 11 &&
		    memcmp(content, "Status: ", 8) == 0)
			r.status = atoi((const char *)content + 8);
		else if (h[1] == END_REQUEST) {
			r.end_requests++;
			r.end_id = (unsigned)h[2] << 8 | h[3];
			r.protocol_status = content[4];
		} else if (h[1] == UNKNOWN_TYPE)
			r.unknown_type = content[0];
		else if (h[1] == GET_VALUES_RESULT)
			r.get_values_results++;
	}
	r.ms = now_ms() - start;
	return r;
}

/* Sends a whole request on a new connection; its HTTP status, or 0. */
static int normal_request_status(int timeout_ms)
{
	int fd = fcgi_connect();
	struct bytes b = { 0 };
	request(&b, 1, "GET", "/api/health", NULL);
	send_all(fd, &b);
	struct reply r = read_reply(fd, timeout_ms, 1);
	free(b.data);
	close(fd);
	return r.end_requests == 1 ? r.status : 0;
}

/* The pool answers someone else at once. */
static void assert_pool_serves(void)
{
	long long start = now_ms();
	ck_assert_int_eq(normal_request_status(2000), 200);
	ck_assert_int_lt(now_ms() - start, 2000);
}

/* --- The pool before and after each case --- */

static char *pids_before;
static long rss_before_kb;
static int exits_before;

static int cmp_pid(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

/* The pool's workers, the master's live children: "pid pid ..." sorted. */
static char *worker_pids(void)
{
	char *s = stack_ctl_output("gala-master-pid");
	ck_assert_ptr_nonnull(s);
	long master = atol(s);
	free(s);
	long pids[256];
	size_t n = 0;
	DIR *d = opendir("/proc");
	ck_assert_ptr_nonnull(d);
	for (struct dirent *e; (e = readdir(d)) != NULL && n < 256;) {
		char path[300], stat[1024];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		FILE *f = e->d_name[0] >= '1' && e->d_name[0] <= '9' ? fopen(path, "r") : NULL;
		if (f == NULL)
			continue;
		size_t len = fread(stat, 1, sizeof stat - 1, f);
		fclose(f);
		stat[len] = '\0';
		/* "pid (comm) state ppid ...": comm may hold anything. */
		char *rest = strrchr(stat, ')'), state;
		long ppid;
		if (rest != NULL && sscanf(rest + 1, " %c %ld", &state, &ppid) == 2 &&
		    ppid == master && state != 'Z')
			pids[n++] = atol(e->d_name);
	}
	closedir(d);
	qsort(pids, n, sizeof *pids, cmp_pid);
	char *out = calloc(n + 1, 24);
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < n; i++)
		sprintf(out + strlen(out), "%s%ld", i ? " " : "", pids[i]);
	return out;
}

/* The largest resident size among the workers, in KiB. */
static long max_worker_rss_kb(const char *pids)
{
	long max = 0;
	for (const char *p = pids; *p != '\0';) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		char path[64], line[256];
		snprintf(path, sizeof path, "/proc/%ld/status", pid);
		FILE *f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		long kb = 0;
		while (fgets(line, sizeof line, f) != NULL)
			if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
				break;
		fclose(f);
		if (kb > max)
			max = kb;
		p = end;
	}
	return max;
}

/* The CPU time the workers used so far, in clock ticks. */
static long long workers_cpu_ticks(const char *pids)
{
	long long ticks = 0;
	for (const char *p = pids; *p != '\0';) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		char path[64], stat[1024];
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		FILE *f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		size_t len = fread(stat, 1, sizeof stat - 1, f);
		fclose(f);
		stat[len] = '\0';
		/* utime and stime: the 12th and 13th fields after "(comm)". */
		const char *q = strrchr(stat, ')');
		ck_assert_ptr_nonnull(q);
		long long utime, stime;
		ck_assert_int_eq(sscanf(q + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld",
		    &utime, &stime), 2);
		ticks += utime + stime;
		p = end;
	}
	return ticks;
}

/* Workers the master saw exit (a crash, or any other end). */
static int worker_exits(void)
{
	FILE *f = fopen(test_env("TEST_GALA_LOG"), "r");
	ck_assert_ptr_nonnull(f);
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (strstr(line, "\"message\":\"worker killed by signal\"") != NULL ||
		    strstr(line, "\"message\":\"worker exited") != NULL)
			n++;
	fclose(f);
	return n;
}

static void setup(void)
{
	for (int i = 0; i < 10; i++)
		assert_pool_serves();
	pids_before = worker_pids();
	ck_assert_str_ne(pids_before, "");
	rss_before_kb = max_worker_rss_kb(pids_before);
	exits_before = worker_exits();
}

static void teardown(void)
{
	assert_pool_serves();
	char *pids = worker_pids();
	ck_assert_str_eq(pids, pids_before);
	ck_assert_int_eq(worker_exits(), exits_before);
	long rss = max_worker_rss_kb(pids);
	ck_assert_msg(rss - rss_before_kb <= WORKER_RSS_BOUND_KB,
	    "a worker grew from %ld to %ld KiB", rss_before_kb, rss);
	/* No worker is left busy (a loop on a dead connection): the pool at
	 * rest uses no CPU. */
	long long ticks = workers_cpu_ticks(pids);
	usleep(500 * 1000);
	ck_assert_msg(workers_cpu_ticks(pids) - ticks <= sysconf(_SC_CLK_TCK) / 20,
	    "the workers used CPU at rest");
	free(pids);
	free(pids_before);
}

/* --- The cases --- */

START_TEST(bad_versions_close_the_connection)
{
	for (int version = 0; version < 256; version += 51) {
		if (version == 1)
			continue;
		int fd = fcgi_connect();
		struct bytes b = { 0 };
		unsigned char role[8] = { 0, RESPONDER, KEEP_CONN };
		record(&b, version, BEGIN_REQUEST, 1, role, sizeof role, 0);
		send_all(fd, &b);
		struct reply r = read_reply(fd, 2000, 0);
		ck_assert_msg(r.closed && r.end_requests == 0, "version %d was not refused", version);
		free(b.data);
		close(fd);
	}
}
END_TEST

START_TEST(unknown_and_management_types_are_answered)
{
	int fd = fcgi_connect();
	struct bytes b = { 0 };
	/* libfcgi wrote one entry per name into a 64-byte stack buffer. */
	struct bytes names = { 0 };
	for (int i = 0; i < 40; i++)
		pair(&names, "FCGI_MPXS_CONNS", "");
	record(&b, 1, GET_VALUES, 0, names.data, names.len, 0);
	record(&b, 1, 200, 0, "xxxxxxxx", 8, 0);
	send_all(fd, &b);
	struct reply r = read_reply(fd, 2000, 0);
	ck_assert(r.timed_out);
	ck_assert_int_eq(r.get_values_results, 1);
	ck_assert_int_eq(r.unknown_type, 200);

	/* The connection still serves a request; a record type that has no
	 * place in one ends the connection. */
	b.len = 0;
	request(&b, 1, "GET", "/api/health", NULL);
	send_all(fd, &b);
	r = read_reply(fd, 2000, 1);
	ck_assert_int_eq(r.status, 200);
	b.len = 0;
	begin(&b, 2, RESPONDER);
	record(&b, 1, STDOUT, 2, "hello", 5, 3);
	send_all(fd, &b);
	r = read_reply(fd, 2000, 0);
	ck_assert(r.closed && r.end_requests == 0);
	free(names.data);
	free(b.data);
	close(fd);
}
END_TEST

START_TEST(huge_lengths_are_bounded)
{
	/* A param that claims 2 GiB, then params past FCGI_PARAMS_MAX: the
	 * worker stops reading and closes, keeping nothing. */
	int fd = fcgi_connect();
	struct bytes b = { 0 }, stream = { 0 };
	begin(&b, 1, RESPONDER);
	length(&stream, 0x7fffffff);
	length(&stream, 0x7fffffff);
	put(&stream, "NAME", 4);
	record(&b, 1, PARAMS, 1, stream.data, stream.len, 0);
	record(&b, 1, PARAMS, 1, NULL, 0, 0);
	send_all(fd, &b);
	struct reply r = read_reply(fd, 2000, 0);
	ck_assert(r.closed && r.end_requests == 0);
	close(fd);

	fd = fcgi_connect();
	b.len = 0;
	begin(&b, 1, RESPONDER);
	char *big = calloc(1, 65535);
	ck_assert_ptr_nonnull(big);
	for (int i = 0; i < 64; i++)
		record(&b, 1, PARAMS, 1, big, 65535, 255);
	ck_assert(!send_all(fd, &b));
	r = read_reply(fd, 2000, 0);
	ck_assert(r.closed && r.end_requests == 0);
	close(fd);

	/* A CONTENT_LENGTH past the route's limit, and the body sent anyway:
	 * 413, the body dropped as it arrives. */
	fd = fcgi_connect();
	b.len = stream.len = 0;
	begin(&b, 1, RESPONDER);
	nginx_params(&stream, "POST", "/api/events", 4u << 20);
	params(&b, 1, &stream);
	char *payload = malloc(4u << 20);
	ck_assert_ptr_nonnull(payload);
	memset(payload, ' ', 4u << 20);
	body(&b, 1, payload, 4u << 20, true);
	ck_assert(send_all(fd, &b));
	r = read_reply(fd, 5000, 1);
	ck_assert_int_eq(r.status, 413);

	/* One that no integer holds. */
	b.len = stream.len = 0;
	begin(&b, 2, RESPONDER);
	pair(&stream, "REQUEST_METHOD", "POST");
	pair(&stream, "REQUEST_URI", "/api/events");
	pair(&stream, "CONTENT_TYPE", "application/json");
	pair(&stream, "CONTENT_LENGTH", "999999999999999999999999999999");
	params(&b, 2, &stream);
	body(&b, 2, "{}", 2, true);
	send_all(fd, &b);
	r = read_reply(fd, 2000, 1);
	ck_assert_int_eq(r.status, 413);
	free(payload);
	free(big);
	free(stream.data);
	free(b.data);
	close(fd);
}
END_TEST

START_TEST(truncated_params_close_the_connection)
{
	/* Each stream ends inside a name-value pair. */
	static const char *const cuts[] = {
		"\x05",                      /* a name length, no value length */
		"\x05\x01NAM",               /* a name cut short */
		"\x04\x05NAMEval",           /* a value cut short */
		"\x80\x00\x01",              /* a four-byte length cut short */
	};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		int fd = fcgi_connect();
		struct bytes b = { 0 };
		begin(&b, 1, RESPONDER);
		record(&b, 1, PARAMS, 1, cuts[i], strlen(cuts[i]), 0);
		record(&b, 1, PARAMS, 1, NULL, 0, 0);
		body(&b, 1, NULL, 0, true);
		send_all(fd, &b);
		struct reply r = read_reply(fd, 2000, 0);
		ck_assert_msg(r.closed && r.end_requests == 0, "cut %zu was not refused", i);
		free(b.data);
		close(fd);
	}
	/* The peer leaves in the middle of a record header. */
	int fd = fcgi_connect();
	ck_assert(send_bytes(fd, "\x01\x01\x00", 3));
	close(fd);
}
END_TEST

START_TEST(names_without_values)
{
	/* Empty values are params like any other. */
	int fd = fcgi_connect();
	struct bytes b = { 0 }, stream = { 0 };
	begin(&b, 1, RESPONDER);
	nginx_params(&stream, "GET", "/api/health", 0);
	pair(&stream, "HTTP_X_EMPTY", "");
	pair(&stream, "HTTP_COOKIE", "");
	pair(&stream, "HTTP_AUTHORIZATION", "");
	params(&b, 1, &stream);
	body(&b, 1, NULL, 0, true);
	send_all(fd, &b);
	struct reply r = read_reply(fd, 2000, 1);
	ck_assert_int_eq(r.status, 200);
	close(fd);

	/* An empty name, or one holding '=', is not. */
	static const char *const names[] = { "", "A=B" };
	for (size_t i = 0; i < 2; i++) {
		fd = fcgi_connect();
		b.len = stream.len = 0;
		begin(&b, 1, RESPONDER);
		nginx_params(&stream, "GET", "/api/health", 0);
		pair(&stream, names[i], "value");
		params(&b, 1, &stream);
		body(&b, 1, NULL, 0, true);
		send_all(fd, &b);
		r = read_reply(fd, 2000, 0);
		ck_assert_msg(r.closed && r.end_requests == 0, "name \"%s\" was taken", names[i]);
		close(fd);
	}
	free(stream.data);
	free(b.data);
}
END_TEST

START_TEST(ten_thousand_params)
{
	int fd = fcgi_connect();
	struct bytes b = { 0 }, stream = { 0 };
	begin(&b, 1, RESPONDER);
	nginx_params(&stream, "GET", "/api/health", 0);
	for (int i = 0; i < 10000; i++) {
		char name[32];
		snprintf(name, sizeof name, "HTTP_X_HEADER_%d", i);
		pair(&stream, name, "v");
	}
	params(&b, 1, &stream);
	body(&b, 1, NULL, 0, true);
	send_all(fd, &b);
	struct reply r = read_reply(fd, 3000, 1);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_lt(r.ms, 1000);
	free(stream.data);
	free(b.data);
	close(fd);
}
END_TEST

START_TEST(second_begin_request_on_one_connection)
{
	/* Another id while one is in progress: refused as multiplexing, and
	 * the first request goes on. */
	int fd = fcgi_connect();
	struct bytes b = { 0 }, stream = { 0 };
	begin(&b, 1, RESPONDER);
	begin(&b, 2, RESPONDER);
	send_all(fd, &b);
	struct reply r = read_reply(fd, 2000, 1);
	ck_assert_int_eq(r.end_requests, 1);
	ck_assert_uint_eq(r.end_id, 2);
	ck_assert_int_eq(r.protocol_status, CANT_MPX_CONN);
	b.len = 0;
	nginx_params(&stream, "GET", "/api/health", 0);
	params(&b, 1, &stream);
	body(&b, 1, NULL, 0, true);
	send_all(fd, &b);
	r = read_reply(fd, 2000, 1);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.end_id, 1);

	/* A role other than the responder's is refused the same way. */
	b.len = 0;
	begin(&b, 3, 2);
	send_all(fd, &b);
	r = read_reply(fd, 2000, 1);
	ck_assert_uint_eq(r.end_id, 3);
	ck_assert_int_eq(r.protocol_status, UNKNOWN_ROLE);

	/* The same id again is a broken peer. */
	b.len = 0;
	begin(&b, 4, RESPONDER);
	begin(&b, 4, RESPONDER);
	send_all(fd, &b);
	r = read_reply(fd, 2000, 0);
	ck_assert(r.closed && r.end_requests == 0);
	free(stream.data);
	free(b.data);
	close(fd);
}
END_TEST

/* Requests sent back to back in one write: a read may take more than the
 * first, and the rest is answered without the peer sending anything more,
 * even when it hung up behind them. */
START_TEST(requests_sent_back_to_back)
{
	for (int hang_up = 0; hang_up < 2; hang_up++) {
		int fd = fcgi_connect();
		struct bytes b = { 0 };
		request(&b, 1, "GET", "/api/health", NULL);
		request(&b, 2, "GET", "/api/nothing-here", NULL);
		request(&b, 3, "GET", "/api/health", NULL);
		send_all(fd, &b);
		if (hang_up)
			shutdown(fd, SHUT_WR);
		struct reply r = read_reply(fd, 2000, 3);
		ck_assert_int_eq(r.end_requests, 3);
		ck_assert_uint_eq(r.end_id, 3);
		ck_assert_int_eq(r.status, 200);
		free(b.data);
		close(fd);
	}
}
END_TEST

START_TEST(abort_mid_body)
{
	/* ABORT_REQUEST halfway through the body: END_REQUEST and no answer,
	 * and the connection serves the next request. */
	int fd = fcgi_connect();
	struct bytes b = { 0 }, stream = { 0 };
	begin(&b, 1, RESPONDER);
	nginx_params(&stream, "POST", "/api/auth/login", 100);
	params(&b, 1, &stream);
	body(&b, 1, "{\"email\":", 9, false);
	record(&b, 1, ABORT_REQUEST, 1, NULL, 0, 0);
	send_all(fd, &b);
	struct reply r = read_reply(fd, 2000, 1);
	ck_assert_int_eq(r.end_requests, 1);
	ck_assert_int_eq(r.status, 0);
	b.len = 0;
	request(&b, 2, "GET", "/api/health", NULL);
	send_all(fd, &b);
	r = read_reply(fd, 2000, 1);
	ck_assert_int_eq(r.status, 200);
	close(fd);

	/* The peer hangs up halfway through the body: nothing to answer. */
	fd = fcgi_connect();
	b.len = 0;
	begin(&b, 1, RESPONDER);
	params(&b, 1, &stream);
	body(&b, 1, "{\"email\":", 9, false);
	send_all(fd, &b);
	close(fd);
	free(stream.data);
	free(b.data);
}
END_TEST

/* Sends b a byte at a time, every gap_ms, while the pool answers others;
 * returns when the worker closes the connection (or the bytes run out). */
static struct reply send_slowly(const struct bytes *b, int gap_ms)
{
	int fd = fcgi_connect();
	long long start = now_ms(), next_check = start;
	struct reply r = { 0 };
	for (size_t i = 0; i < b->len && !r.closed; i++) {
		if (!send_bytes(fd, b->data + i, 1)) {
			r.closed = true;
			break;
		}
		if (now_ms() >= next_check) {
			assert_pool_serves();
			next_check = now_ms() + 1000;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, gap_ms) > 0) {
			char c;
			r.closed = recv(fd, &c, 1, MSG_PEEK) <= 0;
		}
	}
	r.ms = now_ms() - start;
	close(fd);
	return r;
}

/* nginx's kept connections spread over the pool: one opened while every
 * worker sleeps goes to a worker holding none, so a request on it is
 * answered while the worker holding the first is stuck in a request (in
 * production a release waiting on Stripe; here a peer that stops after
 * its BEGIN_REQUEST). Were the second connection left to whichever worker
 * wakes first, it would land on the stuck one about once in three. */
START_TEST(kept_connections_spread_over_the_pool)
{
	struct bytes health = { 0 }, stuck = { 0 };
	request(&health, 1, "GET", "/api/health", NULL);
	begin(&stuck, 1, RESPONDER);
	for (int round = 0; round < 6; round++) {
		int first = fcgi_connect();
		send_all(first, &health);
		ck_assert_int_eq(read_reply(first, 2000, 1).status, 200);
		usleep(50000);
		int second = fcgi_connect();
		send_all(second, &health);
		ck_assert_int_eq(read_reply(second, 2000, 1).status, 200);
		send_all(first, &stuck);
		usleep(50000);
		send_all(second, &health);
		ck_assert_msg(read_reply(second, 2000, 1).status == 200,
		    "round %d: the second connection waited for the first one's worker", round);
		close(first);
		close(second);
	}
	free(health.data);
	free(stuck.data);
}
END_TEST

START_TEST(slow_senders_are_cut_off)
{
	/* A request a byte every 50 ms (about 30 s in all): the worker gives
	 * up after IO_TIMEOUT_MS, and the others answer all the while. */
	struct bytes b = { 0 };
	request(&b, 1, "GET", "/api/health", NULL);
	ck_assert_int_gt(b.len * 50, 3 * IO_TIMEOUT_MS);
	struct reply r = send_slowly(&b, 50);
	ck_assert(r.closed);
	ck_assert_int_ge(r.ms, IO_TIMEOUT_MS - 500);
	ck_assert_int_le(r.ms, IO_TIMEOUT_MS + 2000);

	/* One that stops after its BEGIN_REQUEST. */
	int fd = fcgi_connect();
	b.len = 0;
	begin(&b, 1, RESPONDER);
	send_all(fd, &b);
	assert_pool_serves();
	r = read_reply(fd, IO_TIMEOUT_MS + 2000, 0);
	ck_assert(r.closed);
	close(fd);

	/* Between requests a kept connection may stay idle as long as it likes. */
	fd = fcgi_connect();
	b.len = 0;
	request(&b, 1, "GET", "/api/health", NULL);
	send_all(fd, &b);
	ck_assert_int_eq(read_reply(fd, 2000, 1).status, 200);
	r = read_reply(fd, IO_TIMEOUT_MS + 1000, 0);
	ck_assert(r.timed_out);
	send_all(fd, &b);
	ck_assert_int_eq(read_reply(fd, 2000, 1).status, 200);
	free(b.data);
	close(fd);
}
END_TEST

START_TEST(a_client_that_never_reads)
{
	/* Requests sent as fast as the worker takes them, the answers never
	 * read: once the socket's buffers are full, the worker's write waits
	 * IO_TIMEOUT_MS at most, then it drops the connection. */
	int fd = fcgi_connect();
	struct bytes b = { 0 };
	for (unsigned id = 1; id <= 4000; id++)
		request(&b, id, "GET", "/api/no-such-route", NULL);
	size_t sent = 0;
	for (int i = 0; i < 50 && sent < b.len; i++) {
		ssize_t n = send(fd, b.data + sent, b.len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			sent += (size_t)n;
		else
			usleep(20000);
	}
	ck_assert_int_lt(sent, b.len);
	assert_pool_serves();
	sleep(IO_TIMEOUT_MS / 1000 + 2);
	assert_pool_serves();
	/* The answers written before the worker gave up, then the end. */
	struct reply r = read_reply(fd, 10000, 0);
	ck_assert(r.closed);
	ck_assert_int_gt(r.end_requests, 0);
	ck_assert_int_lt(r.end_requests, 4000);
	free(b.data);
	close(fd);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("fcgi_hostile");
	TCase *tc = tcase_create("hostile peer");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, bad_versions_close_the_connection);
	tcase_add_test(tc, unknown_and_management_types_are_answered);
	tcase_add_test(tc, huge_lengths_are_bounded);
	tcase_add_test(tc, truncated_params_close_the_connection);
	tcase_add_test(tc, names_without_values);
	tcase_add_test(tc, ten_thousand_params);
	tcase_add_test(tc, second_begin_request_on_one_connection);
	tcase_add_test(tc, requests_sent_back_to_back);
	tcase_add_test(tc, abort_mid_body);
	tcase_add_test(tc, kept_connections_spread_over_the_pool);
	tcase_add_test(tc, slow_senders_are_cut_off);
	tcase_add_test(tc, a_client_that_never_reads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(suite());
}
