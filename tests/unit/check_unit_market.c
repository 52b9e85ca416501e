/* Unit tests of the marketplace's pure parts: the booking state machine,
 * money helpers and event times. Nothing running. */
#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/money.h"
#include "services/bookings.h"
#include "http/validate.h"
#include "services/events.h"

#define OWNER BOOKING_ACTOR_OWNER
#define PROVIDER BOOKING_ACTOR_PROVIDER
#define ADMIN BOOKING_ACTOR_ADMIN
#define SYSTEM BOOKING_ACTOR_SYSTEM

static const char *const statuses[] = { "requested", "accepted", "declined", "cancelled",
	"payment_pending", "paid", "completed", "released", "refunded" };

static enum booking_status st(const char *name)
{
	enum booking_status s;
	ck_assert_msg(booking_status_parse(name, &s) == 0, "unknown status %s", name);
	return s;
}

/* Every allowed change of API.md, with who makes it. */
static const struct {
	enum booking_action action;
	const char *from, *to;
	unsigned actor;
} allowed[] = {
	{ BOOKING_ACCEPT, "requested", "accepted", PROVIDER },
	{ BOOKING_DECLINE, "requested", "declined", PROVIDER },
	{ BOOKING_CANCEL, "requested", "cancelled", OWNER },
	{ BOOKING_CANCEL, "requested", "cancelled", PROVIDER },
	{ BOOKING_CANCEL, "accepted", "cancelled", OWNER },
	{ BOOKING_CANCEL, "accepted", "cancelled", PROVIDER },
	{ BOOKING_CANCEL, "payment_pending", "cancelled", OWNER },
	{ BOOKING_CANCEL, "payment_pending", "cancelled", PROVIDER },
	{ BOOKING_CANCEL, "paid", "refunded", OWNER },
	{ BOOKING_CANCEL, "paid", "refunded", PROVIDER },
	{ BOOKING_PAY, "accepted", "payment_pending", OWNER },
	{ BOOKING_PAYMENT_SUCCEEDED, "payment_pending", "paid", SYSTEM },
	/* Money code: success after a declined first card on the same intent. */
	{ BOOKING_PAYMENT_SUCCEEDED, "accepted", "paid", SYSTEM },
	{ BOOKING_PAYMENT_FAILED, "payment_pending", "accepted", SYSTEM },
	{ BOOKING_COMPLETE, "paid", "completed", OWNER },
	{ BOOKING_COMPLETE, "paid", "completed", ADMIN },
	{ BOOKING_RELEASE, "completed", "released", OWNER },
	{ BOOKING_RELEASE, "completed", "released", ADMIN },
	/* Money code: gala maintenance completing a stuck payout. */
	{ BOOKING_RELEASE, "completed", "released", SYSTEM },
	{ BOOKING_REFUND, "paid", "refunded", ADMIN },
	{ BOOKING_REFUND, "completed", "refunded", ADMIN },
	{ BOOKING_REFUND, "released", "refunded", ADMIN },
	{ BOOKING_CHARGE_REFUNDED, "paid", "refunded", SYSTEM },
	{ BOOKING_CHARGE_REFUNDED, "completed", "refunded", SYSTEM },
	{ BOOKING_CHARGE_REFUNDED, "released", "refunded", SYSTEM },
};
#define NALLOWED (sizeof allowed / sizeof allowed[0])

START_TEST(machine_allows_exactly_the_api_transitions)
{
	/* Every (action, status, single actor): allowed exactly when listed. */
	const unsigned actors[] = { OWNER, PROVIDER, ADMIN, SYSTEM };
	for (int a = 0; a < BOOKING__ACTION_COUNT; a++)
		for (int s = 0; s < BOOKING__STATUS_COUNT; s++)
			for (size_t k = 0; k < 4; k++) {
				const char *want = NULL;
				for (size_t i = 0; i < NALLOWED; i++)
					if ((int)allowed[i].action == a && st(allowed[i].from) == (enum booking_status)s &&
					    allowed[i].actor == actors[k])
						want = allowed[i].to;
				enum booking_status to = BOOKING__STATUS_COUNT;
				enum gala_error e = booking_decide((enum booking_status)s,
				    (enum booking_action)a, actors[k], &to);
				if (want != NULL) {
					ck_assert_msg(e == GE_OK, "%s from %s by %u refused",
					    booking_action_name((enum booking_action)a), statuses[s], actors[k]);
					ck_assert_str_eq(booking_status_name(to), want);
				} else {
					ck_assert_msg(e == GE_FORBIDDEN || e == GE_INVALID_STATE,
					    "%s from %s by %u allowed", booking_action_name((enum booking_action)a),
					    statuses[s], actors[k]);
				}
			}
}
END_TEST

