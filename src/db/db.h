/* The worker's one PostgreSQL connection: opened lazily, reopened after a
 * loss, used only with parameterized statements. Each statement is prepared
 * once per connection (unless DB_PREPARED_STATEMENTS=off, for poolers that
 * cannot keep named statements) and the connection stays in libpq's
 * pipeline mode, so a statement queued with db_defer() travels with the
 * next one in a single round trip. Results are handed to the request's
 * arena and freed with it. */
#ifndef GALA_DB_H
#define GALA_DB_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "core/arena.h"
#include "core/calendar.h"
#include "core/errors.h"

enum db_status {
	DB_OK = 0,
	DB_UNAVAILABLE,   /* no connection, or it was lost: answer 503 */
	DB_ERROR,         /* the statement failed (constraint, syntax...) */
	DB_REFUSED,       /* a deferred statement of this request failed: nothing
	                   * more runs until db_request_done(); its owner answers */
};

/* Settings of the connection; the next db_connection() uses them. 0, or
 * -1 when memory ran out (then no database is configured). */
int db_configure(const char *url, int connect_timeout_s, bool prepared_statements);

/* The open connection, connecting when there is none; NULL when the
 * database cannot be reached (logged, rate-limited). */
PGconn *db_connection(void);

/* For a caller that sleeps on other sockets between statements (the
 * worker's ppoll): the socket of the open connection while it is idle, or
 * -1, to wait on alongside the rest. db_idle_seen() then reports what the
 * wait saw: readable means the server said goodbye (restart, idle
 * timeout, pg_terminate_backend) and the connection is dropped; either way
 * the next db_connection() trusts that instead of polling the socket
 * itself, one system call less per request. */
int db_idle_socket(void);
void db_idle_seen(bool readable);

void db_disconnect(void);

/* Whether statements are prepared once per connection (the setting), or
 * sent unnamed and so planned on every execution. */
bool db_prepares_statements(void);

/* Runs one parameterized statement (and, first, any deferred ones). *res
 * is set (and owned by the arena) for DB_OK and DB_ERROR; NULL otherwise.
 * Params are text; a NULL entry is SQL NULL. */
enum db_status db_exec(arena_t *a, PGresult **res, const char *sql,
    int nparams, const char *const *params);

/* As db_exec, with the result in binary format: Postgres then skips the
 * text conversion of every value it sends, a fifth of its work for a page
 * of rows. Read such a result with db_value (text columns only), db_uuid,
 * db_int, db_bool and db_time, which read both formats. */
enum db_status db_exec_binary(arena_t *a, PGresult **res, const char *sql,
    int nparams, const char *const *params);

/* A statement whose result the caller needs later: it goes out ahead of
 * the next db_exec() (or db_flush()) in the same round trip and the same
 * implicit transaction, so when it fails the statements sent with it do
 * not run, and every later one in this request answers DB_REFUSED. Ahead
 * of db_begin() it is sent on its own first (the transaction's fate is not
 * its fate). sql and params must live until the request ends. */
struct db_deferred {
	const char *sql;
	int nparams;
	const char *const *params;
	bool binary;             /* the result in binary format (db_exec_binary) */
	bool sent;
	enum db_status status;   /* once sent */
	PGresult *res;           /* once sent: DB_OK and DB_ERROR (arena-owned) */
	bool undone;             /* it ran, but the statement sent with it failed,
	                          * which rolled both back */
};

void db_defer(struct db_deferred *d);

/* Sends the deferred statements now, if any are waiting. */
void db_flush(arena_t *a);

/* Lets statements run again after a deferred one failed, once its owner
 * has answered (to read what the answer's headers need). */
void db_end_refusal(void);

/* Forgets the request's deferred statements and closes the connection
 * (the next statement opens another): for a request abandoned wherever it
 * stood, a round trip or a transaction perhaps half done. */
void db_abandon(void);

/* The SQLSTATE of a failed result ("23505"), or "" */
const char *db_sqlstate(const PGresult *res);
bool db_is_unique_violation(const PGresult *res);

enum db_status db_begin(arena_t *a);
enum db_status db_commit(arena_t *a);
/* Rolls back if a transaction is open; never fails visibly. Under a hold,
 * only the handler's own transaction. */
void db_rollback(void);

