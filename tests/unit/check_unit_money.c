/* Unit tests of the money code's pure parts: the Stripe client's encoding,
 * error parsing and retry decisions, and webhook signatures checked against
 * vectors made with Stripe's own Python library (tests/fakes). */
#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "clients/stripe.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/crypto.h"
#include "services/webhooks.h"

static arena_t *A;

static void setup(void)
{
	A = arena_new(4096);
}

static void teardown(void)
{
	arena_free(A);
}

START_TEST(form_encoding_nested_keys)
{
	struct stripe_param p[] = {
		{ "amount", "12500" },
		{ "metadata[event_service_id]", "1f0e-22" },
		{ "skipped", NULL },
		{ "expand[]", "latest_charge" },
		{ "items[0][price]", "price_1" },
		{ "description", "Dîner & DJ = 100%+" },
	};
	buf_t b;
	buf_init(&b, 4096);
	ck_assert_int_eq(stripe_form_encode(&b, p, sizeof p / sizeof p[0]), 0);
	ck_assert_str_eq(b.data, "amount=12500&metadata%5Bevent_service_id%5D=1f0e-22"
	    "&expand%5B%5D=latest_charge&items%5B0%5D%5Bprice%5D=price_1"
	    "&description=D%C3%AEner%20%26%20DJ%20%3D%20100%25%2B");
	buf_free(&b);

	buf_init(&b, 8);
	ck_assert_int_eq(stripe_form_encode(&b, p, 2), -1);
	buf_free(&b);
}
END_TEST

