#include "autoconf.h"

#include "db/db.h"

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/calendar.h"
#include "core/log.h"
#include "core/metrics.h"

/* Named statements a connection keeps; past that, statements go unnamed
 * (the SQL of Gala is a fixed set, far below it). */
#define DB_STMT_SLOTS 512
#define DB_STMT_MAX 384
/* Deferred statements of one request; the statements a hold wraps around
 * a handler's (BEGIN, SAVEPOINT, RELEASE); the steps of one round trip. */
#define DB_MAX_DEFERRED 4
#define DB_MAX_WRAPPERS 3
#define DB_MAX_SENT (2 * (DB_MAX_DEFERRED + 1) + DB_MAX_WRAPPERS + 1)
/* Each of the handler's statements under a hold runs inside it, so that
 * its failure (a taken email, a bad uuid) leaves the held work standing. */
#define HOLD_SAVEPOINT "gala_held"

struct stmt_entry {
	uint64_t hash;
	char *sql;        /* NULL: free slot */
	unsigned id;      /* the statement is named "g<id>" */
	bool prepared;    /* on the current connection */
	bool parsing;     /* its Parse is in the round trip under way */
};

/* Worker-owned: one connection per worker process, its named statements,
 * and the deferred statements of the request being served. */
static PGconn *worker_conn;
static char *worker_db_url;
static int worker_connect_timeout = 5;
static bool worker_prepare = true;
/* The worker's wait looked at the idle connection's socket since its last
 * statement (db_idle_seen) and saw nothing. */
static bool worker_idle_seen;
static time_t worker_last_connect_error;
static struct stmt_entry worker_stmts[DB_STMT_SLOTS];
static unsigned worker_nstmts;
static struct db_deferred *worker_deferred[DB_MAX_DEFERRED];
static int worker_ndeferred;
static bool worker_refused;
static bool worker_retrying;     /* a round trip is being sent again, once */

/* Where a request's work stands under db_hold(). */
enum hold_state {
	HOLD_OFF,       /* not holding: statements and COMMITs go as sent */
	HOLD_IDLE,      /* holding; no transaction open, nothing held */
	HOLD_OPEN,      /* the held transaction is open: work the handler
	                 * committed, or ran outside a transaction of its own */
	HOLD_HANDLER,   /* the handler's own transaction (db_begin), nothing held */
	HOLD_LOST,      /* held work was lost with its connection or its COMMIT:
	                 * nothing more runs until db_hold_commit() */
};
static enum hold_state worker_hold;

static void stmts_forget(void)
{
	for (int i = 0; i < DB_STMT_SLOTS; i++) {
		free(worker_stmts[i].sql);
		worker_stmts[i] = (struct stmt_entry){ 0 };
	}
	worker_nstmts = 0;
}

void db_disconnect(void)
{
	if (worker_conn != NULL)
		PQfinish(worker_conn);
	worker_conn = NULL;
	worker_idle_seen = false;
	if (worker_hold == HOLD_OPEN)
		worker_hold = HOLD_LOST;
	else if (worker_hold == HOLD_HANDLER)
		worker_hold = HOLD_IDLE;
	/* Named statements die with the server session. */
	for (int i = 0; i < DB_STMT_SLOTS; i++)
		worker_stmts[i].prepared = worker_stmts[i].parsing = false;
}

int db_configure(const char *url, int connect_timeout_s, bool prepared_statements)
{
	db_disconnect();
	stmts_forget();
	free(worker_db_url);
	worker_db_url = url ? strdup(url) : NULL;
	worker_connect_timeout = connect_timeout_s;
	worker_prepare = prepared_statements;
	return url != NULL && worker_db_url == NULL ? -1 : 0;
}

bool db_prepares_statements(void)
{
	return worker_prepare;
}

