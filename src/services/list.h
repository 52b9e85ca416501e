/* The list envelope of API.md ({"items","total","limit","offset"}) read
 * with db_page(): one statement for a page and its total. */
#ifndef GALA_LIST_H
#define GALA_LIST_H

#include <stdbool.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "core/arena.h"
#include "core/errors.h"

/* One statement's worth of a list: SQL_PAGE and SQL_PAGE_TOTAL of the same
 * FROM, and the filter's parameters. */
struct list_query {
	const char *page_sql;
	const char *total_sql;
	int nfilter;
	const char *const *filter;
	bool binary;        /* the page in binary format (db_exec_binary) */
};

/* The JSON object of one row of the page. */
typedef cJSON *list_item_fn(const PGresult *res, int row);

/* *out is the envelope of the page; GE_OK, or db_error() of the failure. */
enum gala_error list_page(arena_t *a, const struct list_query *q, int limit, int offset,
    list_item_fn *item, cJSON **out);

#endif
