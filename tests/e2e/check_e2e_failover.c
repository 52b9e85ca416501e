/* End to end: PostgreSQL fails over to a promoted replica under load. The
 * pool's DATABASE_URL names both servers (libpq multi-host,
 * target_session_attrs=read-write); the replica is synchronous, so a write
 * the client saw acknowledged is on it. The primary is stopped mid-load and
 * the replica promoted: the workers reach the new primary without a
 * restart, within 10 s, and every acknowledged create is still there. */
#include "autoconf.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "testlib.h"

#define PW "Gala-test-pass-42"
#define MAX_CREATES 400

static char pool_url[1024];

/* The superuser on whichever server is the primary now. */
static PGconn *primary_superuser(void)
{
	const char *at = strchr(pool_url, '@');
	ck_assert_ptr_nonnull(at);
	char url[1200];
	snprintf(url, sizeof url, "postgresql://postgres%s", at);
	PGconn *c = PQconnectdb(url);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "db: %s", PQerrorMessage(c));
	return c;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct load {
	pthread_t thread;
	const char *token;
	volatile int stop;
	int sent;
	int acknowledged;
	char titles[MAX_CREATES][48];
	long status[MAX_CREATES];
};

/* Bounded: at most MAX_CREATES creates and 30 s, whichever comes first. */
static void *create_loop(void *arg)
{
	struct load *l = arg;
	char auth[4096];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", l->token);
	const char *h[] = { "Content-Type: application/json", auth, NULL };
	long long until = now_ms() + 30000;
	while (!l->stop && l->sent < MAX_CREATES && now_ms() < until) {
		int i = l->sent;
		snprintf(l->titles[i], sizeof l->titles[i], "failover-%d-%d", (int)getpid(), i);
		char body[160];
		snprintf(body, sizeof body, "{\"title\":\"%s\",\"starts_at\":\"2031-05-01T18:00:00Z\"}",
		    l->titles[i]);
		struct http_resp r;
		l->status[i] = http_do("POST", "/api/events", h, body, &r) == 0 ? r.status : -1;
		http_resp_free(&r);
		if (l->status[i] == 201)
			l->acknowledged++;
		l->sent++;
		usleep(20000);
	}
	return NULL;
}

static long health(void)
{
	struct http_resp r;
	long st = http_do("GET", "/api/health", NULL, NULL, &r) == 0 ? r.status : -1;
	http_resp_free(&r);
	return st;
}

START_TEST(failover_to_a_promoted_replica)
{
	char *url = stack_ctl_output("replica-start");
	ck_assert_msg(url != NULL && strstr(url, "target_session_attrs=read-write") != NULL,
	    "replica-start: %s", url ? url : "(nothing)");
	url[strcspn(url, "\n")] = '\0';
	snprintf(pool_url, sizeof pool_url, "%s", url);
	free(url);
	ck_assert_int_eq(stack_ctl("gala-start 'DATABASE_URL=%s'", pool_url), 0);

	/* A verified customer, so that it may create events. */
	char email[96], body[256];
	snprintf(email, sizeof email, "failover-%d@example.com", (int)getpid());
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\",\"full_name\":\"F\"}",
	    email, PW);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/register", NULL, body, &r), 0);
	ck_assert_msg(r.status == 201, "register: %ld %s", r.status, r.body);
	char *token = strdup(cJSON_GetObjectItem(r.json, "access_token")->valuestring);
	http_resp_free(&r);
	PGconn *c = primary_superuser();
	const char *pe[] = { email };
	PQclear(PQexecParams(c, "UPDATE users SET email_verified = true WHERE email = $1", 1, NULL,
	    pe, NULL, NULL, 0));
	PQfinish(c);

	static struct load l;
	memset(&l, 0, sizeof l);
	l.token = token;
	pthread_create(&l.thread, NULL, create_loop, &l);
	while (l.acknowledged < 10 && l.sent < MAX_CREATES)
		usleep(50000);

	/* The primary goes away mid-load; the replica takes over. */
	ck_assert_int_eq(stack_ctl("pg-stop"), 0);
	ck_assert_int_eq(stack_ctl("replica-promote"), 0);
	long long promoted = now_ms();
	long long back = -1;
	while (now_ms() - promoted < 10000) {
		if (health() == 200) {
			back = now_ms() - promoted;
			break;
		}
		usleep(100000);
	}
	ck_assert_msg(back >= 0, "the pool did not reach the new primary within 10 s");
	/* Creates go on against the new primary. */
	int before = l.acknowledged;
	for (int i = 0; i < 100 && l.acknowledged < before + 5; i++)
		usleep(100000);
	l.stop = 1;
	pthread_join(l.thread, NULL);
	ck_assert_msg(l.acknowledged >= before + 5, "no create succeeded after the failover");

	/* Every acknowledged create survived, and none ran twice. */
	c = primary_superuser();
	int lost = 0;
	for (int i = 0; i < l.sent; i++) {
		const char *pt[] = { l.titles[i] };
		char *n = test_db_value(c, "SELECT count(*) FROM events WHERE title = $1", 1, pt);
		int count = n ? atoi(n) : -1;
		free(n);
		ck_assert_msg(count <= 1, "%s was created %d times", l.titles[i], count);
		if (l.status[i] == 201 && count != 1)
			lost++;
	}
	PQfinish(c);
	ck_assert_msg(lost == 0, "%d acknowledged creates were lost", lost);
	fprintf(stderr, "failover: %d creates sent, %d acknowledged, pool back %lld ms after "
	    "the promotion\n", l.sent, l.acknowledged, back);
	free(token);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("failover");
	TCase *tc = tcase_create("failover");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, failover_to_a_promoted_replica);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
