/* The read path of the audit log (seed: Critical Gap 4): filtered, newest
 * first, with the total of the filtered rows. The write path is
 * core/audit.h. */
#ifndef GALA_SERVICES_AUDIT_LOGS_H
#define GALA_SERVICES_AUDIT_LOGS_H

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "core/errors.h"

/* Every filter is optional (NULL). Times are validated RFC 3339 strings;
 * created_after and created_before are exclusive bounds. */
struct audit_log_filter {
	const char *action;
	const char *status;
	const char *actor_user_id;
	const char *target_user_id;
	const char *created_after;
	const char *created_before;
	int limit;
	int offset;
};

/* Sets *items to a new JSON array of audit entries (API.md's shape,
 * metadata as an object; the caller owns it) and *total to the number of
 * rows the filter matches. Count and page come from one statement, so they
 * agree. Returns GE_OK, GE_DB_UNAVAILABLE or GE_INTERNAL. */
enum gala_error audit_logs_list(arena_t *a, const struct audit_log_filter *f, cJSON **items,
    long long *total);

#endif
