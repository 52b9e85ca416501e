/* The worker's one PostgreSQL connection: opened lazily, reopened after a
 * loss, used only with parameterized statements (PQexecParams, unnamed) so
 * that PgBouncer's transaction pooling never breaks it. Results are handed
 * to the request's arena and freed with it. */
#ifndef GALA_DB_H
#define GALA_DB_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "core/arena.h"

enum db_status {
	DB_OK = 0,
	DB_UNAVAILABLE,   /* no connection, or it was lost: answer 503 */
	DB_ERROR,         /* the statement failed (constraint, syntax...) */
};

/* Settings of the connection; the next db_connection() uses them. */
void db_configure(const char *url, int connect_timeout_s, int statement_timeout_ms);

/* The open connection, connecting when there is none; NULL when the
 * database cannot be reached (logged, rate-limited). */
PGconn *db_connection(void);

void db_disconnect(void);

/* Runs one parameterized statement. *res is set (and owned by the arena)
 * for DB_OK and DB_ERROR; NULL for DB_UNAVAILABLE. Params are text; a NULL
 * entry is SQL NULL. */
enum db_status db_exec(arena_t *a, PGresult **res, const char *sql,
    int nparams, const char *const *params);

/* The SQLSTATE of a failed result ("23505"), or "" */
const char *db_sqlstate(const PGresult *res);
bool db_is_unique_violation(const PGresult *res);

enum db_status db_begin(arena_t *a);
enum db_status db_commit(arena_t *a);
/* Rolls back if a transaction is open; never fails visibly. */
void db_rollback(void);

/* Leaves the connection idle between requests: rolls back a transaction a
 * handler left open. */
void db_request_done(void);

/* A timestamptz column as RFC 3339 UTC text, in SQL. */
#define SQL_TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Helpers to read a result field: NULL for SQL NULL. */
const char *db_value(const PGresult *res, int row, int col);
bool db_bool(const PGresult *res, int row, int col);

#endif
