#include "autoconf.h"

#include "market_fixtures.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/arena.h"
#include "core/crypto.h"
#include "core/jwt.h"
#include "db/db.h"
#include "services/bookings.h"

void fx_init(void)
{
	/* Outside a test: no ck_assert here. */
	const char *url = getenv("TEST_DATABASE_URL");
	if (sodium_init() < 0 || url == NULL) {
		fprintf(stderr, "fx_init: libsodium failed or TEST_DATABASE_URL is not set "
		    "(run through tests/stack/run-test)\n");
		exit(EXIT_FAILURE);
	}
	db_configure(url, 5, true);
}

static void unique_email(char *out, size_t len, const char *role)
{
	char r[17];
	crypto_random_hex(r, 8);
	snprintf(out, len, "%s-%s@market.gala.test", role, r);
}

static void sign_token(struct fx_user *u)
{
	struct jwt_claims c = { 0 };
	long long now = (long long)time(NULL);
	snprintf(c.sub, sizeof c.sub, "%s", u->id);
	snprintf(c.role, sizeof c.role, "%s", u->role);
	c.iat = now;
	c.exp = now + 3600;
	crypto_uuid4(c.jti);
	crypto_random_hex(c.csrf, 32);
	c.tv = 0;
	ck_assert_int_eq(jwt_sign(&c, test_env("TEST_SECRET_KEY"), u->token, sizeof u->token), 0);
}

void fx_user(struct fx_user *u, const char *role, bool verified)
{
	memset(u, 0, sizeof *u);
	unique_email(u->email, sizeof u->email, role);
	snprintf(u->role, sizeof u->role, "%s", role);
	PGconn *c = test_db_superuser();
	const char *p[] = { u->email, role, verified ? "true" : "false" };
	char *id = test_db_value(c, "INSERT INTO users (email, password_hash, full_name, role, "
	    "email_verified) VALUES ($1, 'not-a-hash', 'Fixture User', $2, $3::boolean) RETURNING id",
	    3, p);
	PQfinish(c);
	ck_assert_ptr_nonnull(id);
	snprintf(u->id, sizeof u->id, "%s", id);
	free(id);
	sign_token(u);
}

void fx_register(struct fx_user *u, const char *role)
{
	memset(u, 0, sizeof *u);
	unique_email(u->email, sizeof u->email, role);
	snprintf(u->role, sizeof u->role, "%s", role);
	char body[512];
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"Gala-test-pass-42\","
	    "\"full_name\":\"Walk Through\",\"role\":\"%s\"}", u->email, role);
	cJSON *r = fx_expect(201, "POST", "/api/auth/register", NULL, body);
	snprintf(u->token, sizeof u->token, "%s", fx_str(r, "access_token"));
	snprintf(u->id, sizeof u->id, "%s", fx_str(cJSON_GetObjectItem(r, "user"), "id"));
	cJSON_Delete(r);
	char *mail = test_mail_last(u->email);
	ck_assert_msg(mail != NULL, "no mail to %s", u->email);
	/* The code is a line of exactly six digits. */
	char otp[7] = "";
	for (char *line = strtok(mail, "\r\n"); line != NULL; line = strtok(NULL, "\r\n"))
		if (strlen(line) == 6 && strspn(line, "0123456789") == 6)
			snprintf(otp, sizeof otp, "%s", line);
	free(mail);
	ck_assert_msg(otp[0] != '\0', "no code in the mail to %s", u->email);
	snprintf(body, sizeof body, "{\"email\":\"%s\",\"otp\":\"%s\"}", u->email, otp);
	cJSON_Delete(fx_expect(200, "POST", "/api/auth/verify-email", NULL, body));
}

cJSON *fx_call(const char *method, const char *path, const struct fx_user *u, const char *body,
    long *status)
{
	struct http_resp r;
	ck_assert_int_eq(http_json(method, path, u ? u->token : NULL, body, &r), 0);
	*status = r.status;
	cJSON *j = r.json;
	r.json = NULL;
	http_resp_free(&r);
	return j;
}

cJSON *fx_expect(long want, const char *method, const char *path, const struct fx_user *u,
    const char *body)
{
	long status;
	cJSON *j = fx_call(method, path, u, body, &status);
	if (status != want) {
		char *s = j ? cJSON_PrintUnformatted(j) : NULL;
		ck_abort_msg("%s %s as %s: %ld, want %ld: %s", method, path, u ? u->role : "anonymous",
		    status, want, s ? s : "(no JSON)");
	}
	return j;
}

void fx_expect_error(long want, const char *code, const char *param, const char *method,
    const char *path, const struct fx_user *u, const char *body)
{
	cJSON *j = fx_expect(want, method, path, u, body);
	cJSON *e = cJSON_GetObjectItem(j, "error");
	ck_assert_msg(cJSON_IsObject(e), "%s %s: no error envelope", method, path);
	ck_assert_msg(strcmp(fx_str(e, "code"), code) == 0, "%s %s %s: code %s, want %s", method,
	    path, body ? body : "", fx_str(e, "code"), code);
	if (param != NULL)
		ck_assert_msg(strcmp(fx_str(e, "param"), param) == 0, "%s %s %s: param %s, want %s",
		    method, path, body ? body : "", fx_str(e, "param"), param);
	cJSON_Delete(j);
}

