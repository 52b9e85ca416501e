/* The one SMTP client: libcurl (SMTP_URL smtps://, or smtp:// with STARTTLS
 * when offered, required once SMTP credentials are set), plain-text UTF-8
 * mails with RFC 5322 headers. Only gala mailer calls it: a request never
 * waits on SMTP, it queues its mail in the outbox (services/outbox.h). */
#ifndef GALA_MAILER_H
#define GALA_MAILER_H

#include <stddef.h>

#include "core/buf.h"

struct mail {
	const char *id;         /* unique per message: the Message-ID, the same on
	                         * every attempt, so a copy sent twice is known */
	long long date;         /* when it was written, epoch seconds: Date: */
	const char *to;
	const char *subject;
	const char *text;
};

/* The longest one send may take (connecting included). */
#define MAILER_TIMEOUT_SECONDS 15

enum mailer_result {
	MAILER_SENT,            /* the server took it */
	MAILER_RETRY,           /* not taken, or its answer was lost: try again */
	MAILER_REFUSED,         /* refused for good (a 5xx answer), or unbuildable */
};

/* Sends one mail; on failure a short reason (no address, no body) goes to
 * error. */
enum mailer_result mailer_send(const struct mail *m, char *error, size_t errlen);

/* --- For the unit tests. --- */

/* Builds the message (headers and body) into out. */
int mailer_format(buf_t *out, const char *from, const struct mail *m);

/* The addr-spec of "Name <addr>" or of a bare address, into out. */
int mailer_address(const char *from, char *out, size_t outlen);

#endif
