/* The mail outbox (API.md "Mail"). A request never speaks SMTP: it queues
 * its mail with outbox_put() in the transaction of its cause, so a mail
 * exists exactly when its cause committed, and gala mailer
 * (server/outbox_sender.c) sends it with the rest of this module: claim the
 * next due mail, send it, record how that went.
 *
 * At most once: a claim is a committed lease (state 'sending' until
 * OUTBOX_LEASE_SECONDS from now) taken with SKIP LOCKED, so any number of
 * mailers never send the same mail at once, and a mail is sent again only
 * when its attempt left no record: the server's answer was lost, or the
 * mailer died before it could write one. Each attempt's number fences its
 * record, so a mailer whose lease ran out cannot overwrite its successor's.
 *
 * The body is sealed under a subkey of SECRET_KEY (gala mailer needs the
 * pool's key) and erased once the mail is sent or abandoned. */
#ifndef GALA_SERVICES_OUTBOX_H
#define GALA_SERVICES_OUTBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "clients/mailer.h"
#include "db/db.h"
#include "services/context.h"

/* A mail not sent this long after its cause is abandoned (API.md: 24 h). */
#define OUTBOX_GIVE_UP_SECONDS (24LL * 3600)
/* Retries back off up to this delay. */
#define OUTBOX_RETRY_MAX_SECONDS 3600
/* How long a claim lasts: well past the longest send, so that only a
 * mailer that is gone loses one. */
#define OUTBOX_LEASE_SECONDS (8LL * MAILER_TIMEOUT_SECONDS)
/* gala maintenance deletes finished rows (bodies long erased) this old. */
#define OUTBOX_KEEP_DAYS 7

/* A mail to queue; kind is one of the table's: "verification",
 * "password_reset", "password_changed". */
struct outbox_mail {
	const char *kind;
	const char *user_id;    /* whom it concerns (audit of a failure), or NULL */
	const char *to;
	const char *subject;
	const char *text;
};

/* Queues m in the caller's open transaction when due. The sealing and the
 * statement are the same whether or not it is due (then it inserts
 * nothing), so a request whose answer must not tell whether a mail was due
 * costs the same either way. */
enum db_status outbox_put(const struct svc_ctx *cx, const struct outbox_mail *m, bool due);

/* A mail claimed for one attempt (strings in the arena). */
struct outbox_claim {
	const char *id;
	const char *kind;
	const char *user_id;     /* or NULL */
	const char *request_id;  /* of the cause, or NULL */
	const char *to;
	const char *subject;
	const char *text;        /* the opened body; NULL when it does not open
	                          * (sealed under another SECRET_KEY) */
	long long created_at;    /* epoch seconds */
	long long age;           /* seconds since it was queued (database clock) */
	int attempt;             /* 1 for the first: the fence of its record */
};

/* Claims the next due mail for OUTBOX_LEASE_SECONDS, skipping those another
 * mailer holds; *found says whether there was one. */
enum db_status outbox_claim(arena_t *a, struct outbox_claim *c, bool *found);

enum outbox_outcome {
	OUTBOX_SENT,      /* sent: the body is erased */
	OUTBOX_RETRY,     /* not sent: try again after the delay */
	OUTBOX_FAILED,    /* given up: the body is erased, email.delivery audited */
};

/* Records how the attempt of c ended. A retry that would fall past
 * OUTBOX_GIVE_UP_SECONDS becomes a failure, and *outcome says so. error is a
 * reason without secrets (kept as last_error; NULL when sent). Nothing is
 * written when the claim is no longer this attempt's. */
enum db_status outbox_record(arena_t *a, const struct outbox_claim *c,
    enum outbox_outcome *outcome, int retry_in, const char *error);

/* The delay before the next attempt after failed ones: base·2^(failed−1),
 * at most OUTBOX_RETRY_MAX_SECONDS, scaled by a jitter in [1/2, 1] drawn
 * from random so that mails that failed together do not retry together. */
int outbox_retry_delay(int failed, int base_seconds, uint32_t random);

#endif