static void db_notice_ignore(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* An idle connection the server has closed (restart, idle timeout,
 * pg_terminate_backend) shows as a readable socket: find out before sending
 * a statement on it, so that the first request after a recovery succeeds. */
static bool connection_went_away(PGconn *c)
{
	if (PQtransactionStatus(c) != PQTRANS_IDLE)
		return false;
	struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };
	/* We never LISTEN, so anything arriving on an idle connection is the
	 * server's goodbye (an error, then EOF). */
	return poll(&pfd, 1, 0) > 0;
}

static void log_connect_error(void)
{
	time_t now = time(NULL);
	if (now == worker_last_connect_error)
		return;
	/* PQerrorMessage never contains the password. */
	char msg[256];
	snprintf(msg, sizeof msg, "%s",
	    worker_conn ? PQerrorMessage(worker_conn) : "out of memory");
	msg[strcspn(msg, "\n")] = '\0';
	cJSON *f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "error", msg);
	log_emit(LOG_LEVEL_ERROR, "gala.db", "database connection failed", f);
	worker_last_connect_error = now;
}

int db_idle_socket(void)
{
	if (worker_conn == NULL || PQstatus(worker_conn) != CONNECTION_OK ||
	    PQtransactionStatus(worker_conn) != PQTRANS_IDLE)
		return -1;
	return PQsocket(worker_conn);
}

void db_idle_seen(bool readable)
{
	if (readable)
		db_disconnect();
	else
		worker_idle_seen = worker_conn != NULL;
}

PGconn *db_connection(void)
{
	bool seen = worker_idle_seen;
	worker_idle_seen = false;
	if (worker_conn != NULL && PQstatus(worker_conn) == CONNECTION_OK &&
	    (seen || !connection_went_away(worker_conn)))
		return worker_conn;
	db_disconnect();
	if (worker_db_url == NULL)
		return NULL;

	char timeout[16];
	snprintf(timeout, sizeof timeout, "%d", worker_connect_timeout);
	/* Later keywords override what the URL says. No "options": a pooler
	 * refuses it; the statement timeout is the database's default (set by
	 * gala migrate). */
	const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
	const char *vals[] = { worker_db_url, timeout, "gala", NULL };
	worker_conn = PQconnectdbParams(keys, vals, 1);
	if (worker_conn == NULL || PQstatus(worker_conn) != CONNECTION_OK ||
	    PQenterPipelineMode(worker_conn) != 1) {
		metrics_add(METRIC_DB_ERRORS, DBERR_CONNECT);
		log_connect_error();
		db_disconnect();
		return NULL;
	}
	PQsetNoticeProcessor(worker_conn, db_notice_ignore, NULL);
	return worker_conn;
}

static uint64_t sql_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* The named statement of sql, created on first use; NULL when statements
 * go unnamed (switched off, or the table is full). */
static struct stmt_entry *stmt_lookup(const char *sql)
{
	if (!worker_prepare)
		return NULL;
	uint64_t h = sql_hash(sql);
	unsigned i = (unsigned)(h % DB_STMT_SLOTS);
	for (;;) {
		struct stmt_entry *e = &worker_stmts[i];
		if (e->sql == NULL)
			break;
		if (e->hash == h && strcmp(e->sql, sql) == 0)
			return e;
		i = (i + 1) % DB_STMT_SLOTS;
	}
	if (worker_nstmts >= DB_STMT_MAX)
		return NULL;
	char *copy = strdup(sql);
	if (copy == NULL)
		return NULL;
	worker_stmts[i] = (struct stmt_entry){ .hash = h, .sql = copy, .id = ++worker_nstmts };
	return &worker_stmts[i];
}

/* One protocol step of a round trip: a Parse of a new named statement, the
 * execution of a statement, or a Sync that ends a segment (an implicit
 * transaction). */
struct sent {
	struct stmt_entry *prepare;    /* a Parse: mark it prepared once it succeeds */
	bool sync;
	bool wrapper;                  /* a statement of the hold's, not the caller's */
	PGresult *res;                 /* the step's first result */
};