START_TEST(final_statuses_have_no_way_out)
{
	const char *finals[] = { "declined", "cancelled", "refunded" };
	for (size_t f = 0; f < 3; f++)
		for (int a = 0; a < BOOKING__ACTION_COUNT; a++) {
			enum booking_status to;
			ck_assert(booking_decide(st(finals[f]), (enum booking_action)a,
			    OWNER | PROVIDER | ADMIN | SYSTEM, &to) != GE_OK);
		}
}
END_TEST

/* 403 for a caller who may never take the action (or not from here), 409
 * for an allowed caller in the wrong state: the examples of API.md. */
START_TEST(forbidden_or_invalid_state_as_api_says)
{
	static const struct {
		enum booking_action action;
		const char *from;
		unsigned actor;
		enum gala_error want;
	} cases[] = {
		{ BOOKING_ACCEPT, "requested", OWNER, GE_FORBIDDEN },       /* owner accepting */
		{ BOOKING_ACCEPT, "requested", ADMIN, GE_FORBIDDEN },
		{ BOOKING_ACCEPT, "declined", PROVIDER, GE_INVALID_STATE },  /* accept of a declined one */
		{ BOOKING_ACCEPT, "accepted", PROVIDER, GE_INVALID_STATE },
		{ BOOKING_DECLINE, "accepted", PROVIDER, GE_INVALID_STATE },
		{ BOOKING_DECLINE, "requested", OWNER, GE_FORBIDDEN },
		{ BOOKING_COMPLETE, "accepted", OWNER, GE_INVALID_STATE },   /* complete of an unpaid one */
		{ BOOKING_COMPLETE, "requested", ADMIN, GE_INVALID_STATE },
		{ BOOKING_COMPLETE, "paid", PROVIDER, GE_FORBIDDEN },
		{ BOOKING_CANCEL, "completed", OWNER, GE_FORBIDDEN },        /* refund is admin only */
		{ BOOKING_CANCEL, "released", PROVIDER, GE_FORBIDDEN },
		{ BOOKING_CANCEL, "completed", ADMIN, GE_FORBIDDEN },
		{ BOOKING_CANCEL, "cancelled", OWNER, GE_INVALID_STATE },
		{ BOOKING_CANCEL, "declined", PROVIDER, GE_INVALID_STATE },
		{ BOOKING_CANCEL, "refunded", OWNER, GE_INVALID_STATE },
		{ BOOKING_CANCEL, "requested", ADMIN, GE_FORBIDDEN },
		{ BOOKING_RELEASE, "paid", OWNER, GE_INVALID_STATE },        /* releasing before completed */
		{ BOOKING_RELEASE, "completed", PROVIDER, GE_FORBIDDEN },
		{ BOOKING_REFUND, "paid", OWNER, GE_FORBIDDEN },
		{ BOOKING_REFUND, "accepted", ADMIN, GE_INVALID_STATE },
		{ BOOKING_PAY, "requested", OWNER, GE_INVALID_STATE },
		{ BOOKING_PAY, "accepted", PROVIDER, GE_FORBIDDEN },
		{ BOOKING_PAYMENT_SUCCEEDED, "payment_pending", OWNER, GE_FORBIDDEN },
		{ BOOKING_PAYMENT_SUCCEEDED, "cancelled", SYSTEM, GE_INVALID_STATE },
		{ BOOKING_ACCEPT, "requested", 0, GE_FORBIDDEN },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum booking_status to;
		enum gala_error e = booking_decide(st(cases[i].from), cases[i].action, cases[i].actor, &to);
		ck_assert_msg(e == cases[i].want, "case %zu: %s from %s by %u gave %d", i,
		    booking_action_name(cases[i].action), cases[i].from, cases[i].actor, (int)e);
	}
}
END_TEST

START_TEST(several_roles_count_together)
{
	enum booking_status to;
	/* An admin who owns the event may complete it and cancel it. */
	ck_assert_int_eq(booking_decide(st("requested"), BOOKING_CANCEL, OWNER | ADMIN, &to), GE_OK);
	ck_assert_str_eq(booking_status_name(to), "cancelled");
	ck_assert_int_eq(booking_decide(st("paid"), BOOKING_COMPLETE, OWNER | ADMIN, &to), GE_OK);
	ck_assert_str_eq(booking_status_name(to), "completed");
}
END_TEST

START_TEST(status_names_round_trip)
{
	for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
		ck_assert_str_eq(booking_status_name(st(statuses[i])), statuses[i]);
	enum booking_status s;
	ck_assert_int_eq(booking_status_parse("Paid", &s), -1);
	ck_assert_int_eq(booking_status_parse("", &s), -1);
	ck_assert_int_eq(booking_status_parse(NULL, &s), -1);
}
END_TEST