/* Holding, for a request whose response is stored with its work (an
 * Idempotency-Key claimed: http/idempotency_stage.h). From db_hold() to
 * db_hold_commit(), the request's last transaction is not committed by
 * its handler: db_commit() of a db_begin() only marks it, and statements
 * run outside one join it, each inside a savepoint (so a failure, a taken
 * email, a bad uuid, leaves the rest standing). db_hold_commit() then
 * sends the deferred statements (the stored response) and the COMMIT in
 * one round trip: both happen, or neither.
 *
 * Held work is committed for real by db_commit_held(), before anything
 * leaves the process with consequences (the Stripe client calls it), and
 * by db_begin(): other workers and hosts see it from then on. Should held
 * work be lost (its connection, a failed COMMIT), every statement answers
 * DB_UNAVAILABLE until db_hold_commit(), which answers it too. */
void db_hold(void);

/* Whether work is held (or was, and is lost): db_hold_commit() decides
 * its fate. */
bool db_hold_pending(void);

/* Commits held work for real, if any; false when it was lost (now or
 * before). Holding goes on. */
bool db_commit_held(void);

/* Ends holding: rolls back a transaction the handler left open, then sends
 * the deferred statements with the COMMIT of the held work (on their own
 * when nothing is held). DB_OK when all of it is committed; else the first
 * failure, and none of it stayed (but for DB_UNAVAILABLE on a lost
 * connection, where the COMMIT may have gone through with the statements
 * sent along with it). */
enum db_status db_hold_commit(arena_t *a);

/* What a service answers for a statement that failed: GE_DB_UNAVAILABLE
 * when the database could not be reached, else GE_INTERNAL. */
enum gala_error db_error(enum db_status st);

/* A service's error exit inside a transaction: rolls back, returns e. */
enum gala_error db_fail(enum gala_error e);

/* Leaves the connection idle between requests: rolls back a transaction a
 * handler left open and forgets the request's deferred statements. */
void db_request_done(void);

/* A timestamptz column as whole seconds since the epoch, in SQL: cheaper for
 * the server than to_char(); db_time() formats it. A binary result takes
 * the column as it is. */
#define SQL_TS(col) "trunc(date_part('epoch', " col "))::bigint"

/* Helpers to read a result field: NULL for SQL NULL. db_int reads int2,
 * int4 and int8 columns. */
const char *db_value(const PGresult *res, int row, int col);
bool db_bool(const PGresult *res, int row, int col);
long long db_int(const PGresult *res, int row, int col);
/* A uuid column as text in out, or NULL for SQL NULL. */
#define DB_UUID_LEN 37
const char *db_uuid(const PGresult *res, int row, int col, char out[DB_UUID_LEN]);
/* An SQL_TS() column, or in a binary result a timestamptz one, as RFC 3339
 * UTC text to the whole second ("2026-12-03T13:25:01Z") in out, or NULL
 * for SQL NULL. */
#define DB_TIME_LEN CALENDAR_RFC3339_LEN
const char *db_time(const PGresult *res, int row, int col, char out[DB_TIME_LEN]);

/* A field of a composite value in a binary result: the row a function
 * returned as one value ("SELECT f(...)", which Postgres plans for less
 * than "SELECT * FROM f(...)"). */
struct db_field {
	const char *data;   /* NULL for SQL NULL */
	int len;
};

/* Splits the composite at (row, col) into its n fields; false for SQL NULL
 * or a value of another shape. The fields point into res. */
bool db_record(const PGresult *res, int row, int col, struct db_field *out, int n);
/* A field read as text (a copy from a, NUL-terminated), as boolean, and as
 * a timestamptz formatted as db_time() does; NULL or false for SQL NULL. */
char *db_field_text(arena_t *a, const struct db_field *f);
bool db_field_bool(const struct db_field *f);
const char *db_field_time(const struct db_field *f, char out[DB_TIME_LEN]);

/* A page of a list with the total it belongs to, from one statement (one
 * snapshot): each row carries the total after its own columns. from is the
 * FROM clause and its WHERE, whose parameters come first; limit and offset
 * name the two parameters after them ("$2", "$3"). All of it is SQL text
 * written in the code, never input. */
#define SQL_PAGE(columns, from, order, limit, offset) \
	"SELECT " columns ", (SELECT count(*) FROM " from ") FROM " from " ORDER BY " order \
	" LIMIT " limit "::int OFFSET " offset "::int"
#define SQL_PAGE_TOTAL(from) "SELECT count(*) FROM " from

/* Runs page_sql (SQL_PAGE) with nfilter parameters, then limit and offset,
 * its result in binary format when binary is true.
 * A page past the end has no row to carry the total: total_sql
 * (SQL_PAGE_TOTAL, the filter's parameters) counts, and should rows have
 * come since, the page is read again. *rows hold the page's columns;
 * *total is set for DB_OK. */
enum db_status db_page(arena_t *a, PGresult **rows, long long *total, const char *page_sql,
    const char *total_sql, int nfilter, const char *const *filter, int limit, int offset,
    bool binary);

#endif
