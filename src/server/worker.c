#include "autoconf.h"

#include "server/worker.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "clients/stripe.h"
#include "db/db.h"
#include "http/json.h"
#include "http/pipeline.h"
#include "http/request.h"
#include "http/response.h"
#include "core/clock.h"
#include "server/fcgi.h"

#define WORKER_ARENA_CHUNK ((size_t)64 * 1024)
/* What one request may take from the arena (bodies, parsed JSON, rows,
 * the response); past it the request is answered 503 (http/pipeline.h).
 * Far above what any request of the API needs. */
#define WORKER_ARENA_CAP ((size_t)64 * 1024 * 1024)
#define RESPONSE_MAX_BYTES ((size_t)16 * 1024 * 1024)

static volatile sig_atomic_t worker_stop;

static void worker_on_term(int sig)
{
	(void)sig;
	worker_stop = 1;
}

/* SIGTERM stays blocked except while the worker waits for a connection, so
 * a request in flight always finishes before the worker exits. */
static void worker_signals(sigset_t *wait_mask)
{
	struct sigaction sa = { .sa_handler = worker_on_term };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);

	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_SETMASK, &block, NULL);
	sigemptyset(wait_mask);
}

/* nginx keeps FastCGI connections open (fastcgi_keep_conn) and may send
 * the next request on any of them at any moment, so a worker never closes
 * one nginx still holds: it keeps every connection it accepted and serves
 * whichever has a request, while it goes on accepting new ones. A worker
 * sitting on an idle kept connection therefore never starves a connection
 * nginx opened elsewhere, and nginx never writes a request into a
 * connection being closed under it. A worker holding WORKER_MAX_CONNS
 * stops accepting (other workers take the new ones) until nginx closes
 * some: nginx keeps only its keepalive pool idle.
 *
 * Requests are served in the order the worker first saw them waiting,
 * counting a connection in the listen queue as one: the listen queue only
 * holds a connection while every worker is busy, and serving kept
 * connections first would leave it there for as long as the load lasts
 * (seen as p99 in the hundreds of milliseconds).
 *
 * A request nginx sends on a connection this worker holds waits while the
 * worker serves another (a release waiting on Stripe: seen as nginx's 504
 * for the second of two concurrent requests). So that nginx's kept
 * connections spread over the pool, a worker holding connections leaves a
 * new one to a worker holding fewer that has slept for want of work for
 * WORKER_ACCEPT_IDLE_MS (the scoreboard says), for up to
 * WORKER_ACCEPT_DEFER_MS; then it takes it itself, should that worker be
 * slow to. Under load workers sleep only between requests, for less, and
 * nothing is left: waking another worker for a connection this one could
 * serve now costs a context switch and the wait for a core. */
#define WORKER_MAX_CONNS 64
#define WORKER_ACCEPT_DEFER_MS 10
#define WORKER_ACCEPT_IDLE_MS 2

struct held_conn {
	int fd;                           /* -1: a free slot */
	long long last_used_ms;
	unsigned long long ready_round;   /* poll round it was first seen ready; 0: not */
	struct fcgi_carry carry;          /* read past its last request: ready too */
};

/* Worker-owned: the poll round, when the listen queue was first seen
 * non-empty (0: not since the last accept), and since when a connection
 * waiting there is left to a worker holding fewer (0: none is). */
static unsigned long long worker_round;
static unsigned long long worker_listen_round;
static long long worker_deferred_ms;

static void held_conn_close(struct held_conn *c)
{
	close(c->fd);
	c->fd = -1;
	c->ready_round = 0;
	fcgi_carry_free(&c->carry);
}

static int free_conn(const struct held_conn *conns)
{
	for (int i = 0; i < WORKER_MAX_CONNS; i++)
		if (conns[i].fd < 0)
			return i;
	return -1;
}

/* Accepts a waiting connection into slot; the slot, or -1 (another worker
 * took it). */
static int worker_accept(struct held_conn *conns, int slot, int listen_fd)
{
	worker_listen_round = 0;
	worker_deferred_ms = 0;
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return -1;
	conns[slot].fd = fd;
	return slot;
}

/* Whether to leave the connection waiting in the listen queue to another
 * worker now (see WORKER_ACCEPT_DEFER_MS); starts the wait. Once it is
 * over, the connection is this worker's. */
