/* End-to-end tests of the marketplace through nginx: the booking flow up to
 * payment, the state machine's refusals, concurrent transitions, mass
 * assignment, validation, lists and the payments read side. (Who may see
 * what: check_e2e_bola.c.) */
#include "autoconf.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "db/db.h"
#include "market_fixtures.h"
#include "services/bookings.h"

static void future(char *out, size_t len, long seconds)
{
	time_t t = time(NULL) + seconds;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void assert_keys(const cJSON *o, const char *const *keys)
{
	int n = 0;
	for (const cJSON *m = o->child; m != NULL; m = m->next)
		n++;
	int want = 0;
	for (const char *const *k = keys; *k != NULL; k++, want++)
		ck_assert_msg(cJSON_GetObjectItemCaseSensitive(o, *k) != NULL, "no member %s", *k);
	ck_assert_int_eq(n, want);
}

static const char *const provider_keys[] = { "id", "user_id", "business_name", "category",
	"description", "city", "stripe_account_id", "payouts_enabled", "created_at", NULL };
static const char *const event_keys[] = { "id", "owner_id", "title", "description", "city",
	"venue", "starts_at", "ends_at", "budget_cents", "currency", "status", "created_at",
	"updated_at", NULL };
static const char *const booking_keys[] = { "id", "event_id", "service_provider_id",
	"description", "amount_cents", "currency", "platform_fee_cents", "status", "created_at",
	"updated_at", NULL };
static bool is_utc_time(const char *s)
{
	return strlen(s) == 20 && s[10] == 'T' && s[19] == 'Z';
}

static char *path_of(const char *fmt, const char *id)
{
	static char buf[4][160];
	static int next;
	char *b = buf[next++ % 4];
	snprintf(b, sizeof buf[0], fmt, id);
	return b;
}

static const char *act_path(const char *booking, const char *action)
{
	static char buf[4][160];
	static int next;
	char *b = buf[next++ % 4];
	snprintf(b, sizeof buf[0], "/api/event-services/%s/%s", booking, action);
	return b;
}

/* The README's walkthrough: accounts made by registering, then the whole
 * way up to payment, with the objects' shapes. */
START_TEST(booking_flow_up_to_payment)
{
	struct fx_user cust, prov;
	fx_register(&cust, "customer");
	fx_register(&prov, "provider");

	cJSON *p = fx_expect(201, "POST", "/api/providers", &prov,
	    "{\"business_name\":\"  Sound & Light  \",\"category\":\"music\","
	    "\"description\":\"DJ and PA for up to 300 guests\",\"city\":\"Lisbon\"}");
	assert_keys(p, provider_keys);
	ck_assert_str_eq(fx_str(p, "business_name"), "Sound & Light");
	ck_assert_str_eq(fx_str(p, "user_id"), prov.id);
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(p, "stripe_account_id")));
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(p, "payouts_enabled")));
	ck_assert(is_utc_time(fx_str(p, "created_at")));
	char *provider_id = strdup(fx_str(p, "id"));
	cJSON_Delete(p);
	/* One profile per user. */
	fx_expect_error(409, "profile_exists", NULL, "POST", "/api/providers", &prov,
	    "{\"business_name\":\"Again\",\"category\":\"music\",\"city\":\"Porto\"}");

	char starts[32], ends[32], body[1024];
	future(starts, sizeof starts, 30 * 86400);
	future(ends, sizeof ends, 30 * 86400 + 5 * 3600);
	snprintf(body, sizeof body, "{\"title\":\"Ana & Rui's wedding\",\"description\":\"150 guests\","
	    "\"city\":\"Lisbon\",\"venue\":\"Quinta do Lago\",\"starts_at\":\"%s\",\"ends_at\":\"%s\","
	    "\"budget_cents\":2500000}", starts, ends);
	struct http_resp hr;
	ck_assert_int_eq(http_json("POST", "/api/events", cust.token, body, &hr), 0);
	ck_assert_int_eq(hr.status, 201);
	cJSON *ev = hr.json;
	hr.json = NULL;
	char *location = http_header(&hr, "Location");
	http_resp_free(&hr);
	assert_keys(ev, event_keys);
	ck_assert_str_eq(fx_str(ev, "status"), "draft");
	ck_assert_str_eq(fx_str(ev, "currency"), "usd");
	ck_assert_str_eq(fx_str(ev, "owner_id"), cust.id);
	ck_assert_str_eq(fx_str(ev, "starts_at"), starts);
	ck_assert_str_eq(fx_str(ev, "ends_at"), ends);
	ck_assert_int_eq((long long)cJSON_GetObjectItem(ev, "budget_cents")->valuedouble, 2500000);
	char *event_id = strdup(fx_str(ev, "id"));
	cJSON_Delete(ev);
	ck_assert_str_eq(location, path_of("/api/events/%s", event_id));
	free(location);

	cJSON *pub = fx_expect(200, "PATCH", path_of("/api/events/%s", event_id), &cust,
	    "{\"status\":\"published\"}");
	ck_assert_str_eq(fx_str(pub, "status"), "published");
	ck_assert_str_eq(fx_str(pub, "title"), "Ana & Rui's wedding");
	cJSON_Delete(pub);

	/* Before any booking the provider cannot see the event. */
	fx_expect_error(404, "not_found", NULL, "GET", path_of("/api/events/%s", event_id), &prov, NULL);

	snprintf(body, sizeof body, "{\"service_provider_id\":\"%s\",\"description\":\"DJ set, "
	    "18:00 to 02:00\",\"amount_cents\":180099}", provider_id);
	cJSON *bk = fx_expect(201, "POST", path_of("/api/events/%s/services", event_id), &cust, body);
	assert_keys(bk, booking_keys);
	ck_assert_str_eq(fx_str(bk, "status"), "requested");
	ck_assert_str_eq(fx_str(bk, "currency"), "usd");
	ck_assert_str_eq(fx_str(bk, "event_id"), event_id);
	ck_assert_str_eq(fx_str(bk, "service_provider_id"), provider_id);
	/* floor(180099 * 1000 / 10000) */
	ck_assert_int_eq((long long)cJSON_GetObjectItem(bk, "platform_fee_cents")->valuedouble, 18009);
	char *booking = strdup(fx_str(bk, "id"));
	cJSON_Delete(bk);
	ck_assert_int_eq(fx_audit_count("booking.requested", booking), 1);

	/* Now the provider sees the event and its own booking. */
	cJSON_Delete(fx_expect(200, "GET", path_of("/api/events/%s", event_id), &prov, NULL));
	cJSON *list = fx_expect(200, "GET", path_of("/api/events/%s/services", event_id), &prov, NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(list, "total")->valueint, 1);
	cJSON_Delete(list);

	cJSON *acc = fx_expect(200, "POST", act_path(booking, "accept"), &prov, NULL);
	ck_assert_str_eq(fx_str(acc, "status"), "accepted");
	assert_keys(acc, booking_keys);
	cJSON_Delete(acc);
	cJSON *can = fx_expect(200, "POST", act_path(booking, "cancel"), &cust, NULL);
	ck_assert_str_eq(fx_str(can, "status"), "cancelled");
	cJSON_Delete(can);
	ck_assert_int_eq(fx_audit_count("booking.accepted", booking), 1);
	ck_assert_int_eq(fx_audit_count("booking.cancelled", booking), 1);

	/* A second booking the provider declines, a third it cancels. */
	char *b2 = fx_booking(&cust, event_id, provider_id, 5000);
	cJSON *dec = fx_expect(200, "POST", act_path(b2, "decline"), &prov, NULL);
	ck_assert_str_eq(fx_str(dec, "status"), "declined");
	cJSON_Delete(dec);
	char *b3 = fx_booking(&cust, event_id, provider_id, 5000);
	cJSON *c3 = fx_expect(200, "POST", act_path(b3, "cancel"), &prov, NULL);
	ck_assert_str_eq(fx_str(c3, "status"), "cancelled");
	cJSON_Delete(c3);
	ck_assert_int_eq(fx_audit_count("booking.declined", b2), 1);

	/* The audit rows name who acted, from the request. */
	PGconn *c = test_db_superuser();
	const char *q[] = { booking };
	char *actor = test_db_value(c, "SELECT actor_user_id FROM audit_logs WHERE action = "
	    "'booking.accepted' AND metadata->>'event_service_id' = $1", 1, q);
	char *rid = test_db_value(c, "SELECT request_id FROM audit_logs WHERE action = "
	    "'booking.accepted' AND metadata->>'event_service_id' = $1", 1, q);
	PQfinish(c);
	ck_assert_str_eq(actor, prov.id);
	ck_assert_ptr_nonnull(rid);
	free(actor);
	free(rid);
	free(b2);
	free(b3);
	free(booking);
	free(event_id);
	free(provider_id);
}
END_TEST