/* format: 0 for a result in text, 1 in binary. */
static bool send_statement(PGconn *c, const char *sql, int nparams,
    const char *const *params, int format, struct sent *steps, int *nsteps)
{
	struct stmt_entry *e = stmt_lookup(sql);
	if (e == NULL) {
		if (PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, format) != 1)
			return false;
		steps[(*nsteps)++] = (struct sent){ 0 };
		return true;
	}
	char name[16];
	snprintf(name, sizeof name, "g%u", e->id);
	if (!e->prepared && !e->parsing) {
		if (PQsendPrepare(c, name, sql, nparams, NULL) != 1)
			return false;
		e->parsing = true;
		steps[(*nsteps)++] = (struct sent){ .prepare = e };
	}
	if (PQsendQueryPrepared(c, name, nparams, params, NULL, NULL, format) != 1)
		return false;
	steps[(*nsteps)++] = (struct sent){ 0 };
	return true;
}

/* Unnamed: these are a handful of utility statements. */
static bool send_wrapper(PGconn *c, const char *sql, struct sent *steps, int *nsteps)
{
	if (PQsendQueryParams(c, sql, 0, NULL, NULL, NULL, NULL, 0) != 1)
		return false;
	steps[(*nsteps)++] = (struct sent){ .wrapper = true };
	return true;
}

static bool send_sync(PGconn *c, struct sent *steps, int *nsteps)
{
	if (PQpipelineSync(c) != 1)
		return false;
	steps[(*nsteps)++] = (struct sent){ .sync = true };
	return true;
}

/* Reads the results of a round trip: each statement's first result and
 * the NULL that ends it, each Sync's marker. False when the connection
 * broke. */
static bool read_round_trip(PGconn *c, struct sent *steps, int nsteps)
{
	for (int k = 0; k < nsteps; k++) {
		PGresult *r = PQgetResult(c);
		if (r == NULL)
			return false;
		if (steps[k].sync) {
			bool ok = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
			PQclear(r);
			if (!ok)
				return false;
			continue;
		}
		steps[k].res = r;
		while ((r = PQgetResult(c)) != NULL)
			PQclear(r);
		if (PQstatus(c) != CONNECTION_OK)
			return false;
	}
	return true;
}

static void pqclear_fn(void *p)
{
	PQclear(p);
}

static void log_statement_error(const PGresult *r)
{
	const char *state = db_sqlstate(r);
	char msg[256];
	snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
	msg[strcspn(msg, "\n")] = '\0';
	cJSON *f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "sqlstate", state);
	cJSON_AddStringToObject(f, "error", msg);
	log_emit(LOG_LEVEL_ERROR, "gala.db", "statement failed", f);
}

/* The status of one executed step; r is handed to the arena. */
static enum db_status step_status(arena_t *a, PGresult *r, bool quiet)
{
	if (r == NULL)
		return DB_UNAVAILABLE;
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_PIPELINE_ABORTED) {
		PQclear(r);
		return DB_REFUSED;
	}
	arena_defer(a, pqclear_fn, r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return DB_OK;
	const char *state = db_sqlstate(r);
	/* Admin shutdown, cannot connect now, crash recovery: the server is going away. */
	if (strncmp(state, "57P", 3) == 0 || strncmp(state, "08", 2) == 0) {
		metrics_add(METRIC_DB_ERRORS, DBERR_LOST);
		db_disconnect();
		return DB_UNAVAILABLE;
	}
	/* A cancelled statement (statement_timeout) is an outage from the client's view. */
	if (strcmp(state, "57014") == 0) {
		metrics_add(METRIC_DB_ERRORS, DBERR_TIMEOUT);
		log_error("gala.db", "statement timed out");
		return DB_UNAVAILABLE;
	}
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
		metrics_add(METRIC_DB_ERRORS, DBERR_CONFLICT);
		return DB_ERROR;
	}
	/* Constraint violations and malformed values are answers the callers
	 * expect (a taken email, a bad uuid), not failures. */
	if (!quiet && strncmp(state, "23", 2) != 0 && strcmp(state, "22P02") != 0) {
		metrics_add(METRIC_DB_ERRORS, DBERR_STATEMENT);
		log_statement_error(r);
	}
	return DB_ERROR;
}

