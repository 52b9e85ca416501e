#include "autoconf.h"

#include "stripe_matrix.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "testlib.h"

/* The stack's REQUEST_TIMEOUT_SECONDS is 5: a Stripe call, retries
 * included, gets 3 s. A hang outlasts it; "slow" stays inside it, or
 * lands after it (the effect happens once the client has given up). */
static const struct fault faults[] = {
	{ "5xx once", "\"mode\":\"5xx\",\"times\":1", false, false, false },
	{ "5xx", "\"mode\":\"5xx\",\"times\":99", true, false, false },
	{ "5xx after the effect", "\"mode\":\"5xx\",\"times\":99,\"after_effect\":true",
	  true, true, true },
	{ "timeout", "\"mode\":\"hang\",\"delay_ms\":6000", true, false, false },
	{ "timeout after the effect", "\"mode\":\"hang\",\"delay_ms\":6000,\"after_effect\":true",
	  true, true, true },
	{ "slow", "\"mode\":\"slow\",\"delay_ms\":800", false, false, false },
	{ "slow past the time budget", "\"mode\":\"slow\",\"delay_ms\":4000", true, true, true },
	{ "reset", "\"mode\":\"reset\",\"times\":99", true, false, false },
	{ "reset after the effect", "\"mode\":\"reset\",\"times\":99,\"after_effect\":true",
	  true, true, true },
	{ "reset once after the effect", "\"mode\":\"reset\",\"times\":1,\"after_effect\":true",
	  false, true, true },
};
#define NFAULTS (sizeof faults / sizeof faults[0])

static bool applies(const struct step *s, const struct fault *f)
{
	return !f->writes_only || strcmp(s->method, "GET") != 0;
}

int matrix_size(const struct step *steps, size_t nsteps)
{
	int n = 0;
	for (size_t s = 0; s < nsteps; s++)
		for (size_t f = 0; f < NFAULTS; f++)
			n += applies(&steps[s], &faults[f]);
	return n;
}

static void fake_fail(const struct step *s, const struct fault *f)
{
	char rule[512];
	snprintf(rule, sizeof rule, "{\"method\":\"%s\",\"path\":\"%s\",%s}", s->method, s->path,
	    f->rule);
	cJSON_Delete(fake("POST", "/_fake/fail", rule));
}

static void fake_clear(void)
{
	cJSON_Delete(fake("DELETE", "/_fake/fail", NULL));
}

/* Every booking's payments agree with its status, whatever cases ran
 * before on this stack. */