START_TEST(roles_and_verification)
{
	struct fx_user cust, unverified, prov, admin;
	fx_user(&cust, "customer", true);
	fx_user(&unverified, "customer", false);
	fx_user(&prov, "provider", true);
	fx_user(&admin, "admin", true);
	char starts[32], body[256];
	future(starts, sizeof starts, 86400);
	snprintf(body, sizeof body, "{\"title\":\"T\",\"starts_at\":\"%s\"}", starts);

	fx_expect_error(403, "email_not_verified", NULL, "POST", "/api/events", &unverified, body);
	fx_expect_error(403, "forbidden", NULL, "POST", "/api/events", &prov, body);
	cJSON_Delete(fx_expect(201, "POST", "/api/events", &admin, body));
	fx_expect_error(403, "forbidden", NULL, "POST", "/api/providers", &cust,
	    "{\"business_name\":\"B\",\"category\":\"music\",\"city\":\"X\"}");
	fx_expect_error(403, "forbidden", NULL, "POST", "/api/providers", &admin,
	    "{\"business_name\":\"B\",\"category\":\"music\",\"city\":\"X\"}");
	fx_expect_error(401, "authentication_required", NULL, "GET", "/api/events", NULL, NULL);

	/* A customer whose address is no longer verified cannot book. */
	char *event = fx_event(&cust);
	char *provider = fx_provider(&prov, "catering", "Porto");
	fx_sql("UPDATE users SET email_verified = false WHERE id = $1", cust.id, NULL, NULL);
	snprintf(body, sizeof body, "{\"service_provider_id\":\"%s\",\"description\":\"x\","
	    "\"amount_cents\":100}", provider);
	fx_expect_error(403, "email_not_verified", NULL, "POST",
	    path_of("/api/events/%s/services", event), &cust, body);
	fx_sql("UPDATE users SET email_verified = true WHERE id = $1", cust.id, NULL, NULL);
	free(fx_booking(&cust, event, provider, 100));
	free(event);
	free(provider);

	/* A provider profile and its Stripe account wait for a verified
	 * address: whoever registered someone else's cannot route payouts. */
	struct fx_user unverified_prov;
	fx_user(&unverified_prov, "provider", false);
	fx_expect_error(403, "email_not_verified", NULL, "POST", "/api/providers", &unverified_prov,
	    "{\"business_name\":\"B\",\"category\":\"music\",\"city\":\"X\"}");
	/* A profile made before the rule cannot be onboarded either. */
	fx_sql("INSERT INTO service_providers (user_id, business_name, category, city) "
	    "VALUES ($1, 'Early', 'music', 'X')", unverified_prov.id, NULL, NULL);
	char *early = fx_provider_of(&unverified_prov);
	fx_expect_error(403, "email_not_verified", NULL, "POST",
	    path_of("/api/providers/%s/stripe-onboarding", early), &unverified_prov, NULL);
	free(early);

	/* A revoked token: the session check travels with the create's
	 * INSERT and the limiter's count, and its failure keeps both from
	 * happening. */
	PGconn *c = test_db_superuser();
	const char *who[] = { cust.id };
	char *before = test_db_value(c, "SELECT count(*) FROM events WHERE owner_id = $1", 1, who);
	cJSON_Delete(fx_expect(204, "POST", "/api/auth/logout", &cust, NULL));
	char *bucket = test_db_value(c, "SELECT coalesce((SELECT tat::text FROM rate_limits "
	    "WHERE key = 'write:user:' || $1), 'none')", 1, who);
	snprintf(body, sizeof body, "{\"title\":\"T\",\"starts_at\":\"%s\"}", starts);
	fx_expect_error(401, "invalid_token", NULL, "POST", "/api/events", &cust, body);
	char *after = test_db_value(c, "SELECT count(*) FROM events WHERE owner_id = $1", 1, who);
	char *bucket_after = test_db_value(c, "SELECT coalesce((SELECT tat::text FROM rate_limits "
	    "WHERE key = 'write:user:' || $1), 'none')", 1, who);
	ck_assert_str_eq(after, before);
	ck_assert_str_eq(bucket_after, bucket);
	PQfinish(c);
	free(before);
	free(after);
	free(bucket);
	free(bucket_after);
}
END_TEST

