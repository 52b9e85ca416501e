/* Validation of JSON bodies and query parameters. A validator stops at the
 * first problem and answers 422 naming the field in "param"; every later
 * call is a no-op, so a handler validates everything and checks once. */
#ifndef GALA_VALIDATE_H
#define GALA_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "http/request.h"

struct validator {
	struct request *req;
	const cJSON *obj;     /* the body (NULL reads as {}) */
	bool failed;
};

void v_init(struct validator *v, struct request *req);

/* Sets the 422 (once). */
void v_fail(struct validator *v, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Refuses members not in allowed (NULL-terminated): no mass assignment. */
void v_only(struct validator *v, const char *const *allowed);

/* A string member of min..max characters, trimmed of surrounding white
 * space when trim is set. Returns it (arena copy) or NULL when absent and
 * not required, or on failure. */
const char *v_string(struct validator *v, const char *name, bool required,
    size_t min, size_t max, bool trim);

/* An email address (lower-cased, trimmed, at most 254 characters). */
const char *v_email(struct validator *v, const char *name);

/* A string that must be one of options. */
const char *v_enum(struct validator *v, const char *name, bool required,
    const char *const *options);

/* An integer member in min..max; *present tells whether it was sent. */
long long v_int(struct validator *v, const char *name, bool required,
    long long min, long long max, bool *present);

/* A boolean member; def when absent. */
bool v_bool(struct validator *v, const char *name, bool def);

/* A UUID string. */
const char *v_uuid(struct validator *v, const char *name, bool required);

/* ?limit= and ?offset= of lists: 1..100 (default def_limit) and >= 0. */
void v_page(struct validator *v, int def_limit, int *limit, int *offset);

/* A query parameter that, when present, must be a UUID. */
const char *v_query_uuid(struct validator *v, const char *name);

/* An RFC 3339 timestamp string; returns the instant it names in UTC
 * (rfc3339_to_utc) or NULL. */
const char *v_timestamp(struct validator *v, const char *name, bool required, bool query);

/* Seconds since 1970 of a valid RFC 3339 time (any fraction dropped): 0, or
 * -1 when it is not one or names a day that does not exist. */
int rfc3339_to_unix(const char *s, long long *epoch);

/* Number of UTF-8 characters. */
size_t utf8_length(const char *s);

/* --- For the unit tests. --- */

bool rfc3339_valid(const char *s);

/* The instant of an RFC 3339 time as "2026-05-01T16:00:00[.ffffff]Z", or
 * NULL when it is malformed, names a day that does not exist (2026-02-30)
 * or falls outside the years 1..9999. Postgres refuses offsets beyond
 * +-15:59 that RFC 3339 allows; converting here means no valid time ever
 * reaches SQL in a form it rejects with a server error. */
const char *rfc3339_to_utc(arena_t *a, const char *s);

#endif