/* A named statement that the server no longer knows as we prepared it
 * (a migration changed a table under it, a pooler reset the session). */
static bool stale_statement(const PGresult *r)
{
	const char *state = db_sqlstate(r);
	return strcmp(state, "26000") == 0 ||
	    (strcmp(state, "0A000") == 0 && strstr(PQresultErrorMessage(r), "cached plan") != NULL);
}

/* One round trip, one segment (one Sync, so that a pooler in transaction
 * mode sees one transaction): the deferred statements, then sql when it is
 * not NULL; when wrap, inside the held transaction (opened here when none
 * is) and a savepoint. Returns sql's status (DB_OK when there is none). */
static enum db_status round_trip(arena_t *a, PGresult **res, const char *sql, int nparams,
    const char *const *params, int format, bool wrap)
{
	PGconn *c = db_connection();
	if (c == NULL)
		goto unavailable;
	bool idle_before = PQtransactionStatus(c) == PQTRANS_IDLE;
	int ndeferred = worker_ndeferred;
	struct sent steps[DB_MAX_SENT] = { 0 };
	int nsteps = 0, first_own = -1;
	if (wrap && ((idle_before && !send_wrapper(c, "BEGIN", steps, &nsteps)) ||
	    !send_wrapper(c, "SAVEPOINT " HOLD_SAVEPOINT, steps, &nsteps)))
		goto lost;
	for (int i = 0; i < worker_ndeferred; i++) {
		struct db_deferred *d = worker_deferred[i];
		if (!send_statement(c, d->sql, d->nparams, d->params, d->binary, steps, &nsteps))
			goto lost;
	}
	if (sql != NULL) {
		first_own = nsteps;
		if (!send_statement(c, sql, nparams, params, format, steps, &nsteps))
			goto lost;
	}
	if (wrap && !send_wrapper(c, "RELEASE SAVEPOINT " HOLD_SAVEPOINT, steps, &nsteps))
		goto lost;
	if (!send_sync(c, steps, &nsteps) || !read_round_trip(c, steps, nsteps))
		goto lost;

	enum db_status own = DB_OK;
	int d = 0;
	bool retry = false;
	PGresult *parse_error = NULL;
	for (int k = 0; k < nsteps; k++) {
		PGresult *r = steps[k].res;
		steps[k].res = NULL;
		if (steps[k].sync)
			continue;
		if (steps[k].wrapper) {
			PQclear(r);
			continue;
		}
		if (steps[k].prepare != NULL) {
			bool ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
			steps[k].prepare->prepared = ok;
			steps[k].prepare->parsing = false;
			if (ok || r == NULL || PQresultStatus(r) == PGRES_PIPELINE_ABORTED) {
				PQclear(r);
			} else {
				/* The execution after a failed Parse is skipped: it
				 * reports the Parse's error. */
				parse_error = r;
			}
			continue;
		}
		if (parse_error != NULL) {
			PQclear(r);
			r = parse_error;
			parse_error = NULL;
		}
		if (r != NULL && PQresultStatus(r) == PGRES_FATAL_ERROR && stale_statement(r))
			retry = true;
		bool deferred = first_own < 0 || k < first_own;
		enum db_status st = step_status(a, r, deferred);
		if (deferred) {
			struct db_deferred *dd = worker_deferred[d++];
			dd->sent = true;
			dd->status = st;
			dd->res = st == DB_OK || st == DB_ERROR ? r : NULL;
			if (st != DB_OK)
				worker_refused = true;
		} else {
			own = st;
			*res = st == DB_OK || st == DB_ERROR ? r : NULL;
		}
	}
	/* A failure of sql rolled back what came with it. */
	if (own == DB_ERROR)
		for (int i = 0; i < d; i++)
			worker_deferred[i]->undone = worker_deferred[i]->status == DB_OK;
	worker_ndeferred = 0;
	if (retry) {
		/* The segment failed, so nothing of it stayed: send it again,
		 * prepared afresh on a new session. Not inside a transaction
		 * (lost with the session). */
		stmts_forget();
		db_disconnect();
		if (!idle_before || worker_retrying)
			return DB_UNAVAILABLE;
		for (int i = 0; i < ndeferred; i++)
			*worker_deferred[i] = (struct db_deferred){ .sql = worker_deferred[i]->sql,
				.nparams = worker_deferred[i]->nparams,
				.params = worker_deferred[i]->params,
				.binary = worker_deferred[i]->binary, .status = DB_UNAVAILABLE };
		worker_ndeferred = ndeferred;
		worker_refused = false;
		*res = NULL;
		worker_retrying = true;
		enum db_status again = round_trip(a, res, sql, nparams, params, format, wrap);
		worker_retrying = false;
		return again;
	}
	if (own == DB_OK && worker_refused && first_own >= 0)
		own = DB_REFUSED;
	return own;

lost: {
		cJSON *f = cJSON_CreateObject();
		metrics_add(METRIC_DB_ERRORS, DBERR_LOST);
		cJSON_AddStringToObject(f, "error", "connection lost");
		log_emit(LOG_LEVEL_ERROR, "gala.db", "database connection lost", f);
		for (int k = 0; k < nsteps; k++)
			PQclear(steps[k].res);
		db_disconnect();
	}
unavailable:
	for (int i = 0; i < worker_ndeferred; i++) {
		worker_deferred[i]->sent = true;
		worker_deferred[i]->status = DB_UNAVAILABLE;
		worker_deferred[i]->res = NULL;
	}
	if (worker_ndeferred > 0)
		worker_refused = true;
	worker_ndeferred = 0;
	return DB_UNAVAILABLE;
}