static bool accept_deferred(const struct scoreboard *board, const struct worker_slot *self,
    int held)
{
	long long now = clock_ms();
	if (held == 0 || (worker_deferred_ms != 0 &&
	    now - worker_deferred_ms >= WORKER_ACCEPT_DEFER_MS) ||
	    !scoreboard_idle_worker_holds_fewer(board, self, held, now - WORKER_ACCEPT_IDLE_MS))
		return false;
	if (worker_deferred_ms == 0)
		worker_deferred_ms = now;
	return true;
}

/* Waits for a request and returns the index of the connection that has
 * one, or -1 to look again (signal, timeout, lost accept race). A draining
 * worker accepts nothing new and wakes up every timeout_ms. The idle
 * database connection is watched in the same wait (db_idle_socket), so
 * that a server's goodbye is noticed there, not by one more poll before
 * each request's first statement. */
static int worker_pick(struct held_conn *conns, int listen_fd, const sigset_t *wait_mask,
    bool draining, int timeout_ms, const struct scoreboard *board, struct worker_slot *self)
{
	struct pollfd pfd[WORKER_MAX_CONNS + 2];
	int which[WORKER_MAX_CONNS];
	int n = 0;
	bool carried = false;
	for (int i = 0; i < WORKER_MAX_CONNS; i++) {
		if (conns[i].fd < 0)
			continue;
		pfd[n] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN | POLLRDHUP };
		which[n++] = i;
		carried |= conns[i].carry.len > 0;
	}
	self->conns = n;
	int slot = draining ? -1 : free_conn(conns);
	/* While a connection is left to another worker, the listen queue is
	 * looked at again once the wait is over. */
	bool deferring = slot >= 0 && worker_deferred_ms != 0 && accept_deferred(board, self, n);
	if (deferring) {
		int left = (int)(worker_deferred_ms + WORKER_ACCEPT_DEFER_MS - clock_ms()) + 1;
		if (timeout_ms < 0 || left < timeout_ms)
			timeout_ms = left;
		slot = -1;
	}
	int nfds = n;
	if (slot >= 0)
		pfd[nfds++] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
	int db_fd = db_idle_socket();
	if (db_fd >= 0)
		pfd[nfds++] = (struct pollfd){ .fd = db_fd, .events = POLLIN };
	/* Access lines wait in the log's batch while requests are waiting
	 * too; they are written before the worker sleeps. */
	const struct timespec now = { 0, 0 };
	int ready = log_pending() || carried ? ppoll(pfd, (nfds_t)nfds, &now, wait_mask) : 0;
	if (ready == 0 && carried)
		ready = 1;
	if (ready == 0) {
		log_flush();
		struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
		self->asleep_since_ms = clock_ms();
		ready = ppoll(pfd, (nfds_t)nfds, timeout_ms >= 0 ? &ts : NULL, wait_mask);
	}
	if (ready <= 0)
		return -1;
	if (db_fd >= 0)
		db_idle_seen(pfd[nfds - 1].revents != 0);
	worker_round++;
	int best = -1;
	for (int k = 0; k < n; k++) {
		struct held_conn *c = &conns[which[k]];
		/* What was read past its last request is served before a
		 * hangup is believed. A peer that only stopped sending
		 * (POLLRDHUP) may have sent requests before: the read finds
		 * them, or the end, and closes the connection then. */
		if (c->carry.len > 0)
			pfd[k].revents = POLLIN;
		if (pfd[k].revents & (POLLHUP | POLLERR)) {
			/* Gone both ways (nginx let the connection go: its
			 * keepalive pool is full, or it timed out): nobody is
			 * left to answer. */
			held_conn_close(c);
			continue;
		}
		if (pfd[k].revents == 0)
			continue;
		if (c->ready_round == 0)
			c->ready_round = worker_round;
		if (best < 0 || c->ready_round < conns[best].ready_round ||
		    (c->ready_round == conns[best].ready_round &&
		    c->last_used_ms < conns[best].last_used_ms))
			best = which[k];
	}
	bool listen_ready = slot >= 0 && pfd[n].revents != 0;
	if (listen_ready && worker_listen_round == 0)
		worker_listen_round = worker_round;
	if (!listen_ready && !deferring) {
		worker_listen_round = 0;
		worker_deferred_ms = 0;
	}
	if (listen_ready && (best < 0 || worker_listen_round <= conns[best].ready_round) &&
	    !accept_deferred(board, self, n))
		return worker_accept(conns, slot, listen_fd);
	if (best >= 0)
		conns[best].ready_round = 0;
	return best;
}

