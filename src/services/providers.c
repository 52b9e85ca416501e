#include "autoconf.h"

#include "services/providers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "core/json.h"
#include "services/session.h"
#include "services/list.h"

/* The Provider object of API.md from a row of PROVIDER_COLUMNS. */
static cJSON *provider_json(const PGresult *res, int row)
{
	static const char *const names[] = { "id", "user_id", "business_name", "category",
		"description", "city", "stripe_account_id", "payouts_enabled", "created_at" };
	cJSON *o = cJSON_CreateObject();
	for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
		const char *v = db_value(res, row, i);
		char t[DB_TIME_LEN];
		if (i == 7)
			cJSON_AddBoolToObject(o, names[i], db_bool(res, row, i));
		else if (i == 8)
			json_add_string_or_null(o, names[i], db_time(res, row, i, t));
		else if (v == NULL)
			cJSON_AddNullToObject(o, names[i]);
		else
			cJSON_AddStringToObject(o, names[i], v);
	}
	return o;
}

enum gala_error providers_create(struct svc_ctx *cx, const struct provider_fields *f,
    cJSON **out)
{
	const char *p[] = { cx->caller->id, f->business_name, f->category, f->description, f->city };
	PGresult *res;
	enum db_status st = db_exec(cx->arena, &res,
	    "INSERT INTO service_providers AS sp (user_id, business_name, category, description, city) "
	    "VALUES ($1, $2, $3, $4, $5) RETURNING " PROVIDER_COLUMNS, 5, p);
	if (st == DB_ERROR && db_is_unique_violation(res))
		return GE_PROFILE_EXISTS;
	if (st != DB_OK)
		return db_error(st);
	*out = provider_json(res, 0);
	return GE_OK;
}

/* Each filter is either absent (NULL) or an index condition. */
#define PROVIDERS_FILTERED "service_providers sp WHERE ($1::text IS NULL OR sp.category = $1) " \
	"AND ($2::text IS NULL OR lower(sp.city) = lower($2))"

enum gala_error providers_list(struct svc_ctx *cx, const char *category, const char *city,
    int limit, int offset, cJSON **out)
{
	static const char page_sql[] = SQL_PAGE(PROVIDER_COLUMNS, PROVIDERS_FILTERED,
	    "sp.created_at DESC, sp.id DESC", "$3", "$4");
	const char *filter[] = { category, city };
	const struct list_query q = { page_sql, SQL_PAGE_TOTAL(PROVIDERS_FILTERED), 2, filter,
		false };
	return list_page(cx->arena, &q, limit, offset, provider_json, out);
}

enum gala_error providers_get(struct svc_ctx *cx, const char *id, cJSON **out)
{
	const char *p[] = { id };
	PGresult *res;
	enum db_status st = db_exec(cx->arena, &res,
	    "SELECT " PROVIDER_COLUMNS " FROM service_providers sp WHERE sp.id = $1", 1, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) != 1)
		return GE_NOT_FOUND;
	*out = provider_json(res, 0);
	return GE_OK;
}

enum gala_error providers_update(struct svc_ctx *cx, const char *id,
    const struct provider_fields *f, cJSON **out, struct refusal *why)
{
	const char *p[] = { id, cx->caller->id, f->business_name, f->category,
		f->description || f->clear_description ? "true" : "false", f->description, f->city };
	PGresult *res;
	enum db_status st = db_exec(cx->arena, &res, "UPDATE service_providers sp SET "
	    "business_name = COALESCE($3, business_name), category = COALESCE($4, category), "
	    "description = CASE WHEN $5::boolean THEN $6 ELSE description END, "
	    "city = COALESCE($7, city), updated_at = now() "
	    "WHERE sp.id = $1 AND sp.user_id = $2 RETURNING " PROVIDER_COLUMNS, 7, p);
	if (st != DB_OK)
		return db_error(st);
	if (PQntuples(res) == 1) {
		*out = provider_json(res, 0);
		return GE_OK;
	}
	/* Every signed-in user may see the profile: 403 if it exists. */
	const char *q[] = { id };
	if ((st = db_exec(cx->arena, &res, "SELECT 1 FROM service_providers WHERE id = $1", 1,
	    q)) != DB_OK)
		return db_error(st);
	if (PQntuples(res) == 0)
		return GE_NOT_FOUND;
	why->message = "only the profile's owner may change it";
	return GE_FORBIDDEN;
}
