#include "autoconf.h"

#include "services/audit_logs.h"

#include <stdio.h>
#include <stdlib.h>

#include "db/db.h"
#include "core/json.h"

/* The filter, applied twice: once for the total, once for the page. An
 * unset filter is NULL and drops out when the statement is planned with its
 * parameters. */
#define AUDIT_FILTER \
	"($1::text IS NULL OR action = $1::text) " \
	"AND ($2::text IS NULL OR status = $2::text) " \
	"AND ($3::uuid IS NULL OR actor_user_id = $3::uuid) " \
	"AND ($4::uuid IS NULL OR target_user_id = $4::uuid) " \
	"AND ($5::timestamptz IS NULL OR created_at > $5::timestamptz) " \
	"AND ($6::timestamptz IS NULL OR created_at < $6::timestamptz)"

/* The order matches audit_logs_created_at_idx; id breaks ties between rows
 * of the same microsecond. */
#define AUDIT_COLUMNS "p.id, p.actor_user_id, p.target_user_id, p.action, p.status, p.ip, " \
	"p.user_agent, p.request_id, p.metadata::text, " SQL_TS("p.created_at")
enum {
	AL_ID, AL_ACTOR, AL_TARGET, AL_ACTION, AL_STATUS, AL_IP, AL_USER_AGENT, AL_REQUEST_ID,
	AL_METADATA, AL_CREATED_AT
};
static const char page_sql[] = SQL_PAGE(AUDIT_COLUMNS, "audit_logs p WHERE " AUDIT_FILTER,
    "p.created_at DESC, p.id DESC", "$7", "$8");

static cJSON *entry(const PGresult *res, int row)
{
	static const char *const strings[] = { "id", "actor_user_id", "target_user_id", "action",
		"status", "ip", "user_agent", "request_id" };
	cJSON *o = cJSON_CreateObject();
	for (int i = AL_ID; i < AL_METADATA; i++)
		json_add_string_or_null(o, strings[i], db_value(res, row, i));
	cJSON *meta = cJSON_Parse(db_value(res, row, AL_METADATA));
	cJSON_AddItemToObject(o, "metadata", meta != NULL ? meta : cJSON_CreateObject());
	char t[DB_TIME_LEN];
	json_add_string_or_null(o, "created_at", db_time(res, row, AL_CREATED_AT, t));
	return o;
}

enum gala_error audit_logs_list(arena_t *a, const struct audit_log_filter *f, cJSON **items,
    long long *total)
{
	const char *filter[] = { f->action, f->status, f->actor_user_id, f->target_user_id,
		f->created_after, f->created_before };
	PGresult *res;
	enum db_status st = db_page(a, &res, total, page_sql,
	    SQL_PAGE_TOTAL("audit_logs p WHERE " AUDIT_FILTER), 6, filter, f->limit, f->offset,
	    false);
	if (st != DB_OK)
		return db_error(st);
	*items = cJSON_CreateArray();
	for (int i = 0; i < PQntuples(res); i++)
		cJSON_AddItemToArray(*items, entry(res, i));
	return GE_OK;
}