START_TEST(illegal_transitions_are_409_naming_the_state)
{
	struct fx_user cust, prov, admin;
	fx_user(&cust, "customer", true);
	fx_user(&prov, "provider", true);
	fx_user(&admin, "admin", true);
	char *provider = fx_provider(&prov, "photography", "Faro");
	char *event = fx_event(&cust);

	/* accept of a declined booking */
	char *b = fx_booking(&cust, event, provider, 1000);
	cJSON_Delete(fx_expect(200, "POST", act_path(b, "decline"), &prov, NULL));
	cJSON *j = fx_expect(409, "POST", act_path(b, "accept"), &prov, NULL);
	ck_assert_str_eq(fx_str(cJSON_GetObjectItem(j, "error"), "code"), "invalid_state");
	ck_assert_ptr_nonnull(strstr(fx_str(cJSON_GetObjectItem(j, "error"), "message"), "declined"));
	cJSON_Delete(j);
	fx_expect_error(409, "invalid_state", NULL, "POST", act_path(b, "decline"), &prov, NULL);
	fx_expect_error(409, "invalid_state", NULL, "POST", act_path(b, "cancel"), &cust, NULL);
	fx_expect_error(409, "invalid_state", NULL, "POST", act_path(b, "complete"), &cust, NULL);
	fx_assert_status(b, "declined");
	free(b);

	/* complete of an unpaid one; the owner may not accept; no double accept */
	b = fx_booking(&cust, event, provider, 1000);
	fx_expect_error(403, "forbidden", NULL, "POST", act_path(b, "accept"), &cust, NULL);
	fx_expect_error(403, "forbidden", NULL, "POST", act_path(b, "accept"), &admin, NULL);
	fx_expect_error(409, "invalid_state", NULL, "POST", act_path(b, "complete"), &cust, NULL);
	cJSON_Delete(fx_expect(200, "POST", act_path(b, "accept"), &prov, NULL));
	fx_expect_error(409, "invalid_state", NULL, "POST", act_path(b, "accept"), &prov, NULL);
	j = fx_expect(409, "POST", act_path(b, "complete"), &cust, NULL);
	ck_assert_ptr_nonnull(strstr(fx_str(cJSON_GetObjectItem(j, "error"), "message"), "accepted"));
	cJSON_Delete(j);
	fx_expect_error(403, "forbidden", NULL, "POST", act_path(b, "complete"), &prov, NULL);
	fx_expect_error(403, "forbidden", NULL, "POST", act_path(b, "cancel"), &admin, NULL);
	/* payment_pending may still be cancelled (by either side) */
	ck_assert_int_eq(fx_transition(b, BOOKING_PAY, BOOKING_ACTOR_OWNER, &cust), GE_OK);
	fx_expect_error(409, "invalid_state", NULL, "POST", act_path(b, "complete"), &cust, NULL);
	cJSON_Delete(fx_expect(200, "POST", act_path(b, "cancel"), &prov, NULL));
	fx_assert_status(b, "cancelled");
	ck_assert_int_eq(fx_audit_count("booking.payment_pending", b), 1);
	free(b);

	/* paid: complete works (owner); cancel refunds the charge, and this
	 * booking was marked paid without one (the money tests cover refunds) */
	b = fx_booking(&cust, event, provider, 1000);
	fx_booking_paid(b, &cust, &prov, false);
	fx_expect_error(409, "invalid_state", NULL, "POST", act_path(b, "accept"), &prov, NULL);
	fx_expect_error(409, "invalid_state", NULL, "POST", act_path(b, "cancel"), &cust, NULL);
	fx_assert_status(b, "paid");
	cJSON *done = fx_expect(200, "POST", act_path(b, "complete"), &cust, NULL);
	ck_assert_str_eq(fx_str(done, "status"), "completed");
	cJSON_Delete(done);
	/* completed: cancelling means a refund, which is admin only */
	fx_expect_error(403, "forbidden", NULL, "POST", act_path(b, "cancel"), &cust, NULL);
	fx_expect_error(403, "forbidden", NULL, "POST", act_path(b, "cancel"), &prov, NULL);
	fx_expect_error(409, "invalid_state", NULL, "POST", act_path(b, "complete"), &cust, NULL);
	ck_assert_int_eq(fx_audit_count("booking.paid", b), 1);
	ck_assert_int_eq(fx_audit_count("booking.completed", b), 1);
	free(b);

	/* an admin may complete a paid booking */
	b = fx_booking(&cust, event, provider, 1000);
	fx_booking_paid(b, &cust, &prov, false);
	cJSON_Delete(fx_expect(200, "POST", act_path(b, "complete"), &admin, NULL));
	/* released: also no cancel */
	ck_assert_int_eq(fx_transition(b, BOOKING_RELEASE, BOOKING_ACTOR_ADMIN, &admin), GE_OK);
	fx_expect_error(403, "forbidden", NULL, "POST", act_path(b, "cancel"), &cust, NULL);
	free(b);
	free(event);
	free(provider);
}
END_TEST

