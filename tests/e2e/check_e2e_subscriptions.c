/* End-to-end tests of /api/subscriptions and the customer.subscription.*
 * webhooks, through nginx, against the Stripe fake. */
#include "autoconf.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "testlib.h"

#define PW "Gala-test-pass-42"

static int seq;

struct user {
	char email[128];
	char id[64];
	char token[1024];
};

static struct user new_user(const char *tag)
{
	struct user u;
	snprintf(u.email, sizeof u.email, "%s-%d-%d@example.com", tag, (int)getpid(), ++seq);
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\",\"full_name\":\"Sub %s\"}",
	    u.email, PW, tag);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/register", NULL, body, &r), 0);
	ck_assert_msg(r.status == 201, "register: %ld %s", r.status, r.body);
	snprintf(u.id, sizeof u.id, "%s",
	    cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "user"), "id")->valuestring);
	snprintf(u.token, sizeof u.token, "%s", cJSON_GetObjectItem(r.json, "access_token")->valuestring);
	http_resp_free(&r);
	return u;
}

static char *fake_url(const char *path)
{
	char *u = malloc(512);
	snprintf(u, 512, "%s%s", test_env("TEST_STRIPE_URL"), path);
	return u;
}

/* A call to the fake's control API. */
static cJSON *fake(const char *method, const char *path, const char *body)
{
	char *url = fake_url(path);
	const char *h[] = { "Content-Type: application/json", NULL };
	struct http_resp r;
	ck_assert_int_eq(http_do(method, url, h, body, &r), 0);
	ck_assert_msg(r.status == 200, "fake %s %s: %ld %s", method, path, r.status, r.body);
	cJSON *j = r.json;
	r.json = NULL;
	http_resp_free(&r);
	free(url);
	return j;
}

static const char *jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItem(o, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Starts a subscription; returns the response JSON (caller frees). */
static cJSON *start(const struct user *u, const char *price, long want)
{
	char body[128];
	snprintf(body, sizeof body, "{\"price_id\":\"%s\"}", price);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/subscriptions", u->token, body, &r), 0);
	ck_assert_msg(r.status == want, "start: %ld %s", r.status, r.body);
	cJSON *j = r.json;
	r.json = NULL;
	http_resp_free(&r);
	return j;
}

static cJSON *list(const struct user *u)
{
	struct http_resp r;
	ck_assert_int_eq(http_json("GET", "/api/subscriptions", u->token, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	cJSON *j = r.json;
	r.json = NULL;
	http_resp_free(&r);
	return j;
}

/* Sends a customer.subscription.* event built from the fake's stored
 * subscription with status (when not NULL) and Stripe time created; returns
 * the app's HTTP status. */
static long send_event(const char *type, const char *sub_id, const char *status,
    long long created, char **app_body)
{
	char path[256];
	snprintf(path, sizeof path, "/_fake/objects/%s", sub_id);
	cJSON *obj = fake("GET", path, NULL);
	if (status != NULL)
		cJSON_ReplaceItemInObject(obj, "status", cJSON_CreateString(status));
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "type", type);
	cJSON_AddItemToObject(ev, "object", obj);
	cJSON_AddNumberToObject(ev, "created", (double)created);
	char *body = cJSON_PrintUnformatted(ev);
	cJSON_Delete(ev);
	cJSON *out = fake("POST", "/_fake/webhooks/send", body);
	free(body);
	long st = (long)cJSON_GetObjectItem(out, "status")->valuedouble;
	if (app_body != NULL)
		*app_body = strdup(jstr(out, "body") ? jstr(out, "body") : "");
	cJSON_Delete(out);
	return st;
}

static const cJSON *first_item(const cJSON *list_json)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItem(list_json, "items"), 0);
}

