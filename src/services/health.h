/* Health: whether this worker can do useful work, as the load balancer
 * and an operator see it. */
#ifndef GALA_HEALTH_H
#define GALA_HEALTH_H

#include "core/errors.h"
#include "services/context.h"

/* One round trip to the database. GE_OK with *schema_version set (the
 * newest migration applied; NULL before any), or GE_DB_UNAVAILABLE. */
enum gala_error health_check(struct svc_ctx *cx, const char **schema_version);

/* The backlogs an operator alerts on, for GET /metrics. */
struct health_backlog {
	long long payouts_stuck;    /* payouts started longer ago than maintenance waits */
	long long mail_pending;     /* mails of the outbox not yet sent nor given up */
};

/* One round trip. GE_OK, or GE_DB_UNAVAILABLE. */
enum gala_error health_backlog(struct svc_ctx *cx, struct health_backlog *out);

#endif