const char *fx_str(const cJSON *o, const char *name)
{
	static char bufs[8][512];
	static int next;
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
	char *b = bufs[next++ % 8];
	snprintf(b, sizeof bufs[0], "%s", cJSON_IsString(m) ? m->valuestring : "");
	return b;
}

char *fx_provider(const struct fx_user *u, const char *category, const char *city)
{
	char body[512];
	snprintf(body, sizeof body, "{\"business_name\":\"Fixture %s\",\"category\":\"%s\","
	    "\"city\":\"%s\"}", u->email, category, city);
	cJSON *r = fx_expect(201, "POST", "/api/providers", u, body);
	char *id = strdup(fx_str(r, "id"));
	cJSON_Delete(r);
	return id;
}

char *fx_provider_of(const struct fx_user *u)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { u->id };
	char *id = test_db_value(c, "SELECT id FROM service_providers WHERE user_id = $1", 1, p);
	PQfinish(c);
	ck_assert_ptr_nonnull(id);
	return id;
}

char *fx_event(const struct fx_user *owner)
{
	char body[512], starts[32];
	time_t t = time(NULL) + 7 * 86400;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(starts, sizeof starts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(body, sizeof body, "{\"title\":\"Fixture event\",\"starts_at\":\"%s\"}", starts);
	cJSON *r = fx_expect(201, "POST", "/api/events", owner, body);
	char *id = strdup(fx_str(r, "id"));
	cJSON_Delete(r);
	return id;
}

char *fx_booking(const struct fx_user *owner, const char *event_id, const char *provider_id,
    long long amount_cents)
{
	char body[512], path[128];
	snprintf(body, sizeof body, "{\"service_provider_id\":\"%s\",\"description\":\"Fixture "
	    "booking\",\"amount_cents\":%lld}", provider_id, amount_cents);
	snprintf(path, sizeof path, "/api/events/%s/services", event_id);
	cJSON *r = fx_expect(201, "POST", path, owner, body);
	char *id = strdup(fx_str(r, "id"));
	cJSON_Delete(r);
	return id;
}

int fx_transition(const char *booking_id, int action, unsigned actor,
    const struct fx_user *actor_user)
{
	arena_t *a = arena_new(4096);
	ck_assert_int_eq(db_begin(a), DB_OK);
	struct booking b;
	enum gala_error e = bookings_load(a, booking_id, true, &b);
	struct refusal why = { 0 };
	if (e == GE_OK)
		e = booking_transition(NULL, a, &b, (enum booking_action)action, actor,
		    actor_user ? actor_user->id : NULL, NULL, &why);
	if (e == GE_OK)
		ck_assert_int_eq(db_commit(a), DB_OK);
	else
		db_rollback();
	arena_free(a);
	return (int)e;
}

void fx_booking_paid(const char *booking_id, const struct fx_user *owner,
    const struct fx_user *provider, bool completed)
{
	char path[128];
	snprintf(path, sizeof path, "/api/event-services/%s/accept", booking_id);
	cJSON_Delete(fx_expect(200, "POST", path, provider, NULL));
	ck_assert_int_eq(fx_transition(booking_id, BOOKING_PAY, BOOKING_ACTOR_OWNER, owner), GE_OK);
	ck_assert_int_eq(fx_transition(booking_id, BOOKING_PAYMENT_SUCCEEDED, BOOKING_ACTOR_SYSTEM,
	    NULL), GE_OK);
	if (completed) {
		snprintf(path, sizeof path, "/api/event-services/%s/complete", booking_id);
		cJSON_Delete(fx_expect(200, "POST", path, owner, NULL));
	}
}

char *fx_booking_status(const char *booking_id)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { booking_id };
	char *s = test_db_value(c, "SELECT status FROM event_services WHERE id = $1", 1, p);
	PQfinish(c);
	return s;
}

void fx_assert_status(const char *booking_id, const char *want)
{
	char *s = fx_booking_status(booking_id);
	ck_assert_msg(s != NULL && strcmp(s, want) == 0, "booking %s is %s, want %s", booking_id,
	    s ? s : "(none)", want);
	free(s);
}

int fx_audit_count(const char *action, const char *booking_id)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { action, booking_id };
	char *n = test_db_value(c, "SELECT count(*) FROM audit_logs WHERE action = $1 "
	    "AND metadata->>'event_service_id' = $2", 2, p);
	PQfinish(c);
	int x = n ? atoi(n) : -1;
	free(n);
	return x;
}

void fx_sql(const char *sql, const char *p1, const char *p2, const char *p3)
{
	const char *p[] = { p1, p2, p3 };
	int n = p3 ? 3 : p2 ? 2 : p1 ? 1 : 0;
	PGconn *c = test_db_superuser();
	PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
	    PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}