START_TEST(plans_and_validation)
{
	struct http_resp r;
	ck_assert_int_eq(http_json("GET", "/api/subscriptions/plans", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	cJSON *items = cJSON_GetObjectItem(r.json, "items");
	ck_assert_int_eq(cJSON_GetArraySize(items), 2);
	ck_assert_str_eq(jstr(cJSON_GetArrayItem(items, 0), "price_id"), "price_basic_monthly");
	http_resp_free(&r);

	struct user u = new_user("val");
	ck_assert_int_eq(http_json("POST", "/api/subscriptions", u.token,
	    "{\"price_id\":\"price_not_a_plan\"}", &r), 0);
	ck_assert_int_eq(r.status, 422);
	ck_assert_str_eq(http_error_code(&r), "validation_failed");
	ck_assert_str_eq(jstr(cJSON_GetObjectItem(r.json, "error"), "param"), "price_id");
	http_resp_free(&r);
	ck_assert_int_eq(http_json("POST", "/api/subscriptions", u.token, "{}", &r), 0);
	ck_assert_int_eq(r.status, 422);
	http_resp_free(&r);
	ck_assert_int_eq(http_json("POST", "/api/subscriptions", NULL,
	    "{\"price_id\":\"price_basic_monthly\"}", &r), 0);
	ck_assert_int_eq(r.status, 401);
	http_resp_free(&r);
	/* Nothing reached Stripe for refused requests. */
	PGconn *c = test_db_superuser();
	const char *p[] = { u.id };
	char *cus = test_db_value(c, "SELECT stripe_customer_id FROM users WHERE id = $1", 1, p);
	ck_assert_ptr_null(cus);
	PQfinish(c);
}
END_TEST

/* The Subscription object of API.md: these members and no others. */
static void assert_subscription_keys(const cJSON *o)
{
	static const char *const keys[] = { "id", "user_id", "stripe_subscription_id", "price_id",
		"status", "current_period_end", "cancel_at_period_end", "created_at", "updated_at",
		NULL };
	int n = 0, want = 0;
	for (const cJSON *m = o->child; m != NULL; m = m->next)
		n++;
	for (const char *const *k = keys; *k != NULL; k++, want++)
		ck_assert_msg(cJSON_GetObjectItemCaseSensitive(o, *k) != NULL, "no member %s", *k);
	ck_assert_int_eq(n, want);
}

START_TEST(lifecycle_with_webhooks)
{
	struct user u = new_user("life");
	cJSON *s = start(&u, "price_pro_monthly", 201);
	ck_assert_int_eq(cJSON_GetArraySize(s), 2);
	const cJSON *sub = cJSON_GetObjectItem(s, "subscription");
	assert_subscription_keys(sub);
	ck_assert_str_eq(jstr(sub, "status"), "incomplete");
	ck_assert_str_eq(jstr(sub, "price_id"), "price_pro_monthly");
	ck_assert_str_eq(jstr(sub, "user_id"), u.id);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(sub, "cancel_at_period_end")));
	ck_assert_ptr_nonnull(jstr(sub, "current_period_end"));
	const char *secret = jstr(s, "client_secret");
	ck_assert_ptr_nonnull(secret);
	ck_assert_ptr_nonnull(strstr(secret, "_secret_"));
	char id[64], sid[64];
	snprintf(id, sizeof id, "%s", jstr(sub, "id"));
	snprintf(sid, sizeof sid, "%s", jstr(sub, "stripe_subscription_id"));
	cJSON_Delete(s);

	/* The Stripe customer is stored and the audit row written. */
	PGconn *c = test_db_superuser();
	const char *p[] = { u.id };
	char *cus = test_db_value(c, "SELECT stripe_customer_id FROM users WHERE id = $1", 1, p);
	ck_assert_ptr_nonnull(cus);
	ck_assert_int_eq(strncmp(cus, "cus_", 4), 0);
	char *n = test_db_value(c, "SELECT count(*) FROM audit_logs WHERE action = 'subscription.start' "
	    "AND actor_user_id = $1 AND status = 'success'", 1, p);
	ck_assert_str_eq(n, "1");
	free(n);
	free(cus);

	/* Webhook: active. */
	long long t0 = (long long)time(NULL) + 10;
	char *body;
	ck_assert_int_eq(send_event("customer.subscription.updated", sid, "active", t0, &body), 200);
	ck_assert_ptr_nonnull(strstr(body, "\"received\""));
	free(body);
	cJSON *l = list(&u);
	ck_assert_int_eq((int)cJSON_GetObjectItem(l, "total")->valuedouble, 1);
	ck_assert_str_eq(jstr(first_item(l), "status"), "active");
	cJSON_Delete(l);

	/* An older event arriving late changes nothing. */
	ck_assert_int_eq(send_event("customer.subscription.updated", sid, "past_due", t0 - 5, NULL), 200);
	l = list(&u);
	ck_assert_str_eq(jstr(first_item(l), "status"), "active");
	cJSON_Delete(l);

	/* Cancel at period end: the flag, Stripe's answer at once. */
	char path[256];
	snprintf(path, sizeof path, "/api/subscriptions/%s/cancel", id);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", path, u.token, "{\"at_period_end\": true}", &r), 0);
	ck_assert_msg(r.status == 200, "cancel: %ld %s", r.status, r.body);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "cancel_at_period_end")));
	ck_assert_str_eq(jstr(r.json, "id"), id);
	assert_subscription_keys(r.json);
	http_resp_free(&r);
	n = test_db_value(c, "SELECT count(*) FROM audit_logs WHERE action = 'subscription.cancel' "
	    "AND actor_user_id = $1", 1, p);
	ck_assert_str_eq(n, "1");
	free(n);

	/* Deleted → canceled. */
	ck_assert_int_eq(send_event("customer.subscription.deleted", sid, "canceled",
	    (long long)time(NULL) + 20, NULL), 200);
	l = list(&u);
	ck_assert_str_eq(jstr(first_item(l), "status"), "canceled");
	cJSON_Delete(l);
	PQfinish(c);
}
END_TEST

