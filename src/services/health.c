#include "autoconf.h"

#include "services/health.h"

#include <stdio.h>
#include <stdlib.h>

#include "db/db.h"
#include "services/payouts.h"

enum gala_error health_check(struct svc_ctx *cx, const char **schema_version)
{
	PGresult *res;
	if (db_exec(cx->arena, &res, "SELECT max(version) FROM schema_migrations", 0, NULL) != DB_OK)
		return GE_DB_UNAVAILABLE;
	*schema_version = db_value(res, 0, 0);
	return GE_OK;
}

enum gala_error health_backlog(struct svc_ctx *cx, struct health_backlog *out)
{
	char age[16];
	snprintf(age, sizeof age, "%d", PAYOUT_IN_PROGRESS_SECONDS);
	const char *p[] = { age };
	PGresult *res;
	if (db_exec(cx->arena, &res, "SELECT (SELECT count(*) FROM payments WHERE "
	    PAYOUTS_STUCK_WHERE "), (SELECT count(*) FROM mail_outbox "
	    "WHERE state IN ('pending', 'sending'))", 1, p) != DB_OK)
		return GE_DB_UNAVAILABLE;
	out->payouts_stuck = strtoll(db_value(res, 0, 0), NULL, 10);
	out->mail_pending = strtoll(db_value(res, 0, 1), NULL, 10);
	return GE_OK;
}
