/* The load of scripts/soak: a mix of reads, writes, idempotent POSTs (fresh
 * keys and replays) and webhooks signed the way Stripe signs them, sent
 * through nginx from keep-alive connections, one per thread.
 *
 *   soak_load --url BASE --ca FILE --fixtures FILE --webhook-secret S
 *             --seconds N [--rate R] [--threads T] [--interval SECS]
 *
 * --rate 0 (the default) sends as fast as the pool answers: the capacity.
 * With a rate, request k of thread i is due at start + (k*T + i)/R and its
 * latency counts from then, so a stall shows in the percentiles however few
 * requests were sent during it. The fixtures file has lines
 * "writer TOKEN EVENT_ID" (a user and one of their events) and
 * "reader TOKEN" (a user whose events never change, for the list read).
 *
 * Prints a line for every interval (the last one may be shorter):
 *   interval=N seconds=S requests=R rate=X p50_ms=A p99_ms=B max_ms=C
 *   s5xx=E failed=F unexpected=U
 * (failed: no answer at all; unexpected: any other status than the one the
 * request must get), then for each kind of request over the whole run
 *   kind=NAME requests=R p50_ms=A p99_ms=B unexpected=U s5xx=E failed=F
 * and "total=R seconds=S". */
#include "autoconf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "core/crypto.h"

#define MAX_THREADS 64
#define MAX_WRITERS 256

enum kind {
	K_HEALTH, K_EVENT, K_EVENTS, K_ME, K_PROVIDERS, K_CREATE, K_UPDATE, K_CREATE_KEYED,
	K_REPLAY, K_WEBHOOK, K__COUNT
};

static const struct {
	const char *name;
	int weight;      /* out of 100 */
	long status;     /* the answer it must get */
} kinds[K__COUNT] = {
	[K_HEALTH] = { "health", 10, 200 },
	[K_EVENT] = { "event", 20, 200 },
	[K_EVENTS] = { "events", 10, 200 },
	[K_ME] = { "me", 10, 200 },
	[K_PROVIDERS] = { "providers", 5, 200 },
	[K_CREATE] = { "create", 10, 201 },
	[K_UPDATE] = { "update", 10, 200 },
	[K_CREATE_KEYED] = { "create-keyed", 8, 201 },
	[K_REPLAY] = { "replay", 7, 201 },
	[K_WEBHOOK] = { "webhook", 10, 200 },
};

struct writer {
	char token[1300];
	char event[64];
};

static struct {
	const char *url, *ca, *secret;
	double rate;
	int threads, seconds, interval;
	struct writer writers[MAX_WRITERS];
	int nwriters;
	char reader[1300];
} opt = { .threads = 16, .interval = 60 };

struct tally {
	long requests, s5xx, failed, unexpected;
};

/* Latencies in microseconds. */
struct lat {
	uint32_t *us;
	size_t n, cap;
};

static void lat_add(struct lat *l, double seconds)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 4096;
		uint32_t *p = realloc(l->us, cap * sizeof *p);
		if (p == NULL)
			return;
		l->us = p;
		l->cap = cap;
	}
	l->us[l->n++] = (uint32_t)(seconds * 1e6);
}

/* What the threads add to: the interval's latencies and counts, which the
 * reporter takes out each interval, and the run's by kind. */
static struct {
	pthread_mutex_t mu;
	struct lat lat;
	struct tally t;
	struct lat kind_lat[K__COUNT];
	struct tally by_kind[K__COUNT];
} acc = { .mu = PTHREAD_MUTEX_INITIALIZER };