START_TEST(immediate_cancel_and_sync)
{
	struct user u = new_user("sync");
	cJSON *s = start(&u, "price_basic_monthly", 201);
	const cJSON *sub = cJSON_GetObjectItem(s, "subscription");
	char id[64], sid[64];
	snprintf(id, sizeof id, "%s", jstr(sub, "id"));
	snprintf(sid, sizeof sid, "%s", jstr(sub, "stripe_subscription_id"));
	cJSON_Delete(s);

	/* Stripe's state changes behind Gala's back; sync pulls it. */
	char path[256], body[256];
	snprintf(path, sizeof path, "/_fake/objects/%s", sid);
	cJSON_Delete(fake("POST", path, "{\"status\":\"past_due\"}"));
	snprintf(path, sizeof path, "/api/subscriptions/%s/sync", id);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", path, u.token, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "sync: %ld %s", r.status, r.body);
	ck_assert_str_eq(jstr(r.json, "status"), "past_due");
	http_resp_free(&r);
	/* Sync takes no fields. */
	ck_assert_int_eq(http_json("POST", path, u.token, "{\"status\":\"active\"}", &r), 0);
	ck_assert_int_eq(r.status, 422);
	ck_assert_str_eq(jstr(cJSON_GetObjectItem(r.json, "error"), "param"), "status");
	http_resp_free(&r);

	/* Cancel at period end (the default), undone in Stripe's dashboard,
	 * then asked again: Stripe applies the second one too (no stale answer
	 * replayed under a reused idempotency key). */
	char cpath[256], fpath[256];
	snprintf(cpath, sizeof cpath, "/api/subscriptions/%s/cancel", id);
	snprintf(fpath, sizeof fpath, "/_fake/objects/%s", sid);
	for (int round = 0; round < 2; round++) {
		ck_assert_int_eq(http_json("POST", cpath, u.token, NULL, &r), 0);
		ck_assert_msg(r.status == 200, "cancel %d: %ld %s", round, r.status, r.body);
		ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "cancel_at_period_end")));
		http_resp_free(&r);
		cJSON *at_stripe = fake("GET", fpath, NULL);
		ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(at_stripe, "cancel_at_period_end")));
		cJSON_Delete(at_stripe);
		cJSON_Delete(fake("POST", fpath, "{\"cancel_at_period_end\":false}"));
		ck_assert_int_eq(http_json("POST", path, u.token, NULL, &r), 0);
		ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "cancel_at_period_end")));
		http_resp_free(&r);
	}

	snprintf(path, sizeof path, "/api/subscriptions/%s/cancel", id);
	snprintf(body, sizeof body, "{\"at_period_end\": false}");
	ck_assert_int_eq(http_json("POST", path, u.token, body, &r), 0);
	ck_assert_msg(r.status == 200, "cancel: %ld %s", r.status, r.body);
	ck_assert_str_eq(jstr(r.json, "status"), "canceled");
	http_resp_free(&r);

	ck_assert_int_eq(http_json("POST", path, u.token, "{\"at_period_end\": \"yes\"}", &r), 0);
	ck_assert_int_eq(r.status, 422);
	http_resp_free(&r);
	/* Canceled is final: another cancel, either way, is 409. */
	static const char *const again[] = { NULL, "{\"at_period_end\": false}" };
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(http_json("POST", path, u.token, again[i], &r), 0);
		ck_assert_msg(r.status == 409, "cancel again: %ld %s", r.status, r.body);
		ck_assert_str_eq(http_error_code(&r), "invalid_state");
		http_resp_free(&r);
	}
	ck_assert_int_eq(http_json("GET", "/api/subscriptions", u.token, NULL, &r), 0);
	ck_assert_str_eq(jstr(first_item(r.json), "status"), "canceled");
	http_resp_free(&r);
}
END_TEST