/* Sends n (1 or 2) utility commands in one round trip, needing no arena;
 * true when each ran and the last answered last_tag. A broken connection
 * is closed. */
static bool commands(const char *const *sql, int n, const char *last_tag)
{
	struct sent steps[3] = { { 0 } };
	int nsteps = 0;
	bool sent = worker_conn != NULL;
	for (int i = 0; i < n && sent; i++)
		sent = send_wrapper(worker_conn, sql[i], steps, &nsteps);
	if (!sent || !send_sync(worker_conn, steps, &nsteps) ||
	    !read_round_trip(worker_conn, steps, nsteps)) {
		for (int k = 0; k < nsteps; k++)
			PQclear(steps[k].res);
		db_disconnect();
		return false;
	}
	bool ok = true;
	for (int k = 0; k < n; k++) {
		ok = ok && PQresultStatus(steps[k].res) == PGRES_COMMAND_OK;
		if (k == n - 1)
			ok = ok && strcmp(PQcmdStatus(steps[k].res), last_tag) == 0;
		PQclear(steps[k].res);
	}
	return ok;
}

static bool command(const char *sql, const char *tag)
{
	return commands(&sql, 1, tag);
}

/* A statement of the handler's outside a transaction of its own, under a
 * hold: it joins the held transaction, inside a savepoint that its failure
 * rolls back to. */
static enum db_status exec_held(arena_t *a, PGresult **res, const char *sql, int nparams,
    const char *const *params, int format)
{
	if (worker_hold == HOLD_LOST)
		return DB_UNAVAILABLE;
	enum db_status st = round_trip(a, res, sql, nparams, params, format, true);
	if (worker_conn == NULL || PQtransactionStatus(worker_conn) == PQTRANS_IDLE)
		return st;
	worker_hold = HOLD_OPEN;
	static const char *const undo[] = { "ROLLBACK TO SAVEPOINT " HOLD_SAVEPOINT,
		"RELEASE SAVEPOINT " HOLD_SAVEPOINT };
	if (PQtransactionStatus(worker_conn) == PQTRANS_INERROR && !commands(undo, 2, "RELEASE")) {
		db_disconnect();
		return DB_UNAVAILABLE;
	}
	return st;
}

