#include "autoconf.h"

#include "services/list.h"

#include "core/json.h"
#include "db/db.h"

enum gala_error list_page(arena_t *a, const struct list_query *q, int limit, int offset,
    list_item_fn *item, cJSON **out)
{
	PGresult *rows;
	long long total;
	enum db_status st = db_page(a, &rows, &total, q->page_sql, q->total_sql, q->nfilter,
	    q->filter, limit, offset, q->binary);
	if (st != DB_OK)
		return db_error(st);
	cJSON *items = cJSON_CreateArray();
	for (int i = 0; i < PQntuples(rows); i++)
		cJSON_AddItemToArray(items, item(rows, i));
	*out = json_list(items, total, limit, offset);
	return GE_OK;
}
