/* Fixtures of the marketplace e2e programs (check_e2e_market,
 * check_e2e_bola): users, provider profiles, events and bookings made
 * through the API, plus the status changes the money code makes (pay,
 * webhooks), applied with the same service function it calls. */
#ifndef GALA_MARKET_FIXTURES_H
#define GALA_MARKET_FIXTURES_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "testlib.h"

struct fx_user {
	char id[40];
	char email[128];
	char role[16];
	char token[1100];
};

/* Call once from main(): libsodium, the in-process database connection
 * settings (the stack's gala_app role). */
void fx_init(void);

/* A user inserted into the database (verified or not) with an access token
 * signed with the stack's SECRET_KEY: quick, and what the API sees is the
 * same as for a registered user. role: customer, provider or admin. */
void fx_user(struct fx_user *u, const char *role, bool verified);

/* A user the way a client makes one: register, the OTP from the mail sink,
 * verify-email. */
void fx_register(struct fx_user *u, const char *role);

/* Sends a request as u (NULL: anonymous); body may be NULL. The response's
 * JSON is returned (caller frees) and its status stored in *status. */
cJSON *fx_call(const char *method, const char *path, const struct fx_user *u, const char *body,
    long *status);

/* As fx_call, and asserts the status (with the body in the message). */
cJSON *fx_expect(long want, const char *method, const char *path, const struct fx_user *u,
    const char *body);

/* Asserts an error envelope: status, code and (when not NULL) param. */
void fx_expect_error(long want, const char *code, const char *param, const char *method,
    const char *path, const struct fx_user *u, const char *body);

/* A string member of o, copied into a static rotating buffer. */
const char *fx_str(const cJSON *o, const char *name);

/* Objects through the API (asserting 201); each returns the new id,
 * malloc'd. fx_event's starts in a week, as a draft. */
char *fx_provider(const struct fx_user *u, const char *category, const char *city);
char *fx_event(const struct fx_user *owner);
char *fx_booking(const struct fx_user *owner, const char *event_id, const char *provider_id,
    long long amount_cents);

/* The provider profile id of u (who has one), malloc'd. */
char *fx_provider_of(const struct fx_user *u);

/* Moves a booking the way the money code will, in this process: through
 * booking_transition() under a row lock, as a Stripe webhook (actor_user
 * NULL, the system) or as a user with the given BOOKING_ACTOR_* bits.
 * Returns the enum gala_error. */
int fx_transition(const char *booking_id, int action, unsigned actor,
    const struct fx_user *actor_user);

/* requested -> accepted -> payment_pending -> paid (-> completed when
 * completed): the provider accepts through the API, the rest as the money
 * code would. */
void fx_booking_paid(const char *booking_id, const struct fx_user *owner,
    const struct fx_user *provider, bool completed);

/* The booking's status in the database, malloc'd. */
char *fx_booking_status(const char *booking_id);

/* Asserts the booking's status in the database. */
void fx_assert_status(const char *booking_id, const char *want);

/* Rows of audit_logs with this action whose metadata names the booking. */
int fx_audit_count(const char *action, const char *booking_id);

/* Runs SQL as the superuser with up to 3 text params; asserts success. */
void fx_sql(const char *sql, const char *p1, const char *p2, const char *p3);

#endif