static bool holding_outside_handler(void)
{
	return worker_hold == HOLD_IDLE || worker_hold == HOLD_OPEN || worker_hold == HOLD_LOST;
}

static enum db_status exec_format(arena_t *a, PGresult **res, const char *sql,
    int nparams, const char *const *params, int format)
{
	*res = NULL;
	if (worker_refused)
		return DB_REFUSED;
	if (holding_outside_handler())
		return exec_held(a, res, sql, nparams, params, format);
	return round_trip(a, res, sql, nparams, params, format, false);
}

enum db_status db_exec(arena_t *a, PGresult **res, const char *sql,
    int nparams, const char *const *params)
{
	return exec_format(a, res, sql, nparams, params, 0);
}

enum db_status db_exec_binary(arena_t *a, PGresult **res, const char *sql,
    int nparams, const char *const *params)
{
	return exec_format(a, res, sql, nparams, params, 1);
}

void db_defer(struct db_deferred *d)
{
	d->sent = false;
	d->status = DB_UNAVAILABLE;
	d->res = NULL;
	d->undone = false;
	if (worker_ndeferred >= DB_MAX_DEFERRED) {
		d->sent = true;
		worker_refused = true;
		log_error("gala.db", "too many deferred statements");
		return;
	}
	worker_deferred[worker_ndeferred++] = d;
}

void db_flush(arena_t *a)
{
	if (worker_ndeferred == 0 || worker_refused)
		return;
	PGresult *none = NULL;
	if (holding_outside_handler())
		exec_held(a, &none, NULL, 0, NULL, 0);
	else
		round_trip(a, &none, NULL, 0, NULL, 0, false);
}

void db_end_refusal(void)
{
	worker_ndeferred = 0;
	worker_refused = false;
}

void db_abandon(void)
{
	worker_ndeferred = 0;
	worker_refused = false;
	worker_retrying = false;
	worker_hold = HOLD_OFF;
	db_disconnect();
}

const char *db_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}

bool db_is_unique_violation(const PGresult *res)
{
	return strcmp(db_sqlstate(res), "23505") == 0;
}

/* The deferred statements go first, on their own: their fate is not the
 * transaction's (a limiter count stays when the transaction rolls back).
 * Under a hold, work held so far is committed first, for real: the new
 * transaction is the one held next. */
enum db_status db_begin(arena_t *a)
{
	db_flush(a);
	if (!db_commit_held())
		return DB_UNAVAILABLE;
	PGresult *r;
	enum db_status st = round_trip(a, &r, "BEGIN", 0, NULL, 0, false);
	if (st == DB_OK && worker_hold == HOLD_IDLE)
		worker_hold = HOLD_HANDLER;
	return st;
}

enum db_status db_commit(arena_t *a)
{
	if (worker_hold == HOLD_HANDLER) {
		if (worker_conn != NULL && PQtransactionStatus(worker_conn) == PQTRANS_INTRANS) {
			worker_hold = HOLD_OPEN;
			return DB_OK;
		}
		db_rollback();
		return worker_conn != NULL ? DB_ERROR : DB_UNAVAILABLE;
	}
	if (worker_hold != HOLD_OFF)
		return db_commit_held() ? DB_OK : DB_UNAVAILABLE;
	PGresult *r;
	enum db_status st = db_exec(a, &r, "COMMIT", 0, NULL);
	if (st == DB_ERROR)
		db_rollback();
	return st;
}

void db_rollback(void)
{
	/* Under a hold, only the handler's own transaction: the held work
	 * was committed as far as the handler knows. */
	if (worker_hold != HOLD_OFF && worker_hold != HOLD_HANDLER)
		return;
	if (worker_hold == HOLD_HANDLER)
		worker_hold = HOLD_IDLE;
	if (worker_conn == NULL || PQstatus(worker_conn) != CONNECTION_OK)
		return;
	if (PQtransactionStatus(worker_conn) == PQTRANS_IDLE)
		return;
	command("ROLLBACK", "ROLLBACK");
}

