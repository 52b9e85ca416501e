#include "autoconf.h"

#include "services/health.h"

#include "db/db.h"

enum gala_error health_check(struct svc_ctx *cx, const char **schema_version)
{
	PGresult *res;
	if (db_exec(cx->arena, &res, "SELECT max(version) FROM schema_migrations", 0, NULL) != DB_OK)
		return GE_DB_UNAVAILABLE;
	*schema_version = db_value(res, 0, 0);
	return GE_OK;
}
