#include "autoconf.h"

#include "money_fixtures.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "testlib.h"

cJSON *fake(const char *method, const char *path, const char *body)
{
	char url[1024];
	snprintf(url, sizeof url, "%s%s", test_env("TEST_STRIPE_URL"), path);
	const char *h[] = { "Content-Type: application/json", NULL };
	struct http_resp r;
	ck_assert_int_eq(http_do(method, url, h, body, &r), 0);
	ck_assert_msg(r.status == 200, "fake %s %s: %ld %s", method, path, r.status, r.body);
	cJSON *j = r.json;
	r.json = NULL;
	http_resp_free(&r);
	return j;
}

void fake_fail(const char *rule_json)
{
	cJSON_Delete(fake("POST", "/_fake/fail", rule_json));
}

int fake_count(const char *type, const char *member, const char *value)
{
	char path[128];
	snprintf(path, sizeof path, "/_fake/objects?type=%s", type);
	cJSON *o = fake("GET", path, NULL);
	int n = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "data"))
		n += strcmp(fx_str(it, member), value) == 0;
	cJSON_Delete(o);
	return n;
}

cJSON *fake_find(const char *type, const char *member, const char *value)
{
	char path[128];
	snprintf(path, sizeof path, "/_fake/objects?type=%s", type);
	cJSON *o = fake("GET", path, NULL);
	cJSON *found = NULL;
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "data"))
		if (strcmp(fx_str(it, member), value) == 0)
			found = cJSON_Duplicate(it, 1);
	cJSON_Delete(o);
	ck_assert_msg(found != NULL, "no %s with %s = %s at the fake", type, member, value);
	return found;
}

int fake_requests(const char *method, const char *key)
{
	char *esc = curl_easy_escape(NULL, key, 0);
	char path[512];
	snprintf(path, sizeof path, "/_fake/requests?method=%s&idempotency_key=%s", method, esc);
	curl_free(esc);
	cJSON *o = fake("GET", path, NULL);
	int n = (int)cJSON_GetObjectItem(o, "count")->valuedouble;
	cJSON_Delete(o);
	return n;
}

long send_event(const char *type, const char *object_id, const char *event_id,
    char **app_body)
{
	char body[512];
	if (event_id != NULL)
		snprintf(body, sizeof body, "{\"type\":\"%s\",\"object\":\"%s\",\"id\":\"%s\"}", type,
		    object_id, event_id);
	else
		snprintf(body, sizeof body, "{\"type\":\"%s\",\"object\":\"%s\"}", type, object_id);
	cJSON *out = fake("POST", "/_fake/webhooks/send", body);
	const cJSON *st = cJSON_GetObjectItem(out, "status");
	ck_assert_msg(cJSON_IsNumber(st), "webhook not delivered: %s", fx_str(out, "error"));
	long status = (long)st->valuedouble;
	if (app_body != NULL)
		*app_body = strdup(fx_str(out, "body"));
	cJSON_Delete(out);
	return status;
}

char *db_value1(const char *sql, const char *p1)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { p1 };
	char *v = test_db_value(c, sql, 1, p);
	PQfinish(c);
	return v;
}

void assert_status(const char *booking_id, const char *want)
{
	char *s = fx_booking_status(booking_id);
	ck_assert_msg(s != NULL && strcmp(s, want) == 0, "booking %s is %s, want %s", booking_id,
	    s ? s : "(none)", want);
	free(s);
}

void assert_payment(const char *booking_id, const char *type, const char *want)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { booking_id, type };
	char *s = test_db_value(c, "SELECT status FROM payments WHERE event_service_id = $1 "
	    "AND payment_type = $2", 2, p);
	PQfinish(c);
	ck_assert_msg((s == NULL && want == NULL) || (s != NULL && want != NULL &&
	    strcmp(s, want) == 0), "%s of %s is %s, want %s", type, booking_id, s ? s : "(none)",
	    want ? want : "(none)");
	free(s);
}