/* worker_pick, with the worker shown asleep until it has taken work, not
 * only until it wakes: woken by a new connection, it is still the idle
 * worker holding fewer while it goes to accept, so that a worker holding
 * more, woken by the same connection, leaves it alone. Cleared on waking,
 * the mark let the other race it to accept4 and win about once in seventy
 * (kept_connections_spread_over_the_pool under a parallel make check). */
static int worker_wait(struct held_conn *conns, int listen_fd, const sigset_t *wait_mask,
    bool draining, int timeout_ms, const struct scoreboard *board, struct worker_slot *self)
{
	int idx = worker_pick(conns, listen_fd, wait_mask, draining, timeout_ms, board, self);
	self->asleep_since_ms = 0;
	return idx;
}

/* A worker leaving (SIGTERM, recycling) keeps serving the connections it
 * holds until nginx has left them all alone for WORKER_DRAIN_IDLE_MS (or
 * WORKER_DRAIN_MAX_MS passed): closing one nginx is about to reuse would
 * fail that request, and nginx does not retry a POST. */
#define WORKER_DRAIN_IDLE_MS 1000
#define WORKER_DRAIN_MAX_MS 10000

static bool worker_drained(const struct held_conn *conns, long long now, long long since)
{
	if (now - since > WORKER_DRAIN_MAX_MS)
		return true;
	for (int i = 0; i < WORKER_MAX_CONNS; i++)
		if (conns[i].fd >= 0 && now - conns[i].last_used_ms < WORKER_DRAIN_IDLE_MS)
			return false;
	return true;
}

static void access_log(const struct request *req)
{
	static struct log_line worker_access_line;
	enum log_level lvl = req->resp.status >= 500 ? LOG_LEVEL_ERROR : LOG_LEVEL_INFO;
	log_line_begin(&worker_access_line, lvl, "gala.access", "request");
	log_line_str(&worker_access_line, "request_id", req->request_id);
	log_line_str(&worker_access_line, "method", req->method);
	log_line_str(&worker_access_line, "path", req->path);
	log_line_int(&worker_access_line, "status_code", req->resp.status);
	log_line_centi(&worker_access_line, "duration_ms", (clock_us() - req->started_us) / 10);
	log_line_str(&worker_access_line, "client_ip", req->client_ip);
	log_line_str(&worker_access_line, "user_id", req->cx.log_user_id);
	log_line_end(&worker_access_line);
}

/* How long a peer may take to send a whole request, and to take its
 * response: nginx sends a request it has buffered at once and reads the
 * response as it comes, so only a broken or hostile peer is cut off. */
#define WORKER_IO_TIMEOUT_MS 5000

/* Reads the request waiting on c: the params, then the body unless the
 * route takes less than CONTENT_LENGTH (then the pipeline answers 413 and
 * the body is dropped as it arrives). Returns FCGI_REQUEST_DONE with *req
 * ready, or the state that ended it. */
static enum fcgi_state worker_read(struct held_conn *c, struct fcgi_parser *p,
    struct request *req, const struct route *table, size_t nroutes)
{
	long long deadline = clock_ms() + WORKER_IO_TIMEOUT_MS;
	if (fcgi_read(c->fd, p, &c->carry, deadline) != FCGI_PARAMS_DONE)
		return p->state;
	request_init(req, p->arena, p->envp, NULL, 0);
	pipeline_route(req, table, nroutes);
	const char *cl = request_header(req, "Content-Length");
	long long clen = cl && *cl ? strtoll(cl, NULL, 10) : 0;
	req->body_too_large = clen > 0 && (unsigned long long)clen > pipeline_body_limit(req);
	size_t expected = clen > 0 && !req->body_too_large ? (size_t)clen : 0;
	fcgi_expect_body(p, expected);
	if (fcgi_read(c->fd, p, &c->carry, deadline) != FCGI_REQUEST_DONE)
		return p->state;
	if (expected > 0) {
		req->body = p->body;
		req->body_len = p->body_len;
	}
	if (p->body_len != expected)
		http_respond_error(req, GE_BAD_REQUEST, NULL, "the request body was cut short");
	return FCGI_REQUEST_DONE;
}

/* Serves the request waiting on c, if one is; closes c when its peer
 * broke the protocol, was too slow, or did not ask to keep it. Returns
 * true when a request was answered. */
