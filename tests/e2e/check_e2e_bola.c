/* Who may see and touch what, end to end: every object route of the
 * marketplace asked by every kind of caller (API.md: not visible -> 404,
 * visible but not allowed -> 403, admins see everything), plus the lists'
 * scoping and the payments read side. */
#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "market_fixtures.h"
#include "services/bookings.h"

enum { A, B, P1, P2, ADM, NACTORS };
static const char *const actor_names[NACTORS] = { "owner A", "customer B", "provider P1 (booked)",
	"provider P2 (not booked)", "admin" };

/* A customer A with event EA, on which provider P1 has a requested booking
 * BA and a paid one (BP, with its charge and payout rows); customer B with
 * event EB; provider P2 with a profile and no booking; an admin. */
struct world {
	struct fx_user u[NACTORS];
	char *ea, *eb, *pp1, *pp2, *ba, *bp;
	char charge[40], payout[40];
};

/* A payment row as the money code writes it. */
static char *payment_row(const char *booking, const char *type, const char *payer,
    const char *payee, const char *amount, const char *status)
{
	PGconn *c = test_db_superuser();
	const char *p[] = { booking, type, payer, payee, amount, status };
	char *id = test_db_value(c, "INSERT INTO payments (event_service_id, payment_type, payer_id, "
	    "payee_id, amount_cents, currency, status) VALUES ($1, $2, $3, $4, $5, 'usd', $6) "
	    "RETURNING id", 6, p);
	PQfinish(c);
	ck_assert_ptr_nonnull(id);
	return id;
}

static void world_make(struct world *w)
{
	fx_user(&w->u[A], "customer", true);
	fx_user(&w->u[B], "customer", true);
	fx_user(&w->u[P1], "provider", true);
	fx_user(&w->u[P2], "provider", true);
	fx_user(&w->u[ADM], "admin", true);
	w->pp1 = fx_provider(&w->u[P1], "catering", "Lisbon");
	w->pp2 = fx_provider(&w->u[P2], "music", "Lisbon");
	w->ea = fx_event(&w->u[A]);
	w->eb = fx_event(&w->u[B]);
	w->ba = fx_booking(&w->u[A], w->ea, w->pp1, 10000);
	w->bp = fx_booking(&w->u[A], w->ea, w->pp1, 20000);
	fx_booking_paid(w->bp, &w->u[A], &w->u[P1], false);
	char *c = payment_row(w->bp, "customer_payment", w->u[A].id, w->u[P1].id, "20000", "succeeded");
	char *p = payment_row(w->bp, "service_payment", NULL, w->u[P1].id, "18000", "payout_started");
	snprintf(w->charge, sizeof w->charge, "%s", c);
	snprintf(w->payout, sizeof w->payout, "%s", p);
	free(c);
	free(p);
}

static void world_free(struct world *w)
{
	free(w->ea);
	free(w->eb);
	free(w->pp1);
	free(w->pp2);
	free(w->ba);
	free(w->bp);
}

/* Replaces {EA} {EB} {BA} {BP} {PP1} {CH} {PO} in a path template. */
static void expand(const struct world *w, const char *tmpl, char *out, size_t len)
{
	static const char *const keys[] = { "{EA}", "{EB}", "{BA}", "{BP}", "{PP1}", "{CH}", "{PO}" };
	const char *vals[] = { w->ea, w->eb, w->ba, w->bp, w->pp1, w->charge, w->payout };
	size_t n = 0;
	while (*tmpl != '\0' && n + 1 < len) {
		size_t k = 0;
		while (k < 7 && strncmp(tmpl, keys[k], strlen(keys[k])) != 0)
			k++;
		if (k < 7) {
			n += (size_t)snprintf(out + n, len - n, "%s", vals[k]);
			tmpl += strlen(keys[k]);
		} else {
			out[n++] = *tmpl++;
		}
	}
	out[n < len ? n : len - 1] = '\0';
}

#define SKIP 0

/* Every object route and method, and what each caller gets. A caller with
 * SKIP is tried afterwards (its success changes state). */
static const struct {
	const char *method;
	const char *path;
	const char *body;
	long want[NACTORS];
} matrix[] = {
	{ "GET", "/api/events/{EA}", NULL, { 200, 404, 200, 404, 200 } },
	{ "PATCH", "/api/events/{EA}", "{\"title\":\"Renamed\"}", { 200, 404, 403, 404, 403 } },
	{ "DELETE", "/api/events/{EA}", NULL, { SKIP, 404, 403, 404, 403 } },
	{ "GET", "/api/events/{EA}/services", NULL, { 200, 404, 200, 404, 200 } },
	{ "POST", "/api/events/{EA}/services",
	  "{\"service_provider_id\":\"{PP1}\",\"description\":\"x\",\"amount_cents\":100}",
	  { SKIP, 404, 403, 404, 403 } },
	{ "GET", "/api/event-services/{BA}", NULL, { 200, 404, 200, 404, 200 } },
	{ "POST", "/api/event-services/{BA}/accept", NULL, { 403, 404, SKIP, 404, 403 } },
	{ "POST", "/api/event-services/{BA}/decline", NULL, { 403, 404, SKIP, 404, 403 } },
	{ "POST", "/api/event-services/{BA}/complete", NULL, { 409, 404, 403, 404, 409 } },
	{ "POST", "/api/event-services/{BA}/cancel", NULL, { SKIP, 404, SKIP, 404, 403 } },
	{ "GET", "/api/event-services/{BP}", NULL, { 200, 404, 200, 404, 200 } },
	{ "POST", "/api/event-services/{BP}/complete", NULL, { SKIP, 404, 403, 404, SKIP } },
	/* The money actions follow the same rule: pay is the owner's, release
	 * the owner's or an admin's (both 409 before their state), refund an
	 * admin's, and a caller who cannot see the booking gets 404, never 403
	 * (refund too: it is not refused by role before the booking is read). */
	{ "POST", "/api/event-services/{BA}/pay", NULL, { 409, 404, 403, 404, 403 } },
	{ "POST", "/api/event-services/{BA}/release", NULL, { 409, 404, 403, 404, 409 } },
	{ "POST", "/api/event-services/{BA}/refund", NULL, { 403, 404, 403, 404, 409 } },
	{ "POST", "/api/event-services/{BP}/refund", NULL, { 403, 404, 403, 404, SKIP } },
	{ "POST", "/api/providers/{PP1}/stripe-onboarding", NULL, { 403, 403, SKIP, 403, 403 } },
	{ "GET", "/api/providers/{PP1}", NULL, { 200, 200, 200, 200, 200 } },
	{ "PATCH", "/api/providers/{PP1}", "{\"city\":\"Porto\"}", { 403, 403, 200, 403, 403 } },
	{ "GET", "/api/payments/{CH}", NULL, { 200, 404, 200, 404, 200 } },
	{ "GET", "/api/payments/{PO}", NULL, { 404, 404, 200, 404, 200 } },
	{ "GET", "/api/events/{EB}", NULL, { 404, 200, 404, 404, 200 } },
	{ "PATCH", "/api/events/{EB}", "{\"title\":\"Mine\"}", { 404, 200, 404, 404, 403 } },
	{ "DELETE", "/api/events/{EB}", NULL, { 404, SKIP, 404, 404, 403 } },
	{ "GET", "/api/events/{EB}/services", NULL, { 404, 200, 404, 404, 200 } },
};
#define NMATRIX (sizeof matrix / sizeof matrix[0])

START_TEST(every_route_by_every_caller)
{
	struct world w;
	world_make(&w);
	char path[256], body[512];
	for (size_t i = 0; i < NMATRIX; i++) {
		expand(&w, matrix[i].path, path, sizeof path);
		if (matrix[i].body != NULL)
			expand(&w, matrix[i].body, body, sizeof body);
		for (int a = 0; a < NACTORS; a++) {
			long want = matrix[i].want[a];
			if (want == SKIP)
				continue;
			long got;
			cJSON *j = fx_call(matrix[i].method, path, &w.u[a],
			    matrix[i].body ? body : NULL, &got);
			ck_assert_msg(got == want, "%s %s by %s: %ld, want %ld", matrix[i].method,
			    matrix[i].path, actor_names[a], got, want);
			if (want == 404 || want == 403) {
				/* The error envelope and nothing of the object. */
				ck_assert_int_eq(cJSON_GetArraySize(j), 1);
				ck_assert_str_eq(fx_str(cJSON_GetObjectItem(j, "error"), "code"),
				    want == 404 ? "not_found" : "forbidden");
			}
			cJSON_Delete(j);
		}
		/* Without a token: 401 everywhere. */
		long got;
		cJSON_Delete(fx_call(matrix[i].method, path, NULL, matrix[i].body ? body : NULL, &got));
		ck_assert_msg(got == 401, "%s %s anonymous: %ld", matrix[i].method, matrix[i].path, got);
	}
	/* Nothing changed by the refused calls. */
	char *st = fx_booking_status(w.ba);
	ck_assert_str_eq(st, "requested");
	free(st);
	st = fx_booking_status(w.bp);
	ck_assert_str_eq(st, "paid");
	free(st);

	/* The SKIPped callers, whose calls succeed. */
	expand(&w, "/api/event-services/{BA}/accept", path, sizeof path);
	cJSON_Delete(fx_expect(200, "POST", path, &w.u[P1], NULL));
	expand(&w, "/api/event-services/{BA}/cancel", path, sizeof path);
	cJSON_Delete(fx_expect(200, "POST", path, &w.u[A], NULL));
	expand(&w, "/api/event-services/{BP}/complete", path, sizeof path);
	cJSON_Delete(fx_expect(200, "POST", path, &w.u[ADM], NULL));
	expand(&w, "/api/events/{EB}", path, sizeof path);
	cJSON_Delete(fx_expect(204, "DELETE", path, &w.u[B], NULL));
	/* The provider still sees the event through its bookings, whatever
	 * their status. */
	expand(&w, "/api/events/{EA}", path, sizeof path);
	cJSON *ev = fx_expect(200, "GET", path, &w.u[P1], NULL);
	ck_assert_str_eq(fx_str(ev, "title"), "Renamed");
	cJSON_Delete(ev);
	world_free(&w);
}
END_TEST

START_TEST(unknown_and_malformed_ids_are_404_for_everyone)
{
	struct fx_user admin, cust;
	fx_user(&admin, "admin", true);
	fx_user(&cust, "customer", true);
	static const char *const paths[] = { "/api/events/%s", "/api/events/%s/services",
		"/api/event-services/%s", "/api/providers/%s", "/api/payments/%s" };
	static const char *const ids[] = { "7c0d5a4e-1b7e-4d9c-a0f5-2b1f7a9e3c11", "nope", "1",
		"7c0d5a4e1b7e4d9ca0f52b1f7a9e3c11" };
	char path[160];
	for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++)
		for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
			snprintf(path, sizeof path, paths[p], ids[i]);
			fx_expect_error(404, "not_found", NULL, "GET", path, &admin, NULL);
			fx_expect_error(404, "not_found", NULL, "GET", path, &cust, NULL);
		}
	static const char *const actions[] = { "accept", "decline", "complete", "cancel" };
	for (size_t a = 0; a < 4; a++) {
		snprintf(path, sizeof path, "/api/event-services/%s/%s", ids[0], actions[a]);
		fx_expect_error(404, "not_found", NULL, "POST", path, &admin, NULL);
	}
	snprintf(path, sizeof path, "/api/events/%s", ids[0]);
	fx_expect_error(404, "not_found", NULL, "PATCH", path, &cust, "{\"title\":\"x\"}");
	fx_expect_error(404, "not_found", NULL, "DELETE", path, &cust, NULL);
	snprintf(path, sizeof path, "/api/providers/%s", ids[0]);
	fx_expect_error(404, "not_found", NULL, "PATCH", path, &cust, "{\"city\":\"x\"}");
}
END_TEST

START_TEST(lists_show_only_what_the_caller_may_see)
{
	struct world w;
	world_make(&w);
	char path[256];
	/* A third provider whose only booking on EA was declined. */
	struct fx_user p3;
	fx_user(&p3, "provider", true);
	char *pp3 = fx_provider(&p3, "decor", "Faro");
	char *b3 = fx_booking(&w.u[A], w.ea, pp3, 500);
	snprintf(path, sizeof path, "/api/event-services/%s/decline", b3);
	cJSON_Delete(fx_expect(200, "POST", path, &p3, NULL));
	snprintf(path, sizeof path, "/api/events/%s", w.ea);
	cJSON_Delete(fx_expect(200, "GET", path, &p3, NULL));

	snprintf(path, sizeof path, "/api/events/%s/services", w.ea);
	cJSON *l = fx_expect(200, "GET", path, &w.u[A], NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 3);
	cJSON_Delete(l);
	l = fx_expect(200, "GET", path, &w.u[P1], NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 2);
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(l, "items"))
		ck_assert_str_eq(fx_str(it, "service_provider_id"), w.pp1);
	cJSON_Delete(l);
	l = fx_expect(200, "GET", path, &p3, NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 1);
	ck_assert_str_eq(fx_str(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "items"), 0), "id"), b3);
	cJSON_Delete(l);

	/* Events: B's list never has A's event; a provider owns none. */
	l = fx_expect(200, "GET", "/api/events", &w.u[B], NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 1);
	ck_assert_str_eq(fx_str(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "items"), 0), "id"), w.eb);
	cJSON_Delete(l);
	l = fx_expect(200, "GET", "/api/events", &w.u[P1], NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 0);
	cJSON_Delete(l);
	snprintf(path, sizeof path, "/api/events?owner_id=%s", w.u[A].id);
	l = fx_expect(200, "GET", path, &w.u[ADM], NULL);
	ck_assert_int_eq(cJSON_GetObjectItem(l, "total")->valueint, 1);
	ck_assert_str_eq(fx_str(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "items"), 0), "id"), w.ea);
	cJSON_Delete(l);

	/* Payments: payer or payee; admins all. */
	static const int want[NACTORS] = { 1, 0, 2, 0, -1 };
	for (int a = 0; a < NACTORS; a++) {
		l = fx_expect(200, "GET", "/api/payments", &w.u[a], NULL);
		int total = cJSON_GetObjectItem(l, "total")->valueint;
		if (want[a] >= 0)
			ck_assert_msg(total == want[a], "%s sees %d payments", actor_names[a], total);
		else
			ck_assert_int_ge(total, 2);
		ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")),
		    total < 20 ? total : 20);
		cJSON_Delete(l);
	}
	free(b3);
	free(pp3);
	world_free(&w);
}
END_TEST

static const char *const payment_keys[] = { "id", "event_service_id", "payment_type",
	"payer_id", "payee_id", "amount_cents", "currency", "status", "stripe_payment_intent_id",
	"stripe_transfer_id", "stripe_refund_id", "created_at", "updated_at", NULL };

START_TEST(payment_objects_and_rows)
{
	struct world w;
	world_make(&w);
	char path[256];
	snprintf(path, sizeof path, "/api/payments/%s", w.charge);
	cJSON *p = fx_expect(200, "GET", path, &w.u[A], NULL);
	int n = 0;
	for (const cJSON *m = p->child; m != NULL; m = m->next)
		n++;
	for (const char *const *k = payment_keys; *k != NULL; k++, n--)
		ck_assert_msg(cJSON_GetObjectItemCaseSensitive(p, *k) != NULL, "no %s", *k);
	ck_assert_int_eq(n, 0);
	ck_assert_str_eq(fx_str(p, "payment_type"), "customer_payment");
	ck_assert_str_eq(fx_str(p, "payer_id"), w.u[A].id);
	ck_assert_str_eq(fx_str(p, "payee_id"), w.u[P1].id);
	ck_assert_int_eq(cJSON_GetObjectItem(p, "amount_cents")->valueint, 20000);
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(p, "stripe_transfer_id")));
	cJSON_Delete(p);
	snprintf(path, sizeof path, "/api/payments/%s", w.payout);
	p = fx_expect(200, "GET", path, &w.u[P1], NULL);
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(p, "payer_id")));
	ck_assert_str_eq(fx_str(p, "status"), "payout_started");
	cJSON_Delete(p);

	/* One payment of each type per booking, whatever the money code does. */
	PGconn *c = test_db_superuser();
	const char *dup[] = { w.bp, w.u[A].id, w.u[P1].id };
	PGresult *r = PQexecParams(c, "INSERT INTO payments (event_service_id, payment_type, payer_id, "
	    "payee_id, amount_cents, currency, status) VALUES ($1, 'customer_payment', $2, $3, 1, "
	    "'usd', 'requires_payment')", 3, NULL, dup, NULL, NULL, 0);
	ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23505");
	PQclear(r);
	PQfinish(c);
	fx_sql("UPDATE payments SET status = 'released', stripe_transfer_id = 'tr_123' WHERE id = $1",
	    w.payout, NULL, NULL);
	p = fx_expect(200, "GET", path, &w.u[ADM], NULL);
	ck_assert_str_eq(fx_str(p, "status"), "released");
	ck_assert_str_eq(fx_str(p, "stripe_transfer_id"), "tr_123");
	ck_assert_int_eq(cJSON_GetObjectItem(p, "amount_cents")->valueint, 18000);
	cJSON_Delete(p);
	world_free(&w);
}
END_TEST

int main(void)
{
	fx_init();
	Suite *s = suite_create("e2e-bola");
	TCase *tc = tcase_create("visibility");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_route_by_every_caller);
	tcase_add_test(tc, unknown_and_malformed_ids_are_404_for_everyone);
	tcase_add_test(tc, lists_show_only_what_the_caller_may_see);
	tcase_add_test(tc, payment_objects_and_rows);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