const char *path_of(const char *fmt, const char *id)
{
	static char bufs[4][256];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, sizeof bufs[0], fmt, id);
	return b;
}

void deal_free(struct deal *d)
{
	free(d->provider_id);
	free(d->event_id);
	free(d->id);
}

/* The provider connects its Stripe account; the fake completes the
 * onboarding and tells the app with account.updated. */
static void onboard(struct deal *d)
{
	cJSON *r = fx_expect(200, "POST", path_of("/api/providers/%s/stripe-onboarding",
	    d->provider_id), &d->provider, NULL);
	snprintf(d->acct, sizeof d->acct, "%s", fx_str(r, "stripe_account_id"));
	ck_assert_msg(strncmp(d->acct, "acct_", 5) == 0, "account %s", d->acct);
	ck_assert_msg(strncmp(fx_str(r, "url"), "https://", 8) == 0, "url %s", fx_str(r, "url"));
	cJSON_Delete(r);
	cJSON_Delete(fake("POST", path_of("/_fake/accounts/%s/complete", d->acct), "{}"));
	ck_assert_int_eq(send_event("account.updated", d->acct, NULL, NULL), 200);
	char *enabled = db_value1("SELECT payouts_enabled FROM service_providers WHERE id = $1",
	    d->provider_id);
	ck_assert_str_eq(enabled, "t");
	free(enabled);
}

/* Pays through the API and has Stripe confirm it: booking paid. */
static void pay(struct deal *d)
{
	cJSON *r = fx_expect(200, "POST", path_of("/api/event-services/%s/pay", d->id), &d->owner,
	    NULL);
	ck_assert_int_eq(cJSON_GetArraySize(r), 2);     /* payment, client_secret */
	const cJSON *p = cJSON_GetObjectItem(r, "payment");
	snprintf(d->pi, sizeof d->pi, "%s", fx_str(p, "stripe_payment_intent_id"));
	ck_assert_msg(strncmp(d->pi, "pi_", 3) == 0, "payment intent %s", d->pi);
	ck_assert_str_eq(fx_str(p, "status"), "requires_payment");
	ck_assert_msg(strstr(fx_str(r, "client_secret"), "_secret_") != NULL, "no client secret");
	cJSON_Delete(r);
	assert_status(d->id, "payment_pending");
	cJSON_Delete(fake("POST", path_of("/_fake/payment_intents/%s/succeed", d->pi), "{}"));
	ck_assert_int_eq(send_event("payment_intent.succeeded", d->pi, NULL, NULL), 200);
	assert_status(d->id, "paid");
	assert_payment(d->id, "customer_payment", "succeeded");
}

void event_ends(const struct deal *d, int ago_hours)
{
	char h[16];
	snprintf(h, sizeof h, "%d", ago_hours);
	fx_sql("UPDATE events SET starts_at = now() - make_interval(hours => $2::int + 5), "
	    "ends_at = now() - make_interval(hours => $2::int) WHERE id = $1", d->event_id, h, NULL);
}

void deal(struct deal *d, bool onboarded, bool paid, bool completed)
{
	memset(d, 0, sizeof *d);
	fx_user(&d->owner, "customer", true);
	fx_user(&d->provider, "provider", true);
	fx_user(&d->admin, "admin", true);
	d->provider_id = fx_provider(&d->provider, "music", "Lisbon");
	d->event_id = fx_event(&d->owner);
	d->id = fx_booking(&d->owner, d->event_id, d->provider_id, 10000);
	cJSON_Delete(fx_expect(200, "POST", path_of("/api/event-services/%s/accept", d->id),
	    &d->provider, NULL));
	if (onboarded)
		onboard(d);
	if (paid)
		pay(d);
	if (completed)
		cJSON_Delete(fx_expect(200, "POST", path_of("/api/event-services/%s/complete", d->id),
		    &d->owner, NULL));
	event_ends(d, 24);
}