/* The Stripe half of the fault matrix (issue 14, part 5), shared by the
 * programs of pay, release, refund and subscribe: every Stripe call of a
 * flow (a step) meets every failure the fake can make -- 5xx, a timeout, a
 * slow answer, a reset connection, before and after the call took effect.
 * Each case ends in its step's defined error (API.md), leaves the database
 * consistent, is completed by a retry or by gala maintenance, and never
 * makes a second PaymentIntent, transfer, reversal, refund, customer or
 * subscription: every count is read from what the fake holds. */
#ifndef GALA_STRIPE_MATRIX_H
#define GALA_STRIPE_MATRIX_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "e2e/market_fixtures.h"

struct fault {
	const char *name;
	const char *rule;        /* the fake's rule (JSON members), without method and path */
	bool fails;              /* the API call ends in the step's defined error */
	bool effect;             /* Stripe does it all the same (now, or a moment later) */
	bool writes_only;        /* no sense for a GET: there is no effect to have */
};

/* A booking with everyone around it. */
struct deal {
	struct fx_user owner, provider, admin;
	char *provider_id, *event_id, *id;
	char pi[128];
	char acct[128];
};

/* One case of a step: what its callbacks share. */
struct mcase {
	const struct fault *fault;
	bool by_maintenance;     /* complete it with gala maintenance, not a retry */
	struct deal d;           /* pay, release, refund */
	struct fx_user user;     /* subscribe */
	char key[64];            /* the client's Idempotency-Key, the same on every retry */
	char saved[256];         /* what arrange remembers (an id, a secret) */
	long status;             /* of the last API call */
	cJSON *answer;           /* its JSON body */
};

struct step {
	const char *name;
	const char *method, *path;      /* the Stripe call that fails (fnmatch pattern) */
	long error_status;              /* its defined error */
	const char *error_code;
	void (*arrange)(struct mcase *c);       /* the state before the call */
	void (*act)(struct mcase *c);           /* the API call (matrix_call) */
	void (*assert_failed)(struct mcase *c); /* the state after the error */
	void (*complete)(struct mcase *c);      /* a retry, or maintenance */
	void (*assert_done)(struct mcase *c);   /* one of everything */
	bool maintenance_completes;     /* half its cases complete by maintenance */
};

/* The number of (step, fault) pairs, and running the index-th of them. */
int matrix_size(const struct step *steps, size_t nsteps);
void matrix_run(const struct step *steps, size_t nsteps, int index);

/* A call to the API as u with the case's Idempotency-Key: status and JSON
 * body in c. */
void matrix_call(struct mcase *c, const char *method, const char *path,
    const struct fx_user *u, const char *body);
void matrix_expect(struct mcase *c, long status);

/* The fake's control API (asserts 200; caller frees the answer). */
cJSON *fake(const char *method, const char *path, const char *body);
/* Stripe objects of a type whose member (or metadata member, "metadata.x")
 * equals value. */
int fake_count(const char *type, const char *member, const char *value);
/* Waits up to 3 s for that count to reach want (an effect that lands after
 * the client gave up); returns the last count. */
int fake_wait_count(const char *type, const char *member, const char *value, int want);
/* The one such object (asserted), caller frees. */
cJSON *fake_find(const char *type, const char *member, const char *value);
/* Requests the fake got with this method whose path starts with prefix and
 * whose path, query or body holds needle, and that carried key as their
 * Idempotency-Key (any, or none, when key is NULL). */
int fake_calls(const char *method, const char *prefix, const char *needle, const char *key);
/* There were such requests and every one carried key; returns how many. */
int assert_one_key(const char *method, const char *prefix, const char *needle, const char *key);
/* Has the fake sign and deliver an event about a stored object to the app. */
void fake_event(const char *type, const char *object_id);

/* Deals: a booking of 100.00 (fee 10.00) whose event ended a day ago, up
 * to the state asked for, through the API and the fake. */
void deal_make(struct deal *d, bool onboarded, bool paid, bool completed);
void deal_free(struct deal *d);
const char *path_of(const char *fmt, const char *id);

/* The database, read as the superuser. */
char *db_value1(const char *sql, const char *p1);
void assert_booking(const char *booking_id, const char *want);
/* The status of the booking's payment of a type, or NULL for none. */
void assert_payment(const char *booking_id, const char *type, const char *want);
/* The payout looks stuck: older than PAYOUT_IN_PROGRESS_SECONDS. */
void backdate_payout(const char *booking_id);
/* gala maintenance with the stack's settings; asserts it exits 0. */
void run_maintenance(void);

#endif