START_TEST(others_cannot_touch_it)
{
	struct user a = new_user("owner");
	struct user b = new_user("other");
	cJSON *s = start(&a, "price_basic_monthly", 201);
	char id[64];
	snprintf(id, sizeof id, "%s", jstr(cJSON_GetObjectItem(s, "subscription"), "id"));
	cJSON_Delete(s);
	char path[256];
	struct http_resp r;
	static const char *const actions[] = { "cancel", "sync" };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "/api/subscriptions/%s/%s", id, actions[i]);
		ck_assert_int_eq(http_json("POST", path, b.token, NULL, &r), 0);
		ck_assert_int_eq(r.status, 404);
		ck_assert_str_eq(http_error_code(&r), "not_found");
		http_resp_free(&r);
	}
	ck_assert_int_eq(http_json("POST", "/api/subscriptions/not-a-uuid/sync", a.token, NULL, &r), 0);
	ck_assert_int_eq(r.status, 404);
	http_resp_free(&r);
	cJSON *l = list(&b);
	ck_assert_int_eq((int)cJSON_GetObjectItem(l, "total")->valuedouble, 0);
	cJSON_Delete(l);
}
END_TEST

static struct user racer;

static void *race_start(void *arg)
{
	(void)arg;
	struct http_resp r;
	http_json("POST", "/api/subscriptions", racer.token, "{\"price_id\":\"price_basic_monthly\"}", &r);
	long st = r.status;
	http_resp_free(&r);
	return (void *)st;
}

START_TEST(concurrent_starts_make_one_customer)
{
	racer = new_user("race");
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, race_start, NULL);
	for (int i = 0; i < 4; i++) {
		void *st;
		pthread_join(t[i], &st);
		ck_assert_int_eq((long)st, 201);
	}
	cJSON *objs = fake("GET", "/_fake/objects?type=customer", NULL);
	int mine = 0;
	cJSON *o;
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(objs, "data")) {
		const char *uid = jstr(cJSON_GetObjectItem(o, "metadata"), "user_id");
		if (uid != NULL && strcmp(uid, racer.id) == 0)
			mine++;
	}
	cJSON_Delete(objs);
	ck_assert_int_eq(mine, 1);
	cJSON *l = list(&racer);
	ck_assert_int_eq((int)cJSON_GetObjectItem(l, "total")->valuedouble, 4);
	cJSON_Delete(l);
}
END_TEST