START_TEST(ids_checked_and_encoded_into_paths)
{
	static const char *const good[][2] = {
		{ "sub_1MowQVLkdIwHu7ixeRlqHVzs", "sub_" }, { "cus_NffrFeUfNV2Hib", "cus_" },
		{ "acct_1032D82eZvKYlo2C", "acct_" }, { "pi_3MtwBwLkdIwHu7ix28a3tqPa", "pi_" },
		{ "ch_3MmlLrLkdIwHu7ix0snN0B15", "ch_" }, { "tr_1MiN3gLkdIwHu7ixNCZvFdgA", "tr_" },
		{ "re_1Nispe2eZvKYlo2Cd31jOCgZ", "re_" }, { "evt_1NG8Du2eZvKYlo2CUI79vXWy", "evt_" },
		{ "price_1MoBy5LkdIwHu7ixZhnattbh", "price_" },
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		ck_assert_msg(stripe_id_valid(good[i][0], good[i][1]), "refused %s", good[i][0]);
	static const char *const bad[] = { "../customers/cus_x", "sub_../../customers/cus_x",
		"sub_", "sub", "cus_abc", "sub_abc/def", "sub_abc%2Fdef", "sub_abc?x=1", "sub_abc#x",
		"sub_abc def", "sub_abc\n", "sub_a.b", "sub_a_b", "sub_\xc3\xa9t\xc3\xa9", "" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(!stripe_id_valid(bad[i], "sub_"), "accepted %s", bad[i]);
	ck_assert(!stripe_id_valid(NULL, "sub_"));
	/* Bounded: 255 characters after the prefix, not one more. */
	char longest[4 + STRIPE_ID_MAX + 2];
	memcpy(longest, "sub_", 4);
	memset(longest + 4, 'a', STRIPE_ID_MAX);
	longest[4 + STRIPE_ID_MAX] = '\0';
	ck_assert(stripe_id_valid(longest, "sub_"));
	longest[4 + STRIPE_ID_MAX] = 'a';
	longest[4 + STRIPE_ID_MAX + 1] = '\0';
	ck_assert(!stripe_id_valid(longest, "sub_"));

	ck_assert_str_eq(stripe_object_path(A, "subscriptions", "sub_", "sub_Abc123", NULL),
	    "/v1/subscriptions/sub_Abc123");
	ck_assert_str_eq(stripe_object_path(A, "transfers", "tr_", "tr_9z", "reversals"),
	    "/v1/transfers/tr_9z/reversals");
	ck_assert_ptr_null(stripe_object_path(A, "subscriptions", "sub_", "../customers/cus_x",
	    NULL));
	ck_assert_ptr_null(stripe_object_path(A, "payment_intents", "pi_", "pi_1/cancel", NULL));
	ck_assert_ptr_null(stripe_object_path(A, "subscriptions", "sub_", "cus_x", NULL));
	ck_assert_ptr_null(stripe_object_path(A, "subscriptions", "sub_", NULL, NULL));

	/* A refused id never becomes a request. */
	struct config cfg = { .stripe_secret_key = "sk_test_x",
		.stripe_api_base = "http://127.0.0.1:9", .request_timeout_seconds = 5 };
	const struct config *saved = gala_config;
	gala_config = &cfg;
	struct stripe_result r;
	ck_assert_int_eq(stripe_call(A, "GET", NULL, NULL, 0, NULL, &r), STRIPE_REFUSED);
	ck_assert_int_eq(r.attempts, 0);
	ck_assert_int_eq(r.http_status, 0);
	gala_config = saved;
}
END_TEST

START_TEST(error_objects_parsed)
{
	struct stripe_result r = { 0 };
	const char *card = "{\"error\": {\"type\": \"card_error\", \"code\": \"card_declined\", "
	    "\"decline_code\": \"generic_decline\", \"message\": \"Your card was declined.\"}}";
	ck_assert_int_eq(stripe_parse_error(A, card, strlen(card), &r), 0);
	ck_assert_str_eq(r.error_type, "card_error");
	ck_assert_str_eq(r.error_code, "card_declined");
	ck_assert_str_eq(r.decline_code, "generic_decline");
	ck_assert_str_eq(r.message, "Your card was declined.");
	ck_assert_str_eq(r.error_param, "");

	const char *inv = "{\"error\": {\"type\": \"invalid_request_error\", \"code\": "
	    "\"resource_missing\", \"param\": \"destination\", \"message\": \"No such destination\"}}";
	ck_assert_int_eq(stripe_parse_error(A, inv, strlen(inv), &r), 0);
	ck_assert_str_eq(r.error_type, "invalid_request_error");
	ck_assert_str_eq(r.error_param, "destination");

	const char *html = "<html>502 Bad Gateway</html>";
	ck_assert_int_eq(stripe_parse_error(A, html, strlen(html), &r), -1);
	const char *other = "{\"id\": \"tr_1\"}";
	ck_assert_int_eq(stripe_parse_error(A, other, strlen(other), &r), -1);
}
END_TEST

START_TEST(retry_decisions)
{
	/* Network errors, lock conflicts, rate limits and server errors. */
	ck_assert(stripe_should_retry(0, NULL));
	ck_assert(stripe_should_retry(409, NULL));
	ck_assert(stripe_should_retry(429, NULL));
	ck_assert(stripe_should_retry(500, NULL));
	ck_assert(stripe_should_retry(503, NULL));
	/* Refusals are final... */
	ck_assert(!stripe_should_retry(400, NULL));
	ck_assert(!stripe_should_retry(402, NULL));
	ck_assert(!stripe_should_retry(404, NULL));
	/* ...unless Stripe says otherwise, either way. */
	ck_assert(stripe_should_retry(400, "true"));
	ck_assert(!stripe_should_retry(500, "false"));
	ck_assert(!stripe_should_retry(409, "false"));

	for (int n = 1; n <= 6; n++) {
		long cap = 250L << (n - 1);
		if (cap > 2000)
			cap = 2000;
		for (int i = 0; i < 50; i++) {
			long ms = stripe_backoff_ms(n);
			ck_assert_msg(ms >= cap / 2 && ms <= cap, "backoff(%d) = %ld", n, ms);
		}
	}
}
END_TEST

static cJSON *load_vectors(void)
{
	const char *src = getenv("GALA_SRCDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/tests/fakes/stripe_signature_vectors.json", src ? src : ".");
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	static char data[1 << 20];
	size_t n = fread(data, 1, sizeof data - 1, f);
	fclose(f);
	data[n] = '\0';
	cJSON *root = cJSON_Parse(data);
	ck_assert_ptr_nonnull(root);
	return root;
}

static const char *vs(const cJSON *v, const char *name)
{
	const cJSON *m = cJSON_GetObjectItem(v, name);
	ck_assert_msg(cJSON_IsString(m), "vector member %s", name);
	return m->valuestring;
}

static long long vi(const cJSON *v, const char *name)
{
	const cJSON *m = cJSON_GetObjectItem(v, name);
	ck_assert_msg(cJSON_IsNumber(m), "vector member %s", name);
	return (long long)m->valuedouble;
}

START_TEST(signature_vectors_from_stripe_python)
{
	cJSON *root = load_vectors();
	const cJSON *vectors = cJSON_GetObjectItem(root, "vectors");
	long long tolerance = (long long)cJSON_GetObjectItem(root, "tolerance_seconds")->valuedouble;
	ck_assert_int_eq(tolerance, 300);
	int n = 0, valid = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, vectors) {
		const char *payload = vs(v, "payload");
		bool want = cJSON_IsTrue(cJSON_GetObjectItem(v, "valid"));
		bool got = stripe_signature_valid(vs(v, "header"), payload, strlen(payload),
		    vs(v, "secret"), vi(v, "now"), tolerance);
		ck_assert_msg(got == want, "vector %s: got %d, want %d", vs(v, "name"), got, want);
		/* The secret in a list of several (a rolled secret) verifies the same. */
		char *list = arena_printf(A, "whsec_unrelated_1, %s", vs(v, "secret"));
		ck_assert(stripe_signature_valid(vs(v, "header"), payload, strlen(payload), list,
		    vi(v, "now"), tolerance) == want);
		n++;
		valid += want;
	}
	ck_assert_int_ge(n, 10);
	ck_assert_int_gt(valid, 0);
	ck_assert_int_lt(valid, n);
	cJSON_Delete(root);
}
END_TEST

START_TEST(signature_edge_cases)
{
	const char *payload = "{\"id\":\"evt_1\"}";
	char mac[65];
	char *msg = arena_printf(A, "1700000000.%s", payload);
	crypto_hmac_sha256_hex("whsec_b", msg, strlen(msg), mac);
	char *hdr = arena_printf(A, "t=1700000000,v1=%s", mac);
	ck_assert(stripe_signature_valid(hdr, payload, strlen(payload), "whsec_a,whsec_b",
	    1700000000, 300));
	ck_assert(!stripe_signature_valid(hdr, payload, strlen(payload), "whsec_a", 1700000000, 300));
	ck_assert(!stripe_signature_valid(NULL, payload, strlen(payload), "whsec_b", 1700000000, 300));
	ck_assert(!stripe_signature_valid("", payload, strlen(payload), "whsec_b", 1700000000, 300));
	ck_assert(!stripe_signature_valid("garbage", payload, strlen(payload), "whsec_b",
	    1700000000, 300));
	/* A timestamp that is not a number, and an empty secret list. */
	ck_assert(!stripe_signature_valid(arena_printf(A, "t=17x,v1=%s", mac), payload,
	    strlen(payload), "whsec_b", 1700000000, 300));
	ck_assert(!stripe_signature_valid(hdr, payload, strlen(payload), "", 1700000000, 300));
	ck_assert(!stripe_signature_valid(hdr, payload, strlen(payload), " , ", 1700000000, 300));
	/* The payload's length counts, not a NUL inside it. */
	ck_assert(!stripe_signature_valid(hdr, payload, strlen(payload) - 1, "whsec_b",
	    1700000000, 300));
}
END_TEST

START_TEST(webhook_authentication_decision)
{
	const char *payload = "{}";
	long long now = 1700000000;
	char mac[65];
	char *msg = arena_printf(A, "%lld.%s", now, payload);
	crypto_hmac_sha256_hex("whsec_x", msg, strlen(msg), mac);
	char *good = arena_printf(A, "t=%lld,v1=%s", now, mac);

	/* Without a secret everything is refused, signed or not, in every
	 * environment, unless the insecure opt-in is set. */
	for (int e = ENV_DEVELOPMENT; e <= ENV_PRODUCTION; e++) {
		ck_assert_int_eq(webhook_authenticate(e, false, NULL, good, payload, 2, now),
		    WEBHOOK_DENY);
		ck_assert_int_eq(webhook_authenticate(e, false, NULL, NULL, payload, 2, now),
		    WEBHOOK_DENY);
	}
	/* The opt-in: accepted unverified outside production, never in it. */
	ck_assert_int_eq(webhook_authenticate(ENV_DEVELOPMENT, true, NULL, NULL, payload, 2, now),
	    WEBHOOK_UNVERIFIED);
	ck_assert_int_eq(webhook_authenticate(ENV_TEST, true, NULL, "t=1,v1=00", payload, 2, now),
	    WEBHOOK_UNVERIFIED);
	ck_assert_int_eq(webhook_authenticate(ENV_PRODUCTION, true, NULL, NULL, payload, 2, now),
	    WEBHOOK_DENY);
	/* A secret is set: the header must be there and valid, in any
	 * environment, opt-in or not. */
	for (int e = ENV_DEVELOPMENT; e <= ENV_PRODUCTION; e++) {
		for (int allow = 0; allow <= 1; allow++) {
			ck_assert_int_eq(webhook_authenticate(e, allow, "whsec_x", good, payload, 2, now),
			    WEBHOOK_VERIFIED);
			ck_assert_int_eq(webhook_authenticate(e, allow, "whsec_x", NULL, payload, 2, now),
			    WEBHOOK_DENY);
			ck_assert_int_eq(webhook_authenticate(e, allow, "whsec_y", good, payload, 2, now),
			    WEBHOOK_DENY);
			ck_assert_int_eq(webhook_authenticate(e, allow, "whsec_x", good, payload, 2,
			    now + 301), WEBHOOK_DENY);
		}
	}
}
END_TEST

static Suite *money_suite(void)
{
	Suite *s = suite_create("unit-money");
	TCase *client = tcase_create("stripe-client");
	tcase_add_checked_fixture(client, setup, teardown);
	tcase_add_test(client, form_encoding_nested_keys);
	tcase_add_test(client, ids_checked_and_encoded_into_paths);
	tcase_add_test(client, error_objects_parsed);
	tcase_add_test(client, retry_decisions);
	suite_add_tcase(s, client);
	TCase *sig = tcase_create("webhook-signature");
	tcase_add_checked_fixture(sig, setup, teardown);
	tcase_add_test(sig, signature_vectors_from_stripe_python);
	tcase_add_test(sig, signature_edge_cases);
	tcase_add_test(sig, webhook_authentication_decision);
	suite_add_tcase(s, sig);
	return s;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	SRunner *sr = srunner_create(money_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
