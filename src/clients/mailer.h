/* The one mailer: SMTP through libcurl (SMTP_URL smtp:// with STARTTLS
 * when offered, or smtps://), plain-text UTF-8 mails with RFC 5322 headers.
 * Sending happens after the action's transaction commits; a failure is
 * returned (and logged) so that the caller can audit it, never fatal. */
#ifndef GALA_MAILER_H
#define GALA_MAILER_H

#include "core/buf.h"

/* Sends one mail. Returns 0, or -1 (not configured, refused, unreachable). */
int mailer_send(const char *to, const char *subject, const char *text);

/* --- For the unit tests. --- */

/* Builds the message (headers and body) into out. */
int mailer_format(buf_t *out, const char *from, const char *to, const char *subject,
    const char *text, long long now);

/* The addr-spec of "Name <addr>" or of a bare address, into out. */
int mailer_address(const char *from, char *out, size_t outlen);

#endif
