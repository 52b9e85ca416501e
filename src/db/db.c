#include "autoconf.h"

#include "db/db.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

/* Worker-owned: one connection per worker process. */
static PGconn *worker_conn;
static char *worker_db_url;
static int worker_connect_timeout = 5;
static int worker_statement_timeout_ms;
static time_t worker_last_connect_error;

void db_disconnect(void)
{
	if (worker_conn != NULL)
		PQfinish(worker_conn);
	worker_conn = NULL;
}

void db_configure(const char *url, int connect_timeout_s, int statement_timeout_ms)
{
	db_disconnect();
	free(worker_db_url);
	worker_db_url = url ? strdup(url) : NULL;
	worker_connect_timeout = connect_timeout_s;
	worker_statement_timeout_ms = statement_timeout_ms;
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

PGconn *db_connection(void)
{
	if (worker_conn != NULL && PQstatus(worker_conn) == CONNECTION_OK &&
	    !connection_went_away(worker_conn))
		return worker_conn;
	db_disconnect();
	if (worker_db_url == NULL)
		return NULL;

	char timeout[16], options[64];
	snprintf(timeout, sizeof timeout, "%d", worker_connect_timeout);
	snprintf(options, sizeof options, "-c statement_timeout=%d", worker_statement_timeout_ms);
	/* Later keywords override what the URL says, so the timeouts hold. */
	const char *keys[] = { "dbname", "connect_timeout", "options", "application_name", NULL };
	const char *vals[] = { worker_db_url, timeout, options, "gala", NULL };
	worker_conn = PQconnectdbParams(keys, vals, 1);
	if (worker_conn == NULL || PQstatus(worker_conn) != CONNECTION_OK) {
		time_t now = time(NULL);
		if (now != worker_last_connect_error) {
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
		db_disconnect();
		return NULL;
	}
	PQsetNoticeProcessor(worker_conn, db_notice_ignore, NULL);
	return worker_conn;
}


static void pqclear_fn(void *p)
{
	PQclear(p);
}

enum db_status db_exec(arena_t *a, PGresult **res, const char *sql,
    int nparams, const char *const *params)
{
	*res = NULL;
	PGconn *conn = db_connection();
	if (conn == NULL)
		return DB_UNAVAILABLE;
	PGresult *r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		*res = arena_defer(a, pqclear_fn, r);
		return DB_OK;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		PQclear(r);
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "error", "connection lost");
		log_emit(LOG_LEVEL_ERROR, "gala.db", "database connection lost", f);
		db_disconnect();
		return DB_UNAVAILABLE;
	}
	*res = arena_defer(a, pqclear_fn, r);
	const char *state = db_sqlstate(r);
	/* Admin shutdown, cannot connect now, crash recovery: the server is going away. */
	if (strncmp(state, "57P", 3) == 0 || strncmp(state, "08", 2) == 0) {
		db_disconnect();
		return DB_UNAVAILABLE;
	}
	/* A cancelled statement (statement_timeout) is an outage from the client's view. */
	if (strcmp(state, "57014") == 0) {
		log_error("gala.db", "statement timed out");
		return DB_UNAVAILABLE;
	}
	if (strncmp(state, "23", 2) != 0 && strcmp(state, "40001") != 0 &&
	    strcmp(state, "40P01") != 0 && strcmp(state, "22P02") != 0) {
		char msg[256];
		snprintf(msg, sizeof msg, "%s", r ? PQresultErrorMessage(r) : "");
		msg[strcspn(msg, "\n")] = '\0';
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "sqlstate", state);
		cJSON_AddStringToObject(f, "error", msg);
		log_emit(LOG_LEVEL_ERROR, "gala.db", "statement failed", f);
	}
	return DB_ERROR;
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

enum db_status db_begin(arena_t *a)
{
	PGresult *r;
	return db_exec(a, &r, "BEGIN", 0, NULL);
}

enum db_status db_commit(arena_t *a)
{
	PGresult *r;
	enum db_status st = db_exec(a, &r, "COMMIT", 0, NULL);
	if (st == DB_ERROR)
		db_rollback();
	return st;
}

void db_rollback(void)
{
	if (worker_conn == NULL || PQstatus(worker_conn) != CONNECTION_OK)
		return;
	if (PQtransactionStatus(worker_conn) == PQTRANS_IDLE)
		return;
	PGresult *r = PQexecParams(worker_conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
	PQclear(r);
	if (PQstatus(worker_conn) != CONNECTION_OK)
		db_disconnect();
}

void db_request_done(void)
{
	db_rollback();
}

const char *db_value(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}

bool db_bool(const PGresult *res, int row, int col)
{
	const char *v = db_value(res, row, col);
	return v != NULL && v[0] == 't';
}