void db_hold(void)
{
	worker_hold = HOLD_IDLE;
}

bool db_hold_pending(void)
{
	return worker_hold == HOLD_OPEN || worker_hold == HOLD_LOST;
}

bool db_commit_held(void)
{
	if (worker_hold == HOLD_OPEN) {
		/* A failed COMMIT ends the transaction all the same. */
		worker_hold = command("COMMIT", "COMMIT") ? HOLD_IDLE : HOLD_LOST;
	}
	return worker_hold != HOLD_LOST;
}

enum db_status db_hold_commit(arena_t *a)
{
	db_rollback();
	struct db_deferred *settle[DB_MAX_DEFERRED];
	int n = worker_ndeferred;
	for (int i = 0; i < n; i++)
		settle[i] = worker_deferred[i];
	enum hold_state was = worker_hold;
	worker_hold = HOLD_OFF;
	enum db_status st = DB_OK;
	if (was == HOLD_LOST) {
		worker_ndeferred = 0;
		for (int i = 0; i < n; i++)
			*settle[i] = (struct db_deferred){ .sent = true, .status = DB_UNAVAILABLE };
		st = DB_UNAVAILABLE;
	} else if (was == HOLD_OPEN && !worker_refused) {
		PGresult *r;
		st = round_trip(a, &r, "COMMIT", 0, NULL, 0, false);
		/* COMMIT of a transaction in error answers ROLLBACK, not an error. */
		if (st == DB_OK && strcmp(PQcmdStatus(r), "COMMIT") != 0)
			st = DB_ERROR;
	} else {
		db_flush(a);
	}
	for (int i = 0; i < n; i++)
		if (settle[i]->status != DB_OK) {
			st = settle[i]->status;
			break;
		}
	if (st != DB_OK) {
		worker_ndeferred = 0;
		worker_refused = false;
		db_rollback();
	}
	return st;
}

enum gala_error db_error(enum db_status st)
{
	return st == DB_UNAVAILABLE ? GE_DB_UNAVAILABLE : GE_INTERNAL;
}

enum gala_error db_fail(enum gala_error e)
{
	db_rollback();
	return e;
}

void db_request_done(void)
{
	worker_ndeferred = 0;
	worker_refused = false;
	worker_hold = HOLD_OFF;
	db_rollback();
}

const char *db_value(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}

/* Binary values are big-endian, as Postgres sends them. */
static int64_t be_int(const unsigned char *v, int len)
{
	if (len != 2 && len != 4 && len != 8)
		return 0;
	uint64_t u = 0;
	for (int i = 0; i < len; i++)
		u = u << 8 | v[i];
	/* Sign-extend a narrower integer. */
	if (len < 8 && (v[0] & 0x80))
		u |= ~(uint64_t)0 << (8 * len);
	return (int64_t)u;
}

static int64_t binary_int(const PGresult *res, int row, int col)
{
	return be_int((const unsigned char *)PQgetvalue(res, row, col),
	    PQgetlength(res, row, col));
}

bool db_bool(const PGresult *res, int row, int col)
{
	const char *v = db_value(res, row, col);
	if (v == NULL)
		return false;
	return PQfformat(res, col) == 1 ? v[0] != 0 : v[0] == 't';
}

long long db_int(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	if (PQfformat(res, col) == 1)
		return binary_int(res, row, col);
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

const char *db_uuid(const PGresult *res, int row, int col, char out[DB_UUID_LEN])
{
	const char *v = db_value(res, row, col);
	if (v == NULL || PQfformat(res, col) == 0)
		return v;
	if (PQgetlength(res, row, col) != 16)
		return NULL;
	static const char hex[] = "0123456789abcdef";
	const unsigned char *b = (const unsigned char *)v;
	char *o = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 15];
	}
	*o = '\0';
	return out;
}