static bool worker_serve(struct held_conn *c, arena_t *arena, struct worker_slot *slot,
    const struct route *table, size_t nroutes)
{
	struct fcgi_parser p;
	struct request req = { 0 };
	fcgi_parser_init(&p, arena);
	enum fcgi_state st = worker_read(c, &p, &req, table, nroutes);
	if (st == FCGI_IDLE)
		return false;
	if (st == FCGI_ABORTED) {
		if (fcgi_end_request(c->fd, p.request_id, clock_ms() + WORKER_IO_TIMEOUT_MS) != 0 ||
		    !p.keep_conn)
			held_conn_close(c);
		return false;
	}
	if (st != FCGI_REQUEST_DONE) {
		if (p.error != NULL)
			log_warn("gala.worker", "FastCGI connection dropped: %s", p.error);
		held_conn_close(c);
		return false;
	}

	slot->busy_since_ms = clock_ms();
	log_set_request_id(req.request_id);
	snprintf(slot->route, sizeof slot->route, "%s %s", req.method, req.path);
	if (req.resp.status == 0)          /* else the body was cut short */
		pipeline_run(&req, table, nroutes);
	db_request_done();
	slot->busy_since_ms = 0;

	buf_t out;
	buf_init(&out, RESPONSE_MAX_BYTES);
	if (response_serialize(&req, &out) != 0) {
		buf_clear(&out);
		req.resp = (struct response){ 0 };
		http_respond_error(&req, GE_INTERNAL, NULL, NULL);
		response_serialize(&req, &out);
	}
	if (fcgi_write_response(c->fd, p.request_id, out.data, out.len,
		clock_ms() + WORKER_IO_TIMEOUT_MS) != 0) {
		log_warn("gala.worker", "FastCGI connection dropped: the response could not be sent");
		held_conn_close(c);
	} else if (!p.keep_conn) {
		held_conn_close(c);
	}
	buf_free(&out);
	metrics_observe_request(req.route != NULL ? (unsigned)(req.route - table) :
	    METRICS_ROUTE_UNMATCHED, req.resp.status, clock_us() - req.started_us);
	access_log(&req);
	log_set_request_id(NULL);
	if (req.abandoned) {
		/* It may have left a client's handles or malloc'd memory behind:
		 * a fresh worker takes over. */
		worker_stop = 1;
	}
	return true;
}

int worker_run(int listen_fd, const struct scoreboard *board, struct worker_slot *slot,
    const struct route *table, size_t nroutes)
{
	sigset_t wait_mask;
	worker_signals(&wait_mask);
	const struct config *cfg = gala_config;
	if (db_configure(cfg->database_url, cfg->db_pool_timeout, cfg->db_prepared_statements) != 0) {
		log_error("gala.worker", "out of memory while configuring the database");
		return 1;
	}
	/* Work an idempotent request holds is committed before money moves. */
	stripe_set_before_send(db_commit_held);

	static struct held_conn conns[WORKER_MAX_CONNS];
	for (int i = 0; i < WORKER_MAX_CONNS; i++)
		conns[i].fd = -1;
	arena_t *arena = arena_new(WORKER_ARENA_CHUNK);
	arena_set_cap(arena, WORKER_ARENA_CAP);
	json_alloc_in(arena);
	unsigned long long served = 0;
	log_batch(true);
	slot->ready = 1;

	bool draining = false;
	long long drain_since = 0;
	for (;;) {
		bool recycle = cfg->max_requests_per_worker > 0 &&
		    served >= (unsigned long long)cfg->max_requests_per_worker;
		if (!draining && (worker_stop || recycle)) {
			if (recycle)
				log_info("gala.worker", "recycling after %llu requests", served);
			draining = true;
			drain_since = clock_ms();
			/* The master starts the replacement now. */
			slot->draining = 1;
		}
		if (draining && worker_drained(conns, clock_ms(), drain_since))
			break;
		int idx = worker_wait(conns, listen_fd, &wait_mask, draining,
		    draining ? WORKER_DRAIN_IDLE_MS / 4 : -1, board, slot);
		if (idx < 0)
			continue;
		conns[idx].last_used_ms = clock_ms();
		if (worker_serve(&conns[idx], arena, slot, table, nroutes)) {
			slot->requests++;
			served++;
		}
		arena_reset(arena);
	}
	for (int i = 0; i < WORKER_MAX_CONNS; i++)
		if (conns[i].fd >= 0)
			held_conn_close(&conns[i]);
	arena_free(arena);
	json_alloc_in(NULL);
	log_batch(false);
	db_disconnect();
	db_configure(NULL, 0, false);
	return 0;
}
