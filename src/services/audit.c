#include "autoconf.h"

#include "services/audit.h"

#include "core/json.h"

enum db_status audit_write(const struct svc_ctx *cx, arena_t *a, const char *actor,
    const char *target, const char *action, const char *status, cJSON *metadata)
{
	char *meta = metadata != NULL ? cJSON_PrintUnformatted(metadata) : NULL;
	/* A header is any bytes the client sent; the column takes UTF-8. */
	const char *ua = cx && cx->user_agent ? utf8_scrub(a, cx->user_agent, 512) : NULL;
	const char *params[] = { actor, target, action, status,
		cx ? cx->ip : NULL, ua, cx ? cx->request_id : NULL,
		meta ? meta : "{}" };
	PGresult *res;
	enum db_status st = db_exec(a, &res,
	    "INSERT INTO audit_logs (actor_user_id, target_user_id, action, status, ip, "
	    "user_agent, request_id, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
	    8, params);
	cJSON_free(meta);
	cJSON_Delete(metadata);
	return st;
}