START_TEST(webhook_for_a_subscription_made_elsewhere)
{
	/* A subscription created outside Gala for a known customer appears. */
	struct user u = new_user("outside");
	cJSON *s = start(&u, "price_basic_monthly", 201);
	cJSON_Delete(s);
	PGconn *c = test_db_superuser();
	const char *p[] = { u.id };
	char *cus = test_db_value(c, "SELECT stripe_customer_id FROM users WHERE id = $1", 1, p);
	PQfinish(c);
	char body[512];
	snprintf(body, sizeof body, "{\"id\":\"sub_outside%d\",\"object\":\"subscription\","
	    "\"customer\":\"%s\",\"status\":\"trialing\",\"cancel_at_period_end\":false,"
	    "\"current_period_end\":%lld,\"metadata\":{},\"items\":{\"data\":[{\"price\":"
	    "{\"id\":\"price_pro_monthly\"}}]}}", (int)getpid(), cus, (long long)time(NULL) + 86400);
	char path[256];
	snprintf(path, sizeof path, "/_fake/objects/sub_outside%d", (int)getpid());
	cJSON_Delete(fake("POST", path, body));
	snprintf(path, sizeof path, "sub_outside%d", (int)getpid());
	ck_assert_int_eq(send_event("customer.subscription.created", path, NULL,
	    (long long)time(NULL), NULL), 200);
	cJSON *l = list(&u);
	ck_assert_int_eq((int)cJSON_GetObjectItem(l, "total")->valuedouble, 2);
	cJSON_Delete(l);
	free(cus);
}
END_TEST

/* Requests the Stripe fake saw whose path starts with prefix. */
static int fake_requests(const char *prefix)
{
	char path[256];
	snprintf(path, sizeof path, "/_fake/requests?path_prefix=%s", prefix);
	cJSON *out = fake("GET", path, NULL);
	int n = (int)cJSON_GetObjectItem(out, "count")->valuedouble;
	cJSON_Delete(out);
	return n;
}

/* A forged id that is a path to another endpoint ("../customers/cus_x")
 * in a signed event is ignored, as is a malformed customer; and a forged
 * id already stored is never sent to Stripe. */
START_TEST(forged_stripe_ids_reach_no_endpoint)
{
	struct user u = new_user("forged");
	cJSON *s = start(&u, "price_basic_monthly", 201);
	char id[64];
	snprintf(id, sizeof id, "%s", jstr(cJSON_GetObjectItem(s, "subscription"), "id"));
	cJSON_Delete(s);
	PGconn *c = test_db_superuser();
	const char *p[] = { u.id, id };
	char *cus = test_db_value(c, "SELECT stripe_customer_id FROM users WHERE id = $1", 1, p);
	int customers_before = fake_requests("/v1/customers/");

	/* First the subscription id is forged, then the customer. */
	for (int i = 0; i < 2; i++) {
		char sid[128], cid[128], body[1024];
		if (i == 0) {
			snprintf(sid, sizeof sid, "../customers/%s", cus);
			snprintf(cid, sizeof cid, "%s", cus);
		} else {
			snprintf(sid, sizeof sid, "sub_forged%d", (int)getpid());
			snprintf(cid, sizeof cid, "../customers/%s", cus);
		}
		snprintf(body, sizeof body, "{\"type\":\"customer.subscription.updated\",\"object\":"
		    "{\"id\":\"%s\",\"object\":\"subscription\",\"customer\":\"%s\","
		    "\"status\":\"active\",\"cancel_at_period_end\":false,"
		    "\"current_period_end\":%lld,\"metadata\":{\"user_id\":\"%s\"},"
		    "\"items\":{\"data\":[{\"price\":{\"id\":\"price_pro_monthly\"}}]}}}",
		    sid, cid, (long long)time(NULL) + 86400, u.id);
		cJSON *out = fake("POST", "/_fake/webhooks/send", body);
		ck_assert_msg((long)cJSON_GetObjectItem(out, "status")->valuedouble == 200,
		    "forged %d: %s", i, jstr(out, "body") ? jstr(out, "body") : "(no answer)");
		cJSON_Delete(out);
	}
	cJSON *l = list(&u);
	ck_assert_int_eq((int)cJSON_GetObjectItem(l, "total")->valuedouble, 1);
	ck_assert_str_eq(jstr(first_item(l), "id"), id);
	cJSON_Delete(l);

	/* A forged id stored before ids were checked: sync refuses it with
	 * the generic message and calls no endpoint at all. */
	int subs_before = fake_requests("/v1/subscriptions");
	char *bad = test_db_value(c, "UPDATE subscriptions SET stripe_subscription_id = "
	    "'../customers/' || (SELECT stripe_customer_id FROM users WHERE id = $1) "
	    "WHERE id = $2 RETURNING stripe_subscription_id", 2, p);
	free(bad);
	char path[256];
	snprintf(path, sizeof path, "/api/subscriptions/%s/sync", id);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", path, u.token, NULL, &r), 0);
	ck_assert_msg(r.status == 502, "sync: %ld %s", r.status, r.body);
	ck_assert_str_eq(http_error_code(&r), "stripe_error");
	ck_assert_ptr_null(strstr(r.body, "../"));
	http_resp_free(&r);
	ck_assert_int_eq(fake_requests("/v1/subscriptions"), subs_before);
	ck_assert_int_eq(fake_requests("/v1/customers/"), customers_before);
	PQfinish(c);
	free(cus);
}
END_TEST

