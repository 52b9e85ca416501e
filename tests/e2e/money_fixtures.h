/* Fixtures of the money e2e programs (check_e2e_money, check_e2e_failover,
 * tests/hosts): the Stripe fake's control API (TEST_STRIPE_URL), and a
 * booking taken through the API up to paid, completed and releasable, with
 * the provider's connected account onboarded at the fake. Every helper
 * asserts what it relies on. */
#ifndef GALA_MONEY_FIXTURES_H
#define GALA_MONEY_FIXTURES_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "market_fixtures.h"

/* A booking with everyone around it. */
struct deal {
	struct fx_user owner, provider, admin;
	char *provider_id, *event_id, *id;
	char pi[128];
	char acct[128];
};

/* A call to the fake's control API (asserts 200); caller frees. */
cJSON *fake(const char *method, const char *path, const char *body);

/* Adds a failure rule (POST /_fake/fail). */
void fake_fail(const char *rule_json);

/* Stripe objects of a type at the fake whose member equals value. */
int fake_count(const char *type, const char *member, const char *value);

/* The one object of a type whose member equals value (caller frees). */
cJSON *fake_find(const char *type, const char *member, const char *value);

/* Requests the fake received with this Idempotency-Key. */
int fake_requests(const char *method, const char *key);

/* Has the fake sign and deliver an event to the app through nginx; object
 * is a stored object's id, event_id NULL for a fresh one. Returns the app's
 * status, and its body in *app_body (malloc'd) unless NULL. */
long send_event(const char *type, const char *object_id, const char *event_id,
    char **app_body);

/* A one-value query with one parameter, as the superuser (malloc'd). */
char *db_value1(const char *sql, const char *p1);

/* Asserts the booking's status, and its payment row of a type (NULL: none). */
void assert_status(const char *booking_id, const char *want);
void assert_payment(const char *booking_id, const char *type, const char *want);

/* fmt with id in it, in one of four rotating static buffers. */
const char *path_of(const char *fmt, const char *id);

/* Moves the event's times to ago_hours before now (negative: ahead), for
 * the payout hold: a release waits for the event's end. */
void event_ends(const struct deal *d, int ago_hours);

/* A booking of 100.00 (fee 10.00) up to the state asked for, of an event
 * that ended a day ago. */
void deal(struct deal *d, bool onboarded, bool paid, bool completed);
void deal_free(struct deal *d);

#endif