START_TEST(event_cancel_cascades_and_waits_for_money)
{
	struct fx_user cust, prov;
	fx_user(&cust, "customer", true);
	fx_user(&prov, "provider", true);
	char *provider = fx_provider(&prov, "decor", "Braga");
	const char *blocking[] = { "payment_pending", "paid", "completed" };
	for (int i = 0; i < 3; i++) {
		char *event = fx_event(&cust);
		char *b = fx_booking(&cust, event, provider, 2000);
		cJSON_Delete(fx_expect(200, "POST", act_path(b, "accept"), &prov, NULL));
		ck_assert_int_eq(fx_transition(b, BOOKING_PAY, BOOKING_ACTOR_OWNER, &cust), GE_OK);
		if (i >= 1)
			ck_assert_int_eq(fx_transition(b, BOOKING_PAYMENT_SUCCEEDED, BOOKING_ACTOR_SYSTEM,
			    NULL), GE_OK);
		if (i == 2)
			cJSON_Delete(fx_expect(200, "POST", act_path(b, "complete"), &cust, NULL));
		fx_assert_status(b, blocking[i]);
		cJSON *j = fx_expect(409, "DELETE", path_of("/api/events/%s", event), &cust, NULL);
		ck_assert_ptr_nonnull(strstr(fx_str(cJSON_GetObjectItem(j, "error"), "message"),
		    blocking[i]));
		cJSON_Delete(j);
		cJSON *ev = fx_expect(200, "GET", path_of("/api/events/%s", event), &cust, NULL);
		ck_assert_str_ne(fx_str(ev, "status"), "cancelled");
		cJSON_Delete(ev);
		free(b);
		free(event);
	}
	/* Open bookings are cancelled with the event; settled ones stay. */
	char *event = fx_event(&cust);
	char *requested = fx_booking(&cust, event, provider, 100);
	char *accepted = fx_booking(&cust, event, provider, 100);
	char *declined = fx_booking(&cust, event, provider, 100);
	cJSON_Delete(fx_expect(200, "POST", act_path(accepted, "accept"), &prov, NULL));
	cJSON_Delete(fx_expect(200, "POST", act_path(declined, "decline"), &prov, NULL));
	struct http_resp r;
	ck_assert_int_eq(http_json("DELETE", path_of("/api/events/%s", event), cust.token, NULL, &r), 0);
	ck_assert_int_eq(r.status, 204);
	ck_assert_uint_eq(r.body_len, 0);
	http_resp_free(&r);
	fx_assert_status(requested, "cancelled");
	fx_assert_status(accepted, "cancelled");
	fx_assert_status(declined, "declined");
	ck_assert_int_eq(fx_audit_count("booking.cancelled", requested), 1);
	ck_assert_int_eq(fx_audit_count("booking.cancelled", accepted), 1);
	cJSON *ev = fx_expect(200, "GET", path_of("/api/events/%s", event), &cust, NULL);
	ck_assert_str_eq(fx_str(ev, "status"), "cancelled");
	cJSON_Delete(ev);
	/* Again: nothing left to do. A cancelled event takes no changes. */
	ck_assert_int_eq(http_json("DELETE", path_of("/api/events/%s", event), cust.token, NULL, &r), 0);
	ck_assert_int_eq(r.status, 204);
	http_resp_free(&r);
	fx_expect_error(409, "invalid_state", NULL, "PATCH", path_of("/api/events/%s", event), &cust,
	    "{\"title\":\"Back on\"}");
	char body[256];
	snprintf(body, sizeof body, "{\"service_provider_id\":\"%s\",\"description\":\"x\","
	    "\"amount_cents\":100}", provider);
	fx_expect_error(409, "invalid_state", NULL, "POST", path_of("/api/events/%s/services", event),
	    &cust, body);
	fx_expect_error(409, "invalid_state", NULL, "POST", act_path(requested, "accept"), &prov, NULL);
	free(requested);
	free(accepted);
	free(declined);
	free(event);
	free(provider);
}
END_TEST

/* ---------------------------------------------------------------- races */

#define RACERS 20

struct racer {
	pthread_barrier_t *barrier;
	char path[160];
	const char *token;
	long status;
	char result[32];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->barrier);
	struct http_resp hr;
	if (http_json("POST", r->path, r->token, NULL, &hr) == 0) {
		r->status = hr.status;
		const cJSON *s = cJSON_GetObjectItem(hr.json, "status");
		snprintf(r->result, sizeof r->result, "%s", cJSON_IsString(s) ? s->valuestring : "");
	}
	http_resp_free(&hr);
	return NULL;
}

/* Sends RACERS requests at once: racer i takes actions[i % n] as
 * tokens[i % n]. Returns how many answered 200 (the winners, their
 * results in results[]). Every other answer must be 409 invalid_state. */
static int run_race(const char *booking, const char *const *actions,
    const char *const *tokens, int n, char results[][32])
{
	pthread_barrier_t barrier;
	pthread_barrier_init(&barrier, NULL, RACERS);
	struct racer racers[RACERS];
	pthread_t th[RACERS];
	for (int i = 0; i < RACERS; i++) {
		racers[i] = (struct racer){ .barrier = &barrier, .token = tokens[i % n] };
		snprintf(racers[i].path, sizeof racers[i].path, "/api/event-services/%s/%s", booking,
		    actions[i % n]);
		pthread_create(&th[i], NULL, race, &racers[i]);
	}
	int won = 0, lost = 0;
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		if (racers[i].status == 200)
			snprintf(results[won++], 32, "%s", racers[i].result);
		else if (racers[i].status == 409)
			lost++;
		else
			ck_abort_msg("%s answered %ld", racers[i].path, racers[i].status);
	}
	pthread_barrier_destroy(&barrier);
	ck_assert_int_eq(won + lost, RACERS);
	return won;
}

