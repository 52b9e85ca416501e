/* The audit log (seed: Critical Gap 4): one row per sensitive action,
 * success and failure alike, written in the same transaction as the action.
 * The application's role can only INSERT and SELECT audit rows. Metadata
 * never holds a password, OTP or token. */
#ifndef GALA_AUDIT_H
#define GALA_AUDIT_H

#include <cjson/cJSON.h>

#include "db/db.h"
#include "services/context.h"

/* Inserts one row with the request's ip, user agent and request id (cx may
 * be NULL for the CLI). actor and target may be NULL. Takes ownership of
 * metadata (an object or NULL). */
enum db_status audit_write(const struct svc_ctx *cx, arena_t *a, const char *actor,
    const char *target, const char *action, const char *status, cJSON *metadata);

#endif
