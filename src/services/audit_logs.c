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

/* The LEFT JOIN keeps one row with the total when the page is empty. The
 * order matches audit_logs_created_at_idx; id breaks ties between rows of
 * the same microsecond. */
static const char list_sql[] =
    "SELECT t.total, p.id, p.actor_user_id, p.target_user_id, p.action, p.status, p.ip, "
    "p.user_agent, p.request_id, p.metadata::text, " SQL_TS("p.created_at") " "
    "FROM (SELECT count(*) AS total FROM audit_logs WHERE " AUDIT_FILTER ") t "
    "LEFT JOIN LATERAL (SELECT * FROM audit_logs WHERE " AUDIT_FILTER " "
    "ORDER BY created_at DESC, id DESC LIMIT $7::int OFFSET $8::int) p ON true "
    "ORDER BY p.created_at DESC, p.id DESC";

static cJSON *entry(const PGresult *res, int row)
{
	static const char *const strings[] = { "id", "actor_user_id", "target_user_id", "action",
		"status", "ip", "user_agent", "request_id" };
	cJSON *o = cJSON_CreateObject();
	for (int i = 0; i < 8; i++)
		json_add_string_or_null(o, strings[i], db_value(res, row, i + 1));
	cJSON *meta = cJSON_Parse(db_value(res, row, 9));
	cJSON_AddItemToObject(o, "metadata", meta != NULL ? meta : cJSON_CreateObject());
	char t[DB_TIME_LEN];
	json_add_string_or_null(o, "created_at", db_time(res, row, 10, t));
	return o;
}

enum gala_error audit_logs_list(arena_t *a, const struct audit_log_filter *f, cJSON **items,
    long long *total)
{
	char limit[16], offset[16];
	snprintf(limit, sizeof limit, "%d", f->limit);
	snprintf(offset, sizeof offset, "%d", f->offset);
	const char *params[] = { f->action, f->status, f->actor_user_id, f->target_user_id,
		f->created_after, f->created_before, limit, offset };
	PGresult *res;
	enum db_status st = db_exec(a, &res, list_sql, 8, params);
	if (st != DB_OK)
		return st == DB_UNAVAILABLE ? GE_DB_UNAVAILABLE : GE_INTERNAL;
	*total = strtoll(db_value(res, 0, 0), NULL, 10);
	*items = cJSON_CreateArray();
	for (int i = 0; i < PQntuples(res); i++)
		if (db_value(res, i, 1) != NULL)
			cJSON_AddItemToArray(*items, entry(res, i));
	return GE_OK;
}