/* Binary timestamps count microseconds from 2000-01-01 UTC. */
#define PG_EPOCH_UNIX 946684800LL
#define TIMESTAMPTZ_OID 1184

/* A binary timestamptz (microseconds since 2000) as RFC 3339 text,
 * truncated toward zero from the Unix epoch, as SQL_TS. */
static const char *binary_time(long long us, char out[DB_TIME_LEN])
{
	long long rest = us % 1000000, seconds = us / 1000000 + PG_EPOCH_UNIX;
	if (rest < 0 && seconds > 0)
		seconds--;
	else if (rest > 0 && seconds < 0)
		seconds++;
	return calendar_rfc3339(seconds, out);
}

const char *db_time(const PGresult *res, int row, int col, char out[DB_TIME_LEN])
{
	if (PQgetisnull(res, row, col))
		return NULL;
	if (PQfformat(res, col) == 1 && PQftype(res, col) == TIMESTAMPTZ_OID)
		return binary_time(db_int(res, row, col), out);
	return calendar_rfc3339(db_int(res, row, col), out);
}

bool db_record(const PGresult *res, int row, int col, struct db_field *out, int n)
{
	if (PQgetisnull(res, row, col) || PQfformat(res, col) != 1)
		return false;
	const unsigned char *v = (const unsigned char *)PQgetvalue(res, row, col);
	const unsigned char *end = v + PQgetlength(res, row, col);
	/* The field count, then each field's type, length (-1: NULL) and bytes. */
	if (end - v < 4 || be_int(v, 4) != n)
		return false;
	v += 4;
	for (int i = 0; i < n; i++) {
		if (end - v < 8)
			return false;
		long long len = be_int(v + 4, 4);
		v += 8;
		if (len > end - v)
			return false;
		out[i].data = len < 0 ? NULL : (const char *)v;
		out[i].len = len < 0 ? 0 : (int)len;
		v += len < 0 ? 0 : len;
	}
	return v == end;
}

char *db_field_text(arena_t *a, const struct db_field *f)
{
	return f->data != NULL ? arena_strndup(a, f->data, (size_t)f->len) : NULL;
}

bool db_field_bool(const struct db_field *f)
{
	return f->data != NULL && f->len == 1 && f->data[0] != 0;
}

const char *db_field_time(const struct db_field *f, char out[DB_TIME_LEN])
{
	if (f->data == NULL || f->len != 8)
		return NULL;
	return binary_time(be_int((const unsigned char *)f->data, 8), out);
}

enum db_status db_page(arena_t *a, PGresult **rows, long long *total, const char *page_sql,
    const char *total_sql, int nfilter, const char *const *filter, int limit, int offset,
    bool binary)
{
	enum { MAX_FILTER = 8, MAX_READS = 3 };
	if (nfilter > MAX_FILTER)
		return DB_ERROR;
	const char *params[MAX_FILTER + 2];
	char lim[16], off[16];
	snprintf(lim, sizeof lim, "%d", limit);
	snprintf(off, sizeof off, "%d", offset);
	for (int i = 0; i < nfilter; i++)
		params[i] = filter[i];
	params[nfilter] = lim;
	params[nfilter + 1] = off;
	enum db_status st = DB_OK;
	for (int read = 0; read < MAX_READS; read++) {
		st = exec_format(a, rows, page_sql, nfilter + 2, params, binary);
		if (st != DB_OK)
			return st;
		if (PQntuples(*rows) > 0) {
			*total = db_int(*rows, 0, PQnfields(*rows) - 1);
			return DB_OK;
		}
		PGresult *count;
		st = db_exec(a, &count, total_sql, nfilter, params);
		if (st != DB_OK)
			return st;
		*total = db_int(count, 0, 0);
		if (*total <= offset)
			return DB_OK;
	}
	/* Rows keep coming and going at the page's edge: the last count
	 * stands beside an empty page. */
	return st;
}