static int transitions_audited(const char *booking)
{
	return fx_audit_count("booking.accepted", booking) + fx_audit_count("booking.declined", booking) +
	    fx_audit_count("booking.cancelled", booking);
}

START_TEST(concurrent_transitions_have_one_winner)
{
	struct fx_user cust, prov;
	fx_user(&cust, "customer", true);
	fx_user(&prov, "provider", true);
	char *provider = fx_provider(&prov, "venue", "Evora");
	char *event = fx_event(&cust);
	char results[RACERS][32];

	/* From requested, accept and decline exclude each other. */
	static const char *const ad[] = { "accept", "decline" };
	const char *ad_tokens[] = { prov.token, prov.token };
	for (int round = 0; round < 2; round++) {
		char *b = fx_booking(&cust, event, provider, 777);
		ck_assert_int_eq(run_race(b, ad, ad_tokens, 2, results), 1);
		char *final = fx_booking_status(b);
		ck_assert_str_eq(final, results[0]);
		ck_assert_int_eq(transitions_audited(b), 1);
		free(final);
		free(b);
	}

	/* From accepted, only the first cancel (of either side) can win. */
	static const char *const acd[] = { "cancel", "accept", "cancel", "decline" };
	const char *acd_tokens[] = { cust.token, prov.token, prov.token, prov.token };
	char *b = fx_booking(&cust, event, provider, 777);
	cJSON_Delete(fx_expect(200, "POST", act_path(b, "accept"), &prov, NULL));
	ck_assert_int_eq(run_race(b, acd, acd_tokens, 4, results), 1);
	ck_assert_str_eq(results[0], "cancelled");
	ck_assert_int_eq(fx_audit_count("booking.cancelled", b), 1);
	free(b);

	/* From requested, all three at once: the only histories are one of
	 * accept, decline, cancel, or accept then one cancel. */
	for (int round = 0; round < 3; round++) {
		const char *tokens[] = { round == 1 ? prov.token : cust.token, prov.token, prov.token,
			prov.token };
		b = fx_booking(&cust, event, provider, 777);
		int won = run_race(b, acd, tokens, 4, results);
		char *final = fx_booking_status(b);
		ck_assert_int_eq(transitions_audited(b), won);
		if (won == 1) {
			ck_assert_str_eq(final, results[0]);
		} else {
			ck_assert_int_eq(won, 2);
			ck_assert_int_eq(fx_audit_count("booking.accepted", b), 1);
			ck_assert_int_eq(fx_audit_count("booking.cancelled", b), 1);
			ck_assert_str_eq(final, "cancelled");
		}
		free(final);
		free(b);
	}
	free(event);
	free(provider);
}
END_TEST

/* ---------------------------------------------------------------- mass assignment */

START_TEST(mass_assignment_is_refused)
{
	struct fx_user cust, prov, other;
	fx_user(&cust, "customer", true);
	fx_user(&prov, "provider", true);
	fx_user(&other, "customer", true);
	char starts[32], body[512];
	future(starts, sizeof starts, 86400);

	static const char *const provider_extra[] = { "\"stripe_account_id\":\"acct_evil\"",
		"\"payouts_enabled\":true", "\"user_id\":\"00000000-0000-4000-8000-000000000000\"",
		"\"id\":\"00000000-0000-4000-8000-000000000000\"", "\"role\":\"admin\"",
		"\"created_at\":\"2020-01-01T00:00:00Z\"" };
	static const char *const provider_param[] = { "stripe_account_id", "payouts_enabled",
		"user_id", "id", "role", "created_at" };
	for (int i = 0; i < 6; i++) {
		snprintf(body, sizeof body, "{\"business_name\":\"B\",\"category\":\"music\","
		    "\"city\":\"X\",%s}", provider_extra[i]);
		fx_expect_error(422, "validation_failed", provider_param[i], "POST", "/api/providers",
		    &prov, body);
	}
	char *provider = fx_provider(&prov, "music", "Sintra");
	for (int i = 0; i < 6; i++) {
		snprintf(body, sizeof body, "{\"city\":\"Y\",%s}", provider_extra[i]);
		fx_expect_error(422, "validation_failed", provider_param[i], "PATCH",
		    path_of("/api/providers/%s", provider), &prov, body);
	}
	cJSON *pv = fx_expect(200, "GET", path_of("/api/providers/%s", provider), &cust, NULL);
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(pv, "stripe_account_id")));
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(pv, "payouts_enabled")));
	ck_assert_str_eq(fx_str(pv, "city"), "Sintra");
	cJSON_Delete(pv);

	static const char *const event_extra[] = { "\"owner_id\":\"%s\"", "\"status\":\"published\"",
		"\"id\":\"%s\"", "\"updated_at\":\"2020-01-01T00:00:00Z\"" };
	static const char *const event_param[] = { "owner_id", "status", "id", "updated_at" };
	for (int i = 0; i < 4; i++) {
		char extra[128];
		snprintf(extra, sizeof extra, event_extra[i], other.id);
		snprintf(body, sizeof body, "{\"title\":\"T\",\"starts_at\":\"%s\",%s}", starts, extra);
		fx_expect_error(422, "validation_failed", event_param[i], "POST", "/api/events", &cust,
		    body);
	}
	char *event = fx_event(&cust);
	char owner_body[128];
	snprintf(owner_body, sizeof owner_body, "{\"owner_id\":\"%s\"}", other.id);
	fx_expect_error(422, "validation_failed", "owner_id", "PATCH", path_of("/api/events/%s", event),
	    &cust, owner_body);
	/* status may only become published */
	fx_expect_error(422, "validation_failed", "status", "PATCH", path_of("/api/events/%s", event),
	    &cust, "{\"status\":\"cancelled\"}");
	fx_expect_error(422, "validation_failed", "status", "PATCH", path_of("/api/events/%s", event),
	    &cust, "{\"status\":\"draft\"}");
	cJSON *ev = fx_expect(200, "GET", path_of("/api/events/%s", event), &cust, NULL);
	ck_assert_str_eq(fx_str(ev, "owner_id"), cust.id);
	ck_assert_str_eq(fx_str(ev, "status"), "draft");
	cJSON_Delete(ev);

	static const char *const booking_extra[] = { "\"platform_fee_cents\":0",
		"\"status\":\"paid\"", "\"currency\":\"eur\"", "\"event_id\":\"%s\"" };
	static const char *const booking_param[] = { "platform_fee_cents", "status", "currency",
		"event_id" };
	for (int i = 0; i < 4; i++) {
		char extra[128];
		snprintf(extra, sizeof extra, booking_extra[i], event);
		snprintf(body, sizeof body, "{\"service_provider_id\":\"%s\",\"description\":\"x\","
		    "\"amount_cents\":1000,%s}", provider, extra);
		fx_expect_error(422, "validation_failed", booking_param[i], "POST",
		    path_of("/api/events/%s/services", event), &cust, body);
	}
	char *b = fx_booking(&cust, event, provider, 1000);
	fx_expect_error(422, "validation_failed", "status", "POST", act_path(b, "accept"), &prov,
	    "{\"status\":\"paid\"}");
	fx_expect_error(422, "validation_failed", "amount_cents", "POST", act_path(b, "cancel"), &cust,
	    "{\"amount_cents\":1}");
	cJSON *bk = fx_expect(200, "GET", path_of("/api/event-services/%s", b), &cust, NULL);
	ck_assert_str_eq(fx_str(bk, "status"), "requested");
	ck_assert_int_eq(cJSON_GetObjectItem(bk, "platform_fee_cents")->valueint, 100);
	cJSON_Delete(bk);
	free(b);
	free(event);
	free(provider);
}
END_TEST

