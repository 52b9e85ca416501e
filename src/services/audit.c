#include "autoconf.h"

#include "services/audit.h"

#include <string.h>

enum db_status audit_write(const struct svc_ctx *cx, arena_t *a, const char *actor,
    const char *target, const char *action, const char *status, cJSON *metadata)
{
	char *meta = metadata != NULL ? cJSON_PrintUnformatted(metadata) : NULL;
	const char *ua = cx ? cx->user_agent : NULL;
	char ua_cut[513];
	if (ua != NULL) {
		/* Cut on a character boundary so that the column stays UTF-8. */
		size_t n = strlen(ua);
		if (n > 512) {
			n = 512;
			while (n > 0 && ((unsigned char)ua[n] & 0xc0) == 0x80)
				n--;
		}
		memcpy(ua_cut, ua, n);
		ua_cut[n] = '\0';
		ua = ua_cut;
	}
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