/* A start that timed out at Stripe and is retried with the same
 * Idempotency-Key makes one Stripe subscription, not two. */
START_TEST(retried_start_makes_one_stripe_subscription)
{
	struct user u = new_user("retry");
	cJSON_Delete(fake("POST", "/_fake/fail", "{\"method\":\"POST\",\"path\":\"/v1/subscriptions\","
	    "\"mode\":\"hang\",\"delay_ms\":4500,\"after_effect\":true,\"times\":1}"));
	char auth[1100];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", u.token);
	const char *h[] = { auth, "Content-Type: application/json", "Idempotency-Key: start-once-1", NULL };
	struct http_resp r;
	ck_assert_int_eq(http_do("POST", "/api/subscriptions", h, "{\"price_id\":\"price_pro_monthly\"}", &r), 0);
	ck_assert_msg(r.status == 502, "first try: %ld %s", r.status, r.body);
	http_resp_free(&r);
	ck_assert_int_eq(http_do("POST", "/api/subscriptions", h, "{\"price_id\":\"price_pro_monthly\"}", &r), 0);
	ck_assert_msg(r.status == 201, "retry: %ld %s", r.status, r.body);
	http_resp_free(&r);
	cJSON *objs = fake("GET", "/_fake/objects?type=subscription", NULL);
	int mine = 0;
	cJSON *o;
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(objs, "data")) {
		const char *uid = jstr(cJSON_GetObjectItem(o, "metadata"), "user_id");
		if (uid != NULL && strcmp(uid, u.id) == 0)
			mine++;
	}
	cJSON_Delete(objs);
	ck_assert_int_eq(mine, 1);
	cJSON *l = list(&u);
	ck_assert_int_eq((int)cJSON_GetObjectItem(l, "total")->valuedouble, 1);
	cJSON_Delete(l);
}
END_TEST

/* Stripe's events are not capped at MAX_BODY_BYTES: a 200 KB signed event
 * is taken (acknowledged as an ignored type); other routes still refuse it. */
START_TEST(large_webhook_event_is_accepted)
{
	size_t pad = 200 * 1024;
	char *body = malloc(pad + 256);
	int n = snprintf(body, 256, "{\"type\":\"gala.test.large\",\"object\":{\"id\":\"obj_large\",\"pad\":\"");
	memset(body + n, 'x', pad);
	strcpy(body + n + pad, "\"}}");
	cJSON *out = fake("POST", "/_fake/webhooks/send", body);
	ck_assert_msg((long)cJSON_GetObjectItem(out, "status")->valuedouble == 200, "webhook: %s",
	    jstr(out, "body") ? jstr(out, "body") : "(no answer)");
	cJSON_Delete(out);
	struct http_resp r;
	ck_assert_int_eq(http_json("POST", "/api/auth/login", NULL, body, &r), 0);
	ck_assert_int_eq(r.status, 413);
	http_resp_free(&r);
	free(body);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-subscriptions");
	TCase *tc = tcase_create("subscriptions");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, plans_and_validation);
	tcase_add_test(tc, lifecycle_with_webhooks);
	tcase_add_test(tc, immediate_cancel_and_sync);
	tcase_add_test(tc, others_cannot_touch_it);
	tcase_add_test(tc, concurrent_starts_make_one_customer);
	tcase_add_test(tc, webhook_for_a_subscription_made_elsewhere);
	tcase_add_test(tc, forged_stripe_ids_reach_no_endpoint);
	tcase_add_test(tc, retried_start_makes_one_stripe_subscription);
	tcase_add_test(tc, large_webhook_event_is_accepted);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