START_TEST(currencies_are_lowercase_iso_4217)
{
	const char *good[] = { "usd", "eur", "gbp", "jpy", "chf", "aed", "zmw", "xof", "sek" };
	const char *bad[] = { "USD", "Usd", "us", "usdd", "", "xau", "xts", "xxx", "abc", "us1",
		"u d" };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		ck_assert_msg(money_currency_valid(good[i]), "%s refused", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(!money_currency_valid(bad[i]), "%s accepted", bad[i]);
	ck_assert(!money_currency_valid(NULL));
}
END_TEST

START_TEST(platform_fee_is_floored_basis_points)
{
	ck_assert_int_eq(money_platform_fee(10000, 1000), 1000);
	ck_assert_int_eq(money_platform_fee(999, 1000), 99);
	ck_assert_int_eq(money_platform_fee(9, 1000), 0);
	ck_assert_int_eq(money_platform_fee(12345, 250), 308);   /* 308.625 */
	ck_assert_int_eq(money_platform_fee(12345, 0), 0);
	ck_assert_int_eq(money_platform_fee(MONEY_MAX_AMOUNT_CENTS, 10000), MONEY_MAX_AMOUNT_CENTS);
	ck_assert_int_eq(money_platform_fee(MONEY_MAX_AMOUNT_CENTS, 1000), 9999999);
}
END_TEST

START_TEST(event_times_parse_to_instants)
{
	long long t;
	ck_assert_int_eq(rfc3339_to_unix("1970-01-01T00:00:00Z", &t), 0);
	ck_assert_int_eq(t, 0);
	ck_assert_int_eq(rfc3339_to_unix("2026-05-01T18:00:00Z", &t), 0);
	ck_assert_int_eq(t, 1777658400);
	/* The same instant with an offset, a fraction, lower-case letters. */
	ck_assert_int_eq(rfc3339_to_unix("2026-05-01T20:00:00+02:00", &t), 0);
	ck_assert_int_eq(t, 1777658400);
	ck_assert_int_eq(rfc3339_to_unix("2026-05-01T13:30:00.250-04:30", &t), 0);
	ck_assert_int_eq(t, 1777658400);
	ck_assert_int_eq(rfc3339_to_unix("2026-05-01t18:00:00z", &t), 0);
	ck_assert_int_eq(t, 1777658400);
	ck_assert_int_eq(rfc3339_to_unix("2024-02-29T00:00:00Z", &t), 0);
	ck_assert_int_eq(rfc3339_to_unix("2000-02-29T00:00:00Z", &t), 0);
	/* Against the C library over many days. */
	for (long long day = -1000; day < 40000; day += 37) {
		time_t want = (time_t)(day * 86400 + 3723);
		struct tm tm;
		gmtime_r(&want, &tm);
		char buf[32];
		strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
		ck_assert_int_eq(rfc3339_to_unix(buf, &t), 0);
		ck_assert_msg(t == (long long)want, "%s: %lld != %lld", buf, t, (long long)want);
	}
}
END_TEST

START_TEST(event_times_refuse_what_is_no_instant)
{
	const char *bad[] = { "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-04-31T10:00:00Z",
		"2026-13-01T10:00:00Z", "2026-00-10T10:00:00Z", "2026-01-00T10:00:00Z",
		"2026-01-01T24:00:00Z", "2026-01-01T10:60:00Z", "2026-01-01T10:00:00",
		"2026-01-01", "0000-01-01T00:00:00Z", "2026-01-01T10:00:00+24:00", "tomorrow", "" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		long long t;
		ck_assert_msg(rfc3339_to_unix(bad[i], &t) == -1, "%s accepted", bad[i]);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("unit-market");
	TCase *machine = tcase_create("booking machine");
	tcase_add_test(machine, machine_allows_exactly_the_api_transitions);
	tcase_add_test(machine, final_statuses_have_no_way_out);
	tcase_add_test(machine, forbidden_or_invalid_state_as_api_says);
	tcase_add_test(machine, several_roles_count_together);
	tcase_add_test(machine, status_names_round_trip);
	suite_add_tcase(s, machine);
	TCase *money = tcase_create("money and times");
	tcase_add_test(money, currencies_are_lowercase_iso_4217);
	tcase_add_test(money, platform_fee_is_floored_basis_points);
	tcase_add_test(money, event_times_parse_to_instants);
	tcase_add_test(money, event_times_refuse_what_is_no_instant);
	suite_add_tcase(s, money);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