/* ---------------------------------------------------------------- validation */

/* Copies fmt into out with {S}, {L}, {T} and {P} replaced by s, l, t, p. */
static void subst(char *out, size_t len, const char *fmt, const char *s, const char *l,
    const char *t, const char *p)
{
	size_t n = 0;
	while (*fmt != '\0' && n + 1 < len) {
		const char *v = NULL;
		if (fmt[0] == '{' && fmt[1] != '\0' && fmt[2] == '}') {
			v = fmt[1] == 'S' ? s : fmt[1] == 'L' ? l : fmt[1] == 'T' ? t : fmt[1] == 'P' ? p : NULL;
		}
		if (v != NULL) {
			n += (size_t)snprintf(out + n, len - n, "%s", v);
			fmt += 3;
		} else {
			out[n++] = *fmt++;
		}
	}
	out[n < len ? n : len - 1] = '\0';
}

START_TEST(validation_names_the_field)
{
	struct fx_user cust, prov;
	fx_user(&cust, "customer", true);
	fx_user(&prov, "provider", true);
	char *provider = fx_provider(&prov, "planning", "Coimbra");
	char *event = fx_event(&cust);
	char starts[32], later[32], past[32], body[1024];
	future(starts, sizeof starts, 86400);
	future(later, sizeof later, 2 * 86400);
	future(past, sizeof past, -60);
	char long_title[260];
	memset(long_title, 'x', 201);
	long_title[201] = '\0';

	struct { const char *fmt; const char *param; } ev_bad[] = {
		{ "{\"starts_at\":\"{S}\"}", "title" },
		{ "{\"title\":\"\",\"starts_at\":\"{S}\"}", "title" },
		{ "{\"title\":\"{T}\",\"starts_at\":\"{S}\"}", "title" },
		{ "{\"title\":7,\"starts_at\":\"{S}\"}", "title" },
		{ "{\"title\":\"T\"}", "starts_at" },
		{ "{\"title\":\"T\",\"starts_at\":\"{P}\"}", "starts_at" },
		{ "{\"title\":\"T\",\"starts_at\":\"next friday\"}", "starts_at" },
		{ "{\"title\":\"T\",\"starts_at\":\"2031-02-30T10:00:00Z\"}", "starts_at" },
		{ "{\"title\":\"T\",\"starts_at\":\"{L}\",\"ends_at\":\"{S}\"}", "ends_at" },
		{ "{\"title\":\"T\",\"starts_at\":\"{S}\",\"ends_at\":\"{S}\"}", "ends_at" },
		{ "{\"title\":\"T\",\"starts_at\":\"{S}\",\"currency\":\"USD\"}", "currency" },
		{ "{\"title\":\"T\",\"starts_at\":\"{S}\",\"currency\":\"usdx\"}", "currency" },
		{ "{\"title\":\"T\",\"starts_at\":\"{S}\",\"currency\":\"zzz\"}", "currency" },
		{ "{\"title\":\"T\",\"starts_at\":\"{S}\",\"budget_cents\":-1}", "budget_cents" },
		{ "{\"title\":\"T\",\"starts_at\":\"{S}\",\"budget_cents\":10.5}", "budget_cents" },
		{ "{\"title\":\"T\",\"starts_at\":\"{S}\",\"budget_cents\":\"100\"}", "budget_cents" },
		{ "{\"title\":\"T\",\"starts_at\":\"{S}\",\"colour\":\"red\"}", "colour" },
	};
	for (size_t i = 0; i < sizeof ev_bad / sizeof ev_bad[0]; i++) {
		subst(body, sizeof body, ev_bad[i].fmt, starts, later, long_title, past);
		fx_expect_error(422, "validation_failed", ev_bad[i].param, "POST", "/api/events", &cust,
		    body);
	}
	snprintf(body, sizeof body, "{\"title\":\"T\",\"starts_at\":\"%s\",\"currency\":\"eur\","
	    "\"ends_at\":\"%s\"}", starts, later);
	cJSON *e = fx_expect(201, "POST", "/api/events", &cust, body);
	ck_assert_str_eq(fx_str(e, "currency"), "eur");
	char *eur_event = strdup(fx_str(e, "id"));
	cJSON_Delete(e);

	/* PATCH: the stored starts_at counts when only ends_at is sent */
	snprintf(body, sizeof body, "{\"ends_at\":\"%s\"}", past);
	fx_expect_error(422, "validation_failed", "ends_at", "PATCH",
	    path_of("/api/events/%s", eur_event), &cust, body);
	snprintf(body, sizeof body, "{\"starts_at\":\"%s\"}", past);
	fx_expect_error(422, "validation_failed", "starts_at", "PATCH",
	    path_of("/api/events/%s", eur_event), &cust, body);
	fx_expect_error(422, "validation_failed", "title", "PATCH",
	    path_of("/api/events/%s", eur_event), &cust, "{\"title\":null}");
	/* null clears an optional field */
	cJSON *cl = fx_expect(200, "PATCH", path_of("/api/events/%s", eur_event), &cust,
	    "{\"ends_at\":null,\"venue\":\"Barn\"}");
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cl, "ends_at")));
	ck_assert_str_eq(fx_str(cl, "venue"), "Barn");
	cJSON_Delete(cl);

	struct { const char *fmt; const char *param; } bk_bad[] = {
		{ "{\"service_provider_id\":\"not-a-uuid\",\"description\":\"x\",\"amount_cents\":100}",
		  "service_provider_id" },
		{ "{\"service_provider_id\":\"00000000-0000-4000-8000-000000000000\","
		  "\"description\":\"x\",\"amount_cents\":100}", "service_provider_id" },
		{ "{\"description\":\"x\",\"amount_cents\":100}", "service_provider_id" },
		{ "{\"service_provider_id\":\"{S}\",\"description\":\"x\",\"amount_cents\":-100}",
		  "amount_cents" },
		{ "{\"service_provider_id\":\"{S}\",\"description\":\"x\",\"amount_cents\":0}",
		  "amount_cents" },
		{ "{\"service_provider_id\":\"{S}\",\"description\":\"x\",\"amount_cents\":12.5}",
		  "amount_cents" },
		{ "{\"service_provider_id\":\"{S}\",\"description\":\"x\",\"amount_cents\":\"100\"}",
		  "amount_cents" },
		{ "{\"service_provider_id\":\"{S}\",\"description\":\"x\",\"amount_cents\":100000000}",
		  "amount_cents" },
		{ "{\"service_provider_id\":\"{S}\",\"description\":\"\",\"amount_cents\":100}",
		  "description" },
		{ "{\"service_provider_id\":\"{S}\",\"amount_cents\":100}", "description" },
		{ "{\"service_provider_id\":\"{S}\",\"description\":\"x\",\"amount_cents\":100,"
		  "\"tip\":5}", "tip" },
	};
	for (size_t i = 0; i < sizeof bk_bad / sizeof bk_bad[0]; i++) {
		subst(body, sizeof body, bk_bad[i].fmt, provider, NULL, NULL, NULL);
		fx_expect_error(422, "validation_failed", bk_bad[i].param, "POST",
		    path_of("/api/events/%s/services", event), &cust, body);
	}
	/* The booking takes the event's currency. */
	snprintf(body, sizeof body, "{\"service_provider_id\":\"%s\",\"description\":\"x\","
	    "\"amount_cents\":99999999}", provider);
	cJSON *b = fx_expect(201, "POST", path_of("/api/events/%s/services", eur_event), &cust, body);
	ck_assert_str_eq(fx_str(b, "currency"), "eur");
	ck_assert_int_eq((long long)cJSON_GetObjectItem(b, "platform_fee_cents")->valuedouble, 9999999);
	cJSON_Delete(b);

	fx_expect_error(422, "validation_failed", "category", "POST", "/api/providers", &prov,
	    "{\"business_name\":\"B\",\"category\":\"juggling\",\"city\":\"X\"}");
	fx_expect_error(422, "validation_failed", "city", "PATCH",
	    path_of("/api/providers/%s", provider), &prov, "{\"city\":\"\"}");

	static const struct { const char *path; const char *param; } q_bad[] = {
		{ "/api/events?limit=0", "limit" }, { "/api/events?limit=101", "limit" },
		{ "/api/events?limit=", "limit" }, { "/api/events?offset=-1", "offset" },
		{ "/api/events?owner_id=nope", "owner_id" }, { "/api/providers?category=magic", "category" },
		{ "/api/providers?city=", "city" }, { "/api/payments?limit=x", "limit" },
		/* empty values are malformed too, on every list */
		{ "/api/events?offset=", "offset" }, { "/api/events?owner_id=", "owner_id" },
		{ "/api/providers?limit=", "limit" }, { "/api/providers?offset=", "offset" },
		{ "/api/providers?category=", "category" }, { "/api/payments?limit=", "limit" },
		{ "/api/payments?offset=", "offset" }, { "/api/subscriptions?limit=", "limit" },
		{ "/api/subscriptions?offset=", "offset" },
	};
	for (size_t i = 0; i < sizeof q_bad / sizeof q_bad[0]; i++)
		fx_expect_error(422, "validation_failed", q_bad[i].param, "GET", q_bad[i].path, &cust, NULL);
	snprintf(body, sizeof body, "/api/events/%s/services?limit=1000", event);
	fx_expect_error(422, "validation_failed", "limit", "GET", body, &cust, NULL);
	snprintf(body, sizeof body, "/api/events/%s/services?offset=", event);
	fx_expect_error(422, "validation_failed", "offset", "GET", body, &cust, NULL);
	free(eur_event);
	free(event);
	free(provider);
}
END_TEST

