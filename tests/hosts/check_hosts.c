/* Two app hosts behind one load balancer (issue 13, part 3; README,
 * Scaling out), built by tests/hosts/run: each host is a network namespace
 * with its own nginx and gala pool, the front nginx balances over both, and
 * one Postgres sits behind PgBouncer. Every promise is counted exactly:
 *   a. the write rate limit is one bucket for both hosts;
 *   b. one Idempotency-Key sent to both hosts at once runs once;
 *   c. fifty releases of one booking spread over both hosts: one transfer;
 *   d. a host's pool killed with SIGKILL mid-load: the balancer moves to the
 *      other host, every GET succeeds, no POST runs twice;
 *   e. a rolling restart of both hosts (reload, then stop and start with a
 *      new binary, one host at a time) fails no request.
 * Every load loop is bounded in count and in time. */
#include "autoconf.h"

#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "e2e/market_fixtures.h"
#include "e2e/money_fixtures.h"
#include "testlib.h"

/* The write limit both pools run with (pools-set): a burst of LIMIT, then
 * one request a minute, so the burst of test a is counted exactly. */
#define LIMIT 60
#define LIMIT_WINDOW_SECONDS 3600

/* ------------------------------------------------------------ helpers */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "$TEST_HOSTS_CTL ARGS" in cmd (getenv: main() runs it before any test). */
static void hosts_command(char *cmd, size_t len, const char *fmt, va_list ap)
{
	char args[1024];
	vsnprintf(args, sizeof args, fmt, ap);
	const char *ctl = getenv("TEST_HOSTS_CTL");
	snprintf(cmd, len, "%s %s", ctl ? ctl : "false", args);
}