static atomic_bool stopping;
static double started;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void record(enum kind k, long status, double latency_s)
{
	pthread_mutex_lock(&acc.mu);
	lat_add(&acc.lat, latency_s);
	lat_add(&acc.kind_lat[k], latency_s);
	struct tally *ts[] = { &acc.t, &acc.by_kind[k] };
	for (int i = 0; i < 2; i++) {
		ts[i]->requests++;
		if (status == 0)
			ts[i]->failed++;
		else if (status >= 500)
			ts[i]->s5xx++;
		else if (status != kinds[k].status)
			ts[i]->unexpected++;
	}
	pthread_mutex_unlock(&acc.mu);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* One thread's connection and the state of its requests. */
struct client {
	int index;
	CURL *curl;
	uint64_t rng;
	unsigned long seq;
	char last_key[64], last_body[256];
	const struct writer *last_writer;
	char last_event[1024];
};

static uint64_t next_rand(struct client *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return c->rng;
}

static enum kind pick(struct client *c)
{
	int r = (int)(next_rand(c) % 100), sum = 0;
	for (int k = 0; k < K__COUNT; k++) {
		sum += kinds[k].weight;
		if (r < sum)
			return (enum kind)k;
	}
	return K_HEALTH;
}

/* A new Stripe event in c->last_event, as Stripe sends it: of a type Gala
 * handles (about an object it does not know) or one it ignores. */
static void new_event(struct client *c, long ts)
{
	static const char *const types[] = { "payment_intent.succeeded",
		"customer.subscription.updated", "invoice.paid" };
	const char *type = types[c->seq % 3];
	if (strcmp(type, "customer.subscription.updated") == 0)
		snprintf(c->last_event, sizeof c->last_event, "{\"id\":\"evt_soak%dx%lux%ld\","
		    "\"object\":\"event\",\"api_version\":\"2024-06-20\",\"created\":%ld,"
		    "\"livemode\":false,\"pending_webhooks\":1,\"type\":\"%s\",\"data\":{\"object\":"
		    "{\"id\":\"sub_soak%lu\",\"object\":\"subscription\",\"customer\":\"cus_soak%d\","
		    "\"status\":\"active\",\"cancel_at_period_end\":false,\"current_period_end\":%ld,"
		    "\"items\":{\"data\":[{\"price\":{\"id\":\"price_soak\"}}]},\"metadata\":{}}}}",
		    c->index, c->seq, ts, ts, type, c->seq, c->index, ts + 30 * 86400);
	else
		snprintf(c->last_event, sizeof c->last_event, "{\"id\":\"evt_soak%dx%lux%ld\","
		    "\"object\":\"event\",\"api_version\":\"2024-06-20\",\"created\":%ld,"
		    "\"livemode\":false,\"pending_webhooks\":1,\"type\":\"%s\",\"data\":{\"object\":"
		    "{\"id\":\"pi_soak%lu\",\"object\":\"payment_intent\",\"amount\":1000,"
		    "\"currency\":\"usd\",\"status\":\"succeeded\",\"latest_charge\":\"ch_soak%lu\","
		    "\"metadata\":{}}}}", c->index, c->seq, ts, ts, type, c->seq, c->seq);
}

/* The thread's next event, with a fresh Stripe-Signature header in sig.
 * One in ten is a redelivery of its previous event (answered as a
 * duplicate). */
static void webhook(struct client *c, char *sig, size_t slen)
{
	long ts = (long)time(NULL);
	if (c->last_event[0] == '\0' || c->seq % 10 != 0)
		new_event(c, ts);
	size_t n = (size_t)snprintf(NULL, 0, "%ld.", ts) + strlen(c->last_event);
	char *signed_payload = malloc(n + 1);
	char mac[65];
	snprintf(signed_payload, n + 1, "%ld.%s", ts, c->last_event);
	crypto_hmac_sha256_hex(opt.secret, signed_payload, n, mac);
	free(signed_payload);
	snprintf(sig, slen, "Stripe-Signature: t=%ld,v1=%s", ts, mac);
}

static long send_one(struct client *c, enum kind k)
{
	const struct writer *w = &opt.writers[next_rand(c) % (uint64_t)opt.nwriters];
	char path[256], auth[1400], key[96], extra[512], body[256];
	const char *method = "GET", *payload = NULL, *token = w->token;
	extra[0] = key[0] = '\0';
	snprintf(path, sizeof path, "/api/health");
	c->seq++;
	switch (k) {
	case K_HEALTH:
		token = NULL;
		break;
	case K_EVENT:
		snprintf(path, sizeof path, "/api/events/%s", w->event);
		break;
	case K_EVENTS:
		snprintf(path, sizeof path, "/api/events?limit=20");
		token = opt.reader;
		break;
	case K_ME:
		snprintf(path, sizeof path, "/api/auth/me");
		break;
	case K_PROVIDERS:
		snprintf(path, sizeof path, "/api/providers?city=Lisbon&limit=20");
		break;
	case K_CREATE:
	case K_CREATE_KEYED:
		method = "POST";
		snprintf(path, sizeof path, "/api/events");
		snprintf(body, sizeof body, "{\"title\":\"soak %d-%lu\",\"city\":\"Lisbon\","
		    "\"starts_at\":\"2031-06-01T18:00:00Z\"}", c->index, c->seq);
		payload = body;
		if (k == K_CREATE_KEYED) {
			snprintf(c->last_key, sizeof c->last_key, "soak-%d-%lu-%ld", c->index, c->seq,
			    (long)started);
			snprintf(c->last_body, sizeof c->last_body, "%s", body);
			c->last_writer = w;
			snprintf(key, sizeof key, "Idempotency-Key: %s", c->last_key);
		}
		break;
	case K_REPLAY:
		if (c->last_writer == NULL)
			return send_one(c, K_CREATE_KEYED);
		method = "POST";
		snprintf(path, sizeof path, "/api/events");
		token = c->last_writer->token;
		payload = c->last_body;
		snprintf(key, sizeof key, "Idempotency-Key: %s", c->last_key);
		break;
	case K_UPDATE:
		method = "PATCH";
		snprintf(path, sizeof path, "/api/events/%s", w->event);
		snprintf(body, sizeof body, "{\"description\":\"soak update %d-%lu\"}", c->index,
		    c->seq);
		payload = body;
		break;
	case K_WEBHOOK:
		method = "POST";
		snprintf(path, sizeof path, "/api/webhooks/stripe");
		webhook(c, extra, sizeof extra);
		payload = c->last_event;
		token = NULL;
		break;
	case K__COUNT:
		break;
	}
	char url[512];
	snprintf(url, sizeof url, "%s%s", opt.url, path);
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	if (token != NULL) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	if (payload != NULL)
		h = curl_slist_append(h, "Content-Type: application/json");
	if (key[0] != '\0')
		h = curl_slist_append(h, key);
	if (extra[0] != '\0')
		h = curl_slist_append(h, extra);
	CURL *e = c->curl;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_HTTPGET, payload == NULL ? 1L : 0L);
	if (payload != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	long status = 0;
	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	return status;
}

static void *client_main(void *p)
{
	struct client *c = p;
	c->curl = curl_easy_init();
	curl_easy_setopt(c->curl, CURLOPT_CAINFO, opt.ca);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	double period = opt.rate > 0 ? opt.threads / opt.rate : 0;
	double due = started + (opt.rate > 0 ? c->index / opt.rate : 0);
	while (!atomic_load(&stopping)) {
		double t = now_s();
		if (period > 0 && due > t) {
			struct timespec ts = { (time_t)(due - t), (long)((due - t - (double)(time_t)(due - t)) * 1e9) };
			nanosleep(&ts, NULL);
			if (atomic_load(&stopping))
				break;
		}
		double from = period > 0 ? due : now_s();
		enum kind k = pick(c);
		long status = send_one(c, k);
		record(k, status, now_s() - from);
		due += period;
	}
	curl_easy_cleanup(c->curl);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double pct_ms(const uint32_t *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

/* Takes what was recorded since the last call and prints it as a line. */
static void report(const char *label, double seconds)
{
	pthread_mutex_lock(&acc.mu);
	struct lat l = acc.lat;
	struct tally t = acc.t;
	memset(&acc.lat, 0, sizeof acc.lat);
	memset(&acc.t, 0, sizeof acc.t);
	pthread_mutex_unlock(&acc.mu);
	uint32_t *v = l.us;
	size_t n = l.n;
	qsort(v, n, sizeof *v, cmp_u32);
	printf("%s seconds=%.0f requests=%ld rate=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
	    "s5xx=%ld failed=%ld unexpected=%ld\n", label, seconds, t.requests,
	    seconds > 0 ? (double)t.requests / seconds : 0, pct_ms(v, n, 0.50), pct_ms(v, n, 0.99),
	    n ? v[n - 1] / 1000.0 : 0, t.s5xx, t.failed, t.unexpected);
	fflush(stdout);
	free(v);
}

static int load_fixtures(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	char line[2048], what[16], a[1300], b[64];
	while (fgets(line, sizeof line, f) != NULL) {
		int n = sscanf(line, "%15s %1299s %63s", what, a, b);
		if (n == 3 && strcmp(what, "writer") == 0 && opt.nwriters < MAX_WRITERS) {
			snprintf(opt.writers[opt.nwriters].token, sizeof opt.writers[0].token, "%s", a);
			snprintf(opt.writers[opt.nwriters].event, sizeof opt.writers[0].event, "%s", b);
			opt.nwriters++;
		} else if (n >= 2 && strcmp(what, "reader") == 0) {
			snprintf(opt.reader, sizeof opt.reader, "%s", a);
		}
	}
	fclose(f);
	return opt.nwriters > 0 && opt.reader[0] != '\0' ? 0 : -1;
}

static int usage(void)
{
	fprintf(stderr, "usage: soak_load --url BASE --ca FILE --fixtures FILE --webhook-secret S "
	    "--seconds N [--rate R] [--threads T] [--interval SECS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *fixtures = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (strcmp(k, "--url") == 0)
			opt.url = v;
		else if (strcmp(k, "--ca") == 0)
			opt.ca = v;
		else if (strcmp(k, "--fixtures") == 0)
			fixtures = v;
		else if (strcmp(k, "--webhook-secret") == 0)
			opt.secret = v;
		else if (strcmp(k, "--seconds") == 0)
			opt.seconds = atoi(v);
		else if (strcmp(k, "--rate") == 0)
			opt.rate = atof(v);
		else if (strcmp(k, "--threads") == 0)
			opt.threads = atoi(v);
		else if (strcmp(k, "--interval") == 0)
			opt.interval = atoi(v);
		else
			return usage();
	}
	if (opt.url == NULL || opt.ca == NULL || opt.secret == NULL || fixtures == NULL ||
	    opt.seconds <= 0 || opt.threads < 1 || opt.threads > MAX_THREADS || opt.interval < 1 ||
	    opt.rate < 0)
		return usage();
	if (load_fixtures(fixtures) != 0) {
		fprintf(stderr, "soak_load: %s: no writer or no reader line\n", fixtures);
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	static struct client clients[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	started = now_s();
	for (int i = 0; i < opt.threads; i++) {
		clients[i] = (struct client){ .index = i, .rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) };
		pthread_create(&th[i], NULL, client_main, &clients[i]);
	}
	struct tally total = { 0 };
	int intervals = 0;
	for (double next = started + opt.interval; ; next += opt.interval) {
		double end = started + opt.seconds;
		double until = next < end ? next : end;
		double t = now_s();
		if (until > t) {
			struct timespec ts = { (time_t)(until - t),
				(long)((until - t - (double)(time_t)(until - t)) * 1e9) };
			nanosleep(&ts, NULL);
		}
		if (until >= end)
			break;
		char label[32];
		snprintf(label, sizeof label, "interval=%d", ++intervals);
		report(label, opt.interval);
	}
	atomic_store(&stopping, true);
	for (int i = 0; i < opt.threads; i++)
		pthread_join(th[i], NULL);
	/* The last, partial interval. */
	double rest = now_s() - started - (double)intervals * opt.interval;
	char label[32];
	snprintf(label, sizeof label, "interval=%d", ++intervals);
	report(label, rest);
	for (int k = 0; k < K__COUNT; k++) {
		const struct tally *t = &acc.by_kind[k];
		struct lat *l = &acc.kind_lat[k];
		qsort(l->us, l->n, sizeof *l->us, cmp_u32);
		total.requests += t->requests;
		printf("kind=%s requests=%ld p50_ms=%.2f p99_ms=%.2f unexpected=%ld s5xx=%ld "
		    "failed=%ld\n", kinds[k].name, t->requests, pct_ms(l->us, l->n, 0.50),
		    pct_ms(l->us, l->n, 0.99), t->unexpected, t->s5xx, t->failed);
		free(l->us);
	}
	printf("total=%ld seconds=%.0f\n", total.requests, now_s() - started);
	curl_global_cleanup();
	return 0;
}