/* ---------------------------------------------------------------- lists */

START_TEST(lists_page_filter_and_keep_order)
{
	struct fx_user cust, other, admin;
	fx_user(&cust, "customer", true);
	fx_user(&other, "customer", true);
	fx_user(&admin, "admin", true);
	char city[40], path[160];
	snprintf(city, sizeof city, "Town%.8s", cust.id);
	struct fx_user provs[5];
	for (int i = 0; i < 5; i++) {
		fx_user(&provs[i], "provider", true);
		free(fx_provider(&provs[i], i < 3 ? "catering" : "music", city));
	}
	/* city is matched case-insensitively; category narrows it */
	char lower[40];
	snprintf(lower, sizeof lower, "%s", city);
	for (char *c = lower; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	snprintf(path, sizeof path, "/api/providers?city=%s&category=catering", lower);
	cJSON *l = fx_expect(200, "GET", path, &cust, NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 3);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")), 3);
	cJSON_Delete(l);
	/* pages of 2: disjoint, newest first, the same order every time */
	char seen[5][40];
	int n = 0;
	for (int off = 0; off < 6; off += 2) {
		snprintf(path, sizeof path, "/api/providers?city=%s&limit=2&offset=%d", city, off);
		l = fx_expect(200, "GET", path, &cust, NULL);
		ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 5);
		ck_assert_int_eq(cJSON_GetObjectItem(l, "limit")->valueint, 2);
		ck_assert_int_eq(cJSON_GetObjectItem(l, "offset")->valueint, off);
		const cJSON *it;
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(l, "items")) {
			ck_assert_int_lt(n, 5);
			snprintf(seen[n++], sizeof seen[0], "%s", fx_str(it, "user_id"));
		}
		cJSON_Delete(l);
	}
	ck_assert_int_eq(n, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_str_eq(seen[i], provs[4 - i].id);

	/* events: one's own; admins all, or one owner's */
	char *e1 = fx_event(&cust), *e2 = fx_event(&cust), *e3 = fx_event(&other);
	l = fx_expect(200, "GET", "/api/events", &cust, NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 2);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "limit")->valueint, 20);
	ck_assert_str_eq(fx_str(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "items"), 0), "id"), e2);
	ck_assert_str_eq(fx_str(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "items"), 1), "id"), e1);
	cJSON_Delete(l);
	snprintf(path, sizeof path, "/api/events?owner_id=%s", other.id);
	fx_expect_error(403, "forbidden", "owner_id", "GET", path, &cust, NULL);
	l = fx_expect(200, "GET", path, &admin, NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 1);
	ck_assert_str_eq(fx_str(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "items"), 0), "id"), e3);
	cJSON_Delete(l);
	l = fx_expect(200, "GET", "/api/events?limit=1", &admin, NULL);
	ck_assert_int_ge(cJSON_GetObjectItem(l, "total")->valueint, 3);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")), 1);
	cJSON_Delete(l);
	snprintf(path, sizeof path, "/api/events?owner_id=%s", cust.id);
	l = fx_expect(200, "GET", path, &cust, NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 2);
	cJSON_Delete(l);
	/* A page past the end still says how many there are. */
	l = fx_expect(200, "GET", "/api/events?offset=5", &cust, NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 2);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "offset")->valueint, 5);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")), 0);
	cJSON_Delete(l);
	l = fx_expect(200, "GET", "/api/events?offset=1&limit=5", &cust, NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 2);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")), 1);
	ck_assert_str_eq(fx_str(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "items"), 0), "id"), e1);
	cJSON_Delete(l);
	l = fx_expect(200, "GET", "/api/events", &provs[3], NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 0);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")), 0);
	cJSON_Delete(l);

	/* bookings of an event: the owner sees all, a provider its own */
	char *p0 = fx_provider_of(&provs[0]), *p1 = fx_provider_of(&provs[1]);
	char *b0 = fx_booking(&cust, e1, p0, 100);
	char *b1 = fx_booking(&cust, e1, p1, 200);
	snprintf(path, sizeof path, "/api/events/%s/services", e1);
	l = fx_expect(200, "GET", path, &cust, NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 2);
	ck_assert_str_eq(fx_str(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "items"), 0), "id"), b1);
	cJSON_Delete(l);
	l = fx_expect(200, "GET", path, &provs[0], NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 1);
	ck_assert_str_eq(fx_str(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "items"), 0), "id"), b0);
	cJSON_Delete(l);
	fx_expect_error(404, "not_found", NULL, "GET", path, &provs[2], NULL);
	l = fx_expect(200, "GET", path, &admin, NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 2);
	cJSON_Delete(l);
	free(b0);
	free(b1);
	free(p0);
	free(p1);
	free(e1);
	free(e2);
	free(e3);
}
END_TEST

int main(void)
{
	fx_init();
	Suite *s = suite_create("e2e-market");
	TCase *flow = tcase_create("flow");
	tcase_set_timeout(flow, 120);
	tcase_add_test(flow, booking_flow_up_to_payment);
	tcase_add_test(flow, roles_and_verification);
	tcase_add_test(flow, illegal_transitions_are_409_naming_the_state);
	tcase_add_test(flow, event_cancel_cascades_and_waits_for_money);
	tcase_add_test(flow, concurrent_transitions_have_one_winner);
	suite_add_tcase(s, flow);
	TCase *input = tcase_create("input");
	tcase_set_timeout(input, 120);
	tcase_add_test(input, mass_assignment_is_refused);
	tcase_add_test(input, validation_names_the_field);
	tcase_add_test(input, lists_page_filter_and_keep_order);
	suite_add_tcase(s, input);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