static void assert_consistent(void)
{
	PGconn *db = test_db_superuser();
	PGresult *r = PQexec(db,
	    "SELECT es.id || ' ' || es.status || ' charge ' || coalesce(ch.status, '-') || "
	    "' payout ' || coalesce(po.status, '-') FROM event_services es "
	    "LEFT JOIN payments ch ON ch.event_service_id = es.id "
	    "AND ch.payment_type = 'customer_payment' "
	    "LEFT JOIN payments po ON po.event_service_id = es.id "
	    "AND po.payment_type = 'service_payment' WHERE NOT coalesce(CASE es.status "
	    "WHEN 'requested' THEN ch.id IS NULL AND po.id IS NULL "
	    "WHEN 'accepted' THEN (ch.id IS NULL OR ch.status = 'failed') AND po.id IS NULL "
	    "WHEN 'payment_pending' THEN ch.status = 'requires_payment' "
	    "AND ch.stripe_payment_intent_id IS NOT NULL AND po.id IS NULL "
	    "WHEN 'paid' THEN ch.status = 'succeeded' AND po.id IS NULL "
	    "WHEN 'completed' THEN ch.status = 'succeeded' "
	    "AND (po.id IS NULL OR po.status = 'payout_started') "
	    "WHEN 'released' THEN ch.status = 'succeeded' AND po.status = 'released' "
	    "AND po.stripe_transfer_id IS NOT NULL "
	    "WHEN 'refunded' THEN ch.status = 'refunded' AND ch.stripe_refund_id IS NOT NULL "
	    "AND (po.id IS NULL OR (po.status = 'reversed' "
	    "AND po.stripe_transfer_reversal_id IS NOT NULL)) "
	    "ELSE true END, false)");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_msg(PQntuples(r) == 0, "%d bookings disagree with their payments; first: %s",
	    PQntuples(r), PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	PQfinish(db);
}

void matrix_run(const struct step *steps, size_t nsteps, int index)
{
	const struct step *s = NULL;
	const struct fault *f = NULL;
	for (size_t i = 0; i < nsteps && s == NULL; i++)
		for (size_t k = 0; k < NFAULTS && s == NULL; k++)
			if (applies(&steps[i], &faults[k]) && index-- == 0)
				s = &steps[i], f = &faults[k];
	ck_assert_ptr_nonnull(s);
	struct mcase c = { .fault = f,
		.by_maintenance = s->maintenance_completes && (f - faults) % 2 == 1 };
	char r[17];
	crypto_random_hex(r, 8);
	snprintf(c.key, sizeof c.key, "matrix-%s", r);
	fake_clear();
	s->arrange(&c);
	fake_fail(s, f);
	long long t0 = clock_ms();
	s->act(&c);
	long long took = clock_ms() - t0;
	printf("%-55s x %-28s -> %ld %s (%lld ms)", s->name, f->name, c.status,
	    c.status >= 400 ? fx_str(cJSON_GetObjectItem(c.answer, "error"), "code") : "", took);
	if (f->fails) {
		const cJSON *e = cJSON_GetObjectItem(c.answer, "error");
		ck_assert_msg(c.status == s->error_status && strcmp(fx_str(e, "code"), s->error_code) == 0,
		    "%s x %s: %ld %s, want %ld %s", s->name, f->name, c.status, fx_str(e, "code"),
		    s->error_status, s->error_code);
		ck_assert_msg(*fx_str(e, "message") != '\0' && *fx_str(e, "request_id") != '\0',
		    "%s x %s: not an error envelope", s->name, f->name);
		s->assert_failed(&c);
		fake_clear();
		s->complete(&c);
		printf("; completed by %s", c.by_maintenance ? "gala maintenance" : "a retry");
	}
	printf("\n");
	fflush(stdout);
	s->assert_done(&c);
	assert_consistent();
	cJSON_Delete(c.answer);
	deal_free(&c.d);
}

void matrix_call(struct mcase *c, const char *method, const char *path,
    const struct fx_user *u, const char *body)
{
	char auth[1200], idem[128];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", u->token);
	snprintf(idem, sizeof idem, "Idempotency-Key: %s", c->key);
	const char *h[] = { auth, idem, body ? "Content-Type: application/json" : NULL, NULL };
	struct http_resp r;
	ck_assert_int_eq(http_do(method, path, h, body, &r), 0);
	cJSON_Delete(c->answer);
	c->status = r.status;
	c->answer = r.json;
	r.json = NULL;
	/* A 5xx of the first attempt is never stored: a retry runs again. */
	char *replayed = http_header(&r, "Idempotent-Replayed");
	ck_assert_msg(replayed == NULL || r.status < 500, "a %ld was replayed", r.status);
	free(replayed);
	http_resp_free(&r);
}

void matrix_expect(struct mcase *c, long status)
{
	if (c->status == status)
		return;
	char *s = c->answer ? cJSON_PrintUnformatted(c->answer) : NULL;
	ck_abort_msg("%ld, want %ld: %s", c->status, status, s ? s : "(no JSON)");
}

/* ------------------------------------------------------------ the fake */

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

static const char *member_of(const cJSON *o, const char *member)
{
	if (strncmp(member, "metadata.", 9) == 0)
		return fx_str(cJSON_GetObjectItem(o, "metadata"), member + 9);
	return fx_str(o, member);
}

int fake_count(const char *type, const char *member, const char *value)
{
	char path[128];
	snprintf(path, sizeof path, "/_fake/objects?type=%s", type);
	cJSON *o = fake("GET", path, NULL);
	int n = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "data"))
		n += strcmp(member_of(it, member), value) == 0;
	cJSON_Delete(o);
	return n;
}

int fake_wait_count(const char *type, const char *member, const char *value, int want)
{
	int n = fake_count(type, member, value);
	for (int i = 0; i < 30 && n < want; i++) {
		usleep(100000);
		n = fake_count(type, member, value);
	}
	return n;
}

cJSON *fake_find(const char *type, const char *member, const char *value)
{
	char path[128];
	snprintf(path, sizeof path, "/_fake/objects?type=%s", type);
	cJSON *o = fake("GET", path, NULL);
	cJSON *found = NULL;
	int n = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "data"))
		if (strcmp(member_of(it, member), value) == 0 && n++ == 0)
			found = cJSON_Duplicate(it, 1);
	cJSON_Delete(o);
	ck_assert_msg(n == 1, "%d %s objects with %s = %s at the fake, want 1", n, type, member,
	    value);
	return found;
}

