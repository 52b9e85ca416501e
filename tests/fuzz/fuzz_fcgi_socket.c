/* The worker's own reads and writes on a connection (fcgi_read,
 * fcgi_write_response, fcgi_end_request in server/fcgi.c): the input is
 * what nginx sent on a socket, then the end of its stream; the requests it
 * yields go through the rest of the worker's reading (fcgi_request.h). The
 * reads end with the input, and nothing waits: the input is all there,
 * and nginx's side takes every record the worker writes. */
#include "autoconf.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/fcgi.h"

#include "fcgi_request.h"
#include "fuzz.h"

/* nginx's ends of the connections that are not closed yet, at most: its
 * side runs behind the worker's and this bounds its open descriptors. */
#define PEER_BACKLOG 64

/* nginx's side of every connection: one thread for the whole run (a thread
 * an input costs more than the input), which reads what the worker writes
 * as it comes, so that replies never fill a socket, and closes its end
 * once the worker closed its own. The worker's side never waits for it. */
static int peer_epoll = -1;
static sem_t peer_slots;

static void *peer_reads(void *arg)
{
	(void)arg;
	char sink[65536];
	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(peer_epoll, ev, 16, -1);
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			ssize_t got;
			while ((got = read(fd, sink, sizeof sink)) > 0)
				;
			if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(fd);
				sem_post(&peer_slots);
			}
		}
	}
	return NULL;
}

/* Hands nginx's end fd to the peer thread (started by the first call). */
static void peer_take(int fd)
{
	if (peer_epoll < 0) {
		peer_epoll = epoll_create1(EPOLL_CLOEXEC);
		FUZZ_ASSERT(peer_epoll >= 0 && sem_init(&peer_slots, 0, PEER_BACKLOG) == 0);
		pthread_t peer;
		FUZZ_ASSERT(pthread_create(&peer, NULL, peer_reads, NULL) == 0);
	}
	while (sem_wait(&peer_slots) != 0)
		FUZZ_ASSERT(errno == EINTR);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	FUZZ_ASSERT(epoll_ctl(peer_epoll, EPOLL_CTL_ADD, fd, &ev) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		size = 65536;
	arena_t *a = fuzz_arena();
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
	peer_take(sv[1]);
	/* No deadline: a wait would be a hang, which libFuzzer's -timeout
	 * reports (and the replay's limit in make check), while a deadline
	 * would also end a run paused (SIGSTOP) or starved of CPU. */
	const long long deadline = LLONG_MAX;
	struct fcgi_parser p;
	struct fcgi_carry carry = { 0 };
	fcgi_parser_init(&p, a);
	size_t expected = 0;
	for (int requests = 0; requests < 64; requests++) {
		if (fcgi_read(sv[0], &p, &carry, deadline) == FCGI_PARAMS_DONE) {
			expected = fuzz_fcgi_params(a, &p);
			fcgi_expect_body(&p, expected);
			fcgi_read(sv[0], &p, &carry, deadline);
		}
		if (p.state == FCGI_REQUEST_DONE)
			fcgi_write_response(sv[0], p.request_id, p.body, p.body_len, deadline);
		else if (p.state == FCGI_ABORTED)
			fcgi_end_request(sv[0], p.request_id, deadline);
		else
			break;
		fuzz_fcgi_request_done(a, &p, expected);
	}
	/* The reads end with the input. */
	FUZZ_ASSERT(p.state == FCGI_FAILED || p.state == FCGI_IDLE);
	fcgi_carry_free(&carry);
	close(sv[0]);
	return 0;
}