/* Runs "$TEST_HOSTS_CTL ARGS"; returns its exit status. */
static int hosts_ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int hosts_ctl(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	hosts_command(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* The first line "$TEST_HOSTS_CTL ARGS" prints (malloc'd), or NULL when it
 * failed. */
static char *hosts_ctl_output(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *hosts_ctl_output(const char *fmt, ...)
{
	char cmd[2048], line[1024] = "";
	va_list ap;
	va_start(ap, fmt);
	hosts_command(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return NULL;
	bool got = fgets(line, sizeof line, p) != NULL;
	int rc = pclose(p);
	if (!got || rc != 0)
		return NULL;
	line[strcspn(line, "\n")] = '\0';
	return strdup(line);
}

/* What one request got. */
struct answer {
	long status;            /* 0: no HTTP answer at all */
	int host;               /* the host that answered: 1, 2, or 0 (none) */
	bool replayed;          /* Idempotent-Replayed: true */
	char code[64];          /* error.code, or "" */
	char *body;
};

struct headers {
	int host;
	bool replayed;
};

/* The host an "X-Gala-Host: addr:port[, addr:port]" names: the last tried. */
static int host_named(const char *value)
{
	const char *last = strrchr(value, ',');
	last = last ? last + 1 : value;
	while (*last == ' ')
		last++;
	for (int n = 1; n <= 2; n++) {
		char var[32];
		snprintf(var, sizeof var, "TEST_HOST%d_ADDR", n);
		const char *addr = test_env(var);
		size_t len = strlen(addr);
		if (strncmp(last, addr, len) == 0 && last[len] == ':')
			return n;
	}
	return 0;
}

static size_t on_header(char *line, size_t size, size_t n, void *ud)
{
	struct headers *h = ud;
	size_t len = size * n;
	char copy[256];
	if (len >= sizeof copy)
		return len;
	memcpy(copy, line, len);
	copy[len] = '\0';
	copy[strcspn(copy, "\r\n")] = '\0';
	if (strncasecmp(copy, "X-Gala-Host:", 12) == 0)
		h->host = host_named(copy + 12);
	else if (strncasecmp(copy, "Idempotent-Replayed: true", 25) == 0)
		h->replayed = true;
	return len;
}

struct grow {
	char *data;
	size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct grow *g = ud;
	size_t len = size * n;
	char *d = realloc(g->data, g->len + len + 1);
	if (d == NULL)
		return 0;
	memcpy(d + g->len, p, len);
	g->len += len;
	d[g->len] = '\0';
	g->data = d;
	return len;
}

/* One request on a fresh connection, through the front (host 0) or
 * straight to host 1 or 2's nginx. key: an Idempotency-Key, or NULL. */
static void call(int host, const char *method, const char *path, const char *token,
    const char *key, const char *body, struct answer *a)
{
	memset(a, 0, sizeof *a);
	char url[512], resolve[128], auth[1200], idem[300];
	struct curl_slist *hl = NULL, *rl = NULL;
	if (host == 0) {
		snprintf(url, sizeof url, "%s%s", test_env("TEST_BASE_URL"), path);
	} else {
		char var[32];
		snprintf(var, sizeof var, "TEST_HOST%d_ADDR", host);
		snprintf(resolve, sizeof resolve, "localhost:%s:%s", test_env("TEST_HOST_PORT"),
		    test_env(var));
		rl = curl_slist_append(rl, resolve);
		snprintf(url, sizeof url, "https://localhost:%s%s", test_env("TEST_HOST_PORT"), path);
	}
	if (token != NULL) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		hl = curl_slist_append(hl, auth);
	}
	if (key != NULL) {
		snprintf(idem, sizeof idem, "Idempotency-Key: %s", key);
		hl = curl_slist_append(hl, idem);
	}
	if (body != NULL)
		hl = curl_slist_append(hl, "Content-Type: application/json");
	hl = curl_slist_append(hl, "Expect:");
	struct headers h = { 0 };
	struct grow b = { 0 };
	CURL *c = curl_easy_init();
	ck_assert_ptr_nonnull(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_RESOLVE, rl);
	curl_easy_setopt(c, CURLOPT_CAINFO, test_env("TEST_CA_FILE"));
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hl);
	curl_slist_free_all(rl);
	a->host = host != 0 ? host : h.host;
	a->replayed = h.replayed;
	a->body = b.data ? b.data : strdup("");
	cJSON *j = cJSON_Parse(a->body);
	const cJSON *code = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code");
	if (cJSON_IsString(code))
		snprintf(a->code, sizeof a->code, "%s", code->valuestring);
	cJSON_Delete(j);
}

static void answer_free(struct answer *a)
{
	free(a->body);
	a->body = NULL;
}

static void event_body(char *out, size_t len, const char *title)
{
	snprintf(out, len, "{\"title\":\"%s\",\"starts_at\":\"2031-05-01T18:00:00Z\"}", title);
}

/* How many events have this title (each test's titles are unique). */
static int events_titled(const char *title)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { title };
	char *n = test_db_value(c, "SELECT count(*) FROM events WHERE title = $1", 1, p);
	PQfinish(c);
	int count = n ? atoi(n) : -1;
	free(n);
	return count;
}

static int events_owned(const char *user_id)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { user_id };
	char *n = test_db_value(c, "SELECT count(*) FROM events WHERE owner_id = $1", 1, p);
	PQfinish(c);
	int count = n ? atoi(n) : -1;
	free(n);
	return count;
}

/* Until the front has sent a request to each host again (a host it marked
 * failed is tried again after fail_timeout, 2 s), at most 10 s. */
static void wait_both_hosts_serving(const char *token)
{
	bool seen[3] = { false };
	long long until = now_ms() + 10000;
	while (!(seen[1] && seen[2]) && now_ms() < until) {
		struct answer a;
		call(0, "GET", "/api/events?limit=1", token, NULL, NULL, &a);
		if (a.status == 200)
			seen[a.host] = true;
		answer_free(&a);
		usleep(50000);
	}
	ck_assert_msg(seen[1] && seen[2], "the front did not use both hosts (host 1: %d, host 2: %d)",
	    seen[1], seen[2]);
}

static void setup(void)
{
	fx_init();
	cJSON_Delete(fake("DELETE", "/_fake/fail", NULL));
}

/* Once, before the tests: both pools take the write limit by a reload. */
static void configure_pools(void)
{
	char settings[128];
	snprintf(settings, sizeof settings,
	    "pools-set WRITE_RATE_LIMIT_REQUESTS=%d WRITE_RATE_LIMIT_WINDOW_SECONDS=%d", LIMIT,
	    LIMIT_WINDOW_SECONDS);
	if (hosts_ctl("%s", settings) != 0) {
		fprintf(stderr, "check_hosts: %s failed\n", settings);
		exit(EXIT_FAILURE);
	}
}

/* ------------------------------------------------------- a. rate limit */

enum { A_THREADS = 12, A_EACH = 15 };   /* 180 creates: three times the limit */

struct a_worker {
	pthread_t thread;
	int host;
	const struct fx_user *user;
	int index;
	int created, limited, other;
	long other_status;
};

static void *a_run(void *arg)
{
	struct a_worker *w = arg;
	for (int i = 0; i < A_EACH; i++) {
		char title[64], body[160];
		snprintf(title, sizeof title, "limit-%d-%d-%d", (int)getpid(), w->index, i);
		event_body(body, sizeof body, title);
		struct answer a;
		call(w->host, "POST", "/api/events", w->user->token, NULL, body, &a);
		if (a.status == 201)
			w->created++;
		else if (a.status == 429 && strcmp(a.code, "rate_limited") == 0)
			w->limited++;
		else {
			w->other++;
			w->other_status = a.status;
		}
		answer_free(&a);
	}
	return NULL;
}

START_TEST(a_rate_limit_is_exact_across_hosts)
{
	struct fx_user u;
	fx_user(&u, "customer", true);
	struct a_worker w[A_THREADS];
	for (int t = 0; t < A_THREADS; t++) {
		w[t] = (struct a_worker){ .host = 1 + t % 2, .user = &u, .index = t };
		pthread_create(&w[t].thread, NULL, a_run, &w[t]);
	}
	int created[3] = { 0 }, limited[3] = { 0 };
	for (int t = 0; t < A_THREADS; t++) {
		pthread_join(w[t].thread, NULL);
		ck_assert_msg(w[t].other == 0, "host %d answered %ld to a create", w[t].host,
		    w[t].other_status);
		created[w[t].host] += w[t].created;
		limited[w[t].host] += w[t].limited;
	}
	fprintf(stderr, "a: host 1 created %d, refused %d; host 2 created %d, refused %d\n",
	    created[1], limited[1], created[2], limited[2]);
	/* One bucket: LIMIT in all, not LIMIT on each host (which would be
	 * 2 x LIMIT, each host having been sent more than LIMIT). */
	ck_assert_int_eq(created[1] + created[2], LIMIT);
	ck_assert_int_eq(limited[1] + limited[2], A_THREADS * A_EACH - LIMIT);
	ck_assert_msg(created[1] > 0 && created[2] > 0 && limited[1] > 0 && limited[2] > 0,
	    "each host both creates and refuses");
	ck_assert_int_eq(events_owned(u.id), LIMIT);
}
END_TEST

/* ------------------------------------------------- b. idempotency key */

enum { B_ROUNDS = 20, B_TRIES = 100 };

struct b_side {
	pthread_t thread;
	pthread_barrier_t *start;
	int host;
	const char *token, *key, *body;
	struct answer first, last;
};

/* Sends at the barrier; on 409 idempotency_key_in_use retries (bounded)
 * until the first request's answer is there to replay. */
static void *b_run(void *arg)
{
	struct b_side *s = arg;
	pthread_barrier_wait(s->start);
	call(s->host, "POST", "/api/events", s->token, s->key, s->body, &s->first);
	s->last = s->first;
	s->last.body = strdup(s->first.body);
	for (int i = 0; i < B_TRIES && s->last.status == 409 &&
	    strcmp(s->last.code, "idempotency_key_in_use") == 0; i++) {
		usleep(20000);
		answer_free(&s->last);
		call(s->host, "POST", "/api/events", s->token, s->key, s->body, &s->last);
	}
	return NULL;
}

START_TEST(b_one_key_on_both_hosts_runs_once)
{
	int raced = 0;
	for (int r = 0; r < B_ROUNDS; r++) {
		/* A user per round: every attempt, a replay too, is a write. */
		struct fx_user u;
		fx_user(&u, "customer", true);
		char key[64], body[160];
		snprintf(key, sizeof key, "both-%d-%d", (int)getpid(), r);
		event_body(body, sizeof body, key);
		pthread_barrier_t start;
		pthread_barrier_init(&start, NULL, 2);
		struct b_side s[2];
		for (int i = 0; i < 2; i++) {
			s[i] = (struct b_side){ .start = &start, .host = i + 1, .token = u.token,
				.key = key, .body = body };
			pthread_create(&s[i].thread, NULL, b_run, &s[i]);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(s[i].thread, NULL);
		pthread_barrier_destroy(&start);
		for (int i = 0; i < 2; i++)
			ck_assert_msg(s[i].last.status == 201, "round %d, host %d: %ld %s", r, i + 1,
			    s[i].last.status, s[i].last.body);
		/* The same response on both hosts, one of them the replay. */
		ck_assert_str_eq(s[0].last.body, s[1].last.body);
		ck_assert_msg(s[0].last.replayed != s[1].last.replayed,
		    "round %d: exactly one answer is the replay (host 1: %d, host 2: %d)", r,
		    s[0].last.replayed, s[1].last.replayed);
		ck_assert_int_eq(events_titled(key), 1);
		raced += s[0].first.status == 409 || s[1].first.status == 409;
		for (int i = 0; i < 2; i++) {
			answer_free(&s[i].first);
			answer_free(&s[i].last);
		}
	}
	fprintf(stderr, "b: %d rounds, %d of them met the other host's request in flight\n",
	    B_ROUNDS, raced);
}
END_TEST

/* ------------------------------------------------------- c. releases */

enum { C_RELEASES = 50 };

struct c_release {
	pthread_t thread;
	const char *path, *token;
	struct answer a;
};

static void *c_run(void *arg)
{
	struct c_release *c = arg;
	call(0, "POST", c->path, c->token, NULL, NULL, &c->a);
	return NULL;
}

START_TEST(c_fifty_releases_over_both_hosts_one_transfer)
{
	struct deal d;
	deal(&d, true, true, true);
	/* A slow Stripe keeps the first release in flight while the rest arrive. */
	fake_fail("{\"method\":\"POST\",\"path\":\"/v1/transfers\",\"mode\":\"slow\","
	    "\"delay_ms\":400}");
	static struct c_release rs[C_RELEASES];
	const char *path = path_of("/api/event-services/%s/release", d.id);
	for (int i = 0; i < C_RELEASES; i++) {
		rs[i] = (struct c_release){ .path = path, .token = d.admin.token };
		pthread_create(&rs[i].thread, NULL, c_run, &rs[i]);
	}
	int ok = 0, in_progress = 0, by_host[3] = { 0 };
	for (int i = 0; i < C_RELEASES; i++) {
		pthread_join(rs[i].thread, NULL);
		struct answer *a = &rs[i].a;
		if (a->status == 200)
			ok++;
		else if (a->status == 409 && strcmp(a->code, "payout_in_progress") == 0)
			in_progress++;
		else
			ck_abort_msg("release %d: %ld %s", i, a->status, a->body);
		by_host[a->host]++;
		answer_free(a);
	}
	fprintf(stderr, "c: %d released, %d in progress; host 1 answered %d, host 2 %d\n", ok,
	    in_progress, by_host[1], by_host[2]);
	ck_assert_int_ge(ok, 1);
	ck_assert_int_eq(ok + in_progress, C_RELEASES);
	ck_assert_msg(by_host[1] > 0 && by_host[2] > 0, "the releases went to one host only");
	ck_assert_int_eq(fake_count("transfer", "transfer_group", d.id), 1);
	char key[128];
	snprintf(key, sizeof key, "release_payment:%s", d.id);
	ck_assert_int_eq(fake_requests("POST", key), 1);
	assert_status(d.id, "released");
	assert_payment(d.id, "service_payment", "released");
	ck_assert_int_eq(fx_audit_count("payment.release", d.id), 1);
	deal_free(&d);
}
END_TEST

/* --------------------------------------------------------- load loops */

/* One loader: GET and POST in turn through the front, each POST with a key
 * of its own, its title. Bounded by LOAD_OPS, LOAD_SECONDS and the stop
 * flag. With retry, a POST that got no answer of the app is sent again
 * with the same key, honouring Retry-After, for at most RETRY_SECONDS. */
enum { LOAD_THREADS = 4, LOAD_OPS = 4000, LOAD_SECONDS = 90, LOAD_USERS = 8,
	POSTS_PER_USER = 40, RETRY_SECONDS = 30 };

struct op {
	bool post;
	long status;            /* the final answer */
	int host;
	int attempts;
	long long done_ms;
	char title[64];
};

struct loader {
	pthread_t thread;
	int index;
	bool retry;
	volatile int *stop;
	struct fx_user users[LOAD_USERS];
	int nops;
	struct op ops[LOAD_OPS];
};

static bool worth_retrying(const struct answer *a)
{
	return a->status == 0 || a->status == 502 || a->status == 503 || a->status == 504 ||
	    (a->status == 409 && strcmp(a->code, "idempotency_key_in_use") == 0);
}

static void *load_run(void *arg)
{
	struct loader *l = arg;
	long long until = now_ms() + LOAD_SECONDS * 1000;
	int posts = 0;
	while (!*l->stop && l->nops < LOAD_OPS && now_ms() < until) {
		struct op *op = &l->ops[l->nops];
		const struct fx_user *u = &l->users[(posts / POSTS_PER_USER) % LOAD_USERS];
		op->post = l->nops % 2 == 1 && posts < LOAD_USERS * POSTS_PER_USER;
		struct answer a;
		if (op->post) {
			char body[160];
			snprintf(op->title, sizeof op->title, "load-%d-%d-%d", (int)getpid(), l->index,
			    l->nops);
			event_body(body, sizeof body, op->title);
			long long give_up = now_ms() + RETRY_SECONDS * 1000;
			for (;;) {
				op->attempts++;
				call(0, "POST", "/api/events", u->token, op->title, body, &a);
				if (!l->retry || !worth_retrying(&a) || now_ms() > give_up)
					break;
				/* 409 in use comes with Retry-After: 1. */
				useconds_t pause = a.status == 409 ? 1000000 : 200000;
				answer_free(&a);
				usleep(pause);
			}
			posts++;
		} else {
			op->attempts = 1;
			call(0, "GET", "/api/events?limit=5", u->token, NULL, NULL, &a);
		}
		op->status = a.status;
		op->host = a.host;
		op->done_ms = now_ms();
		answer_free(&a);
		l->nops++;
		usleep(20000);
	}
	return NULL;
}

static void load_start(struct loader *ls, bool retry, volatile int *stop)
{
	for (int t = 0; t < LOAD_THREADS; t++) {
		memset(&ls[t], 0, sizeof ls[t]);
		ls[t].index = t;
		ls[t].retry = retry;
		ls[t].stop = stop;
		for (int u = 0; u < LOAD_USERS; u++)
			fx_user(&ls[t].users[u], "customer", true);
	}
	for (int t = 0; t < LOAD_THREADS; t++)
		pthread_create(&ls[t].thread, NULL, load_run, &ls[t]);
}

static int load_done(const struct loader *ls)
{
	int n = 0;
	for (int t = 0; t < LOAD_THREADS; t++)
		n += ls[t].nops;
	return n;
}

/* Until n more operations are done (at most secs). */
static void load_wait(const struct loader *ls, int n, int secs)
{
	int target = load_done(ls) + n;
	long long until = now_ms() + secs * 1000LL;
	while (load_done(ls) < target && now_ms() < until)
		usleep(20000);
}

/* Every POST that was acknowledged ran exactly once, and none twice. */
static void assert_posts_once(const struct loader *ls)
{
	for (int t = 0; t < LOAD_THREADS; t++)
		for (int i = 0; i < ls[t].nops; i++) {
			const struct op *op = &ls[t].ops[i];
			if (!op->post)
				continue;
			int n = events_titled(op->title);
			ck_assert_msg(n <= 1, "POST %s ran %d times", op->title, n);
			ck_assert_msg(op->status != 201 || n == 1, "POST %s answered 201 but ran %d times",
			    op->title, n);
		}
}

/* --------------------------------------------------- d. a host killed */

START_TEST(d_killed_host_mid_load)
{
	static struct loader ls[LOAD_THREADS];
	static volatile int stop;
	stop = 0;
	load_start(ls, true, &stop);
	load_wait(ls, 40, 30);
	ck_assert_int_eq(hosts_ctl("pool-kill 1"), 0);
	long long killed = now_ms();
	/* Past the front's fail_timeout, then on under load. */
	usleep(2500000);
	load_wait(ls, 60, 30);
	stop = 1;
	for (int t = 0; t < LOAD_THREADS; t++)
		pthread_join(ls[t].thread, NULL);

	int gets = 0, posts = 0, retried = 0, after = 0, after_on_2 = 0;
	for (int t = 0; t < LOAD_THREADS; t++)
		for (int i = 0; i < ls[t].nops; i++) {
			const struct op *op = &ls[t].ops[i];
			/* GETs: the balancer's retry on the other host, never the client's. */
			ck_assert_msg(op->status == (op->post ? 201 : 200), "%s %s: %ld after %d attempts",
			    op->post ? "POST" : "GET", op->post ? op->title : "/api/events", op->status,
			    op->attempts);
			gets += !op->post;
			posts += op->post;
			retried += op->attempts > 1;
			if (op->done_ms > killed + 2000 && op->attempts == 1) {
				after++;
				after_on_2 += op->host == 2;
			}
		}
	assert_posts_once(ls);
	fprintf(stderr, "d: %d GETs, %d POSTs (%d sent again with their key), %d answered "
	    "after the kill, %d of them by host 2\n", gets, posts, retried, after, after_on_2);
	ck_assert_int_ge(after, 20);
	ck_assert_int_eq(after_on_2, after);

	/* The host comes back and the front uses it again. */
	ck_assert_int_eq(hosts_ctl("pool-start 1"), 0);
	wait_both_hosts_serving(ls[0].users[0].token);
}
END_TEST

/* ------------------------------------------------ e. rolling restart */

START_TEST(e_rolling_restart_fails_nothing)
{
	/* The "new" binary: a copy of the running one, at another path. */
	char bin[512], cmd[1200];
	snprintf(bin, sizeof bin, "%s/gala-new", test_env("TEST_HOSTS_DIR"));
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", test_env("GALA_BIN"), bin);
	ck_assert_int_eq(system(cmd), 0);

	static struct loader ls[LOAD_THREADS];
	static volatile int stop;
	stop = 0;
	load_start(ls, false, &stop);
	wait_both_hosts_serving(ls[0].users[0].token);
	load_wait(ls, 20, 30);
	/* While host n is out of the balancer (from the drain's end to the
	 * enable), every answer comes from the other one. */
	long long out_from[3], out_until[3];
	for (int n = 1; n <= 2; n++) {
		ck_assert_int_eq(hosts_ctl("pool-reload %d", n), 0);
		load_wait(ls, 10, 30);
		ck_assert_int_eq(hosts_ctl("lb-drain %d", n), 0);
		out_from[n] = now_ms();
		ck_assert_int_eq(hosts_ctl("pool-stop %d", n), 0);
		ck_assert_int_eq(hosts_ctl("pool-start %d --gala-bin '%s'", n, bin), 0);
		out_until[n] = now_ms();
		ck_assert_int_eq(hosts_ctl("lb-enable %d", n), 0);
		load_wait(ls, 20, 30);
	}
	long long restarted = now_ms();
	load_wait(ls, 20, 30);
	stop = 1;
	for (int t = 0; t < LOAD_THREADS; t++)
		pthread_join(ls[t].thread, NULL);

	int ops = 0, by_host[3] = { 0 }, while_out[3] = { 0 }, late = 0;
	for (int t = 0; t < LOAD_THREADS; t++)
		for (int i = 0; i < ls[t].nops; i++) {
			const struct op *op = &ls[t].ops[i];
			ck_assert_msg(op->status == (op->post ? 201 : 200), "%s during the restart: %ld",
			    op->post ? "POST" : "GET", op->status);
			by_host[op->host]++;
			ops++;
			for (int n = 1; n <= 2; n++)
				if (op->done_ms > out_from[n] && op->done_ms < out_until[n]) {
					ck_assert_msg(op->host != n, "host %d answered while drained", n);
					while_out[n]++;
				}
			late += op->done_ms > restarted;
		}
	assert_posts_once(ls);
	fprintf(stderr, "e: %d requests, 0 failed; host 1 answered %d (%d while host 2 was "
	    "out), host 2 %d (%d while host 1 was out)\n", ops, by_host[1], while_out[2],
	    by_host[2], while_out[1]);
	/* The load ran through every step. */
	ck_assert_msg(while_out[1] > 0 && while_out[2] > 0 && late > 0,
	    "the load stopped before the restart ended");
	for (int n = 1; n <= 2; n++) {
		char *exe = hosts_ctl_output("pool-exe %d", n);
		ck_assert_msg(exe != NULL && strcmp(exe, bin) == 0, "host %d runs %s, not %s", n,
		    exe ? exe : "(nothing)", bin);
		free(exe);
	}
}
END_TEST

int main(void)
{
	configure_pools();
	Suite *s = suite_create("hosts");
	TCase *tc = tcase_create("two hosts");
	tcase_set_timeout(tc, 180);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, a_rate_limit_is_exact_across_hosts);
	tcase_add_test(tc, b_one_key_on_both_hosts_runs_once);
	tcase_add_test(tc, c_fifty_releases_over_both_hosts_one_transfer);
	tcase_add_test(tc, d_killed_host_mid_load);
	tcase_add_test(tc, e_rolling_restart_fails_nothing);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