int fake_calls(const char *method, const char *prefix, const char *needle, const char *key)
{
	char *esc = curl_easy_escape(NULL, prefix, 0);
	char path[512];
	snprintf(path, sizeof path, "/_fake/requests?method=%s&path_prefix=%s", method, esc);
	curl_free(esc);
	cJSON *o = fake("GET", path, NULL);
	int n = 0;
	const cJSON *rec;
	cJSON_ArrayForEach(rec, cJSON_GetObjectItem(o, "requests")) {
		const char *sent = fx_str(cJSON_GetObjectItem(rec, "headers"), "Idempotency-Key");
		n += (strstr(fx_str(rec, "path"), needle) != NULL ||
		    strstr(fx_str(rec, "query"), needle) != NULL ||
		    strstr(fx_str(rec, "body"), needle) != NULL) &&
		    (key == NULL || strcmp(sent, key) == 0);
	}
	cJSON_Delete(o);
	return n;
}

int assert_one_key(const char *method, const char *prefix, const char *needle, const char *key)
{
	int all = fake_calls(method, prefix, needle, NULL);
	int keyed = fake_calls(method, prefix, needle, key);
	ck_assert_msg(all >= 1 && keyed == all, "%d of the %d requests %s %s* about %s carried "
	    "the key %s", keyed, all, method, prefix, needle, key);
	return all;
}

void fake_event(const char *type, const char *object_id)
{
	char body[512];
	snprintf(body, sizeof body, "{\"type\":\"%s\",\"object\":\"%s\"}", type, object_id);
	cJSON *out = fake("POST", "/_fake/webhooks/send", body);
	const cJSON *st = cJSON_GetObjectItem(out, "status");
	ck_assert_msg(cJSON_IsNumber(st) && st->valuedouble == 200, "webhook %s: %s", type,
	    fx_str(out, "body"));
	cJSON_Delete(out);
}

/* --------------------------------------------------------------- deals */

const char *path_of(const char *fmt, const char *id)
{
	static char bufs[4][256];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, sizeof bufs[0], fmt, id);
	return b;
}

char *db_value1(const char *sql, const char *p1)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { p1 };
	char *v = test_db_value(c, sql, 1, p);
	PQfinish(c);
	return v;
}

void assert_booking(const char *booking_id, const char *want)
{
	fx_assert_status(booking_id, want);
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

void backdate_payout(const char *booking_id)
{
	fx_sql("UPDATE payments SET updated_at = now() - interval '2 minutes', "
	    "created_at = now() - interval '2 minutes' WHERE event_service_id = $1 "
	    "AND payment_type = 'service_payment'", booking_id, NULL, NULL);
}

void run_maintenance(void)
{
	ck_assert_int_eq(stack_ctl("gala maintenance >/dev/null 2>&1"), 0);
}

static void onboard(struct deal *d)
{
	cJSON *r = fx_expect(200, "POST", path_of("/api/providers/%s/stripe-onboarding",
	    d->provider_id), &d->provider, NULL);
	snprintf(d->acct, sizeof d->acct, "%s", fx_str(r, "stripe_account_id"));
	cJSON_Delete(r);
	cJSON_Delete(fake("POST", path_of("/_fake/accounts/%s/complete", d->acct), "{}"));
	fake_event("account.updated", d->acct);
}

static void pay(struct deal *d)
{
	cJSON *r = fx_expect(200, "POST", path_of("/api/event-services/%s/pay", d->id), &d->owner,
	    NULL);
	snprintf(d->pi, sizeof d->pi, "%s",
	    fx_str(cJSON_GetObjectItem(r, "payment"), "stripe_payment_intent_id"));
	cJSON_Delete(r);
	cJSON_Delete(fake("POST", path_of("/_fake/payment_intents/%s/succeed", d->pi), "{}"));
	fake_event("payment_intent.succeeded", d->pi);
	assert_booking(d->id, "paid");
}

void deal_make(struct deal *d, bool onboarded, bool paid, bool completed)
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
	/* The event is over: no payout hold. */
	fx_sql("UPDATE events SET starts_at = now() - interval '29 hours', "
	    "ends_at = now() - interval '24 hours' WHERE id = $1", d->event_id, NULL, NULL);
}

void deal_free(struct deal *d)
{
	free(d->provider_id);
	free(d->event_id);
	free(d->id);
	memset(d, 0, sizeof *d);
}
