/* Integration tests on a real, throwaway PostgreSQL (started by
 * tests/stack/run-test): migrations, the worker's connection, health. */
#include "autoconf.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "api/routes.h"
#include "core/arena.h"
#include "core/config.h"
#include "db/db.h"
#include "http/pipeline.h"
#include "http/request.h"
#include "services/session.h"
#include "testlib.h"

static struct config itest_cfg;

/* A fresh, empty database owned by gala_owner; returns its owner URL. */
static char *fresh_database(const char *name)
{
	PGconn *su = test_db_superuser();
	char sql[256];
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", name);
	PQclear(PQexec(su, sql));
	snprintf(sql, sizeof sql, "CREATE DATABASE %s OWNER gala_owner", name);
	PGresult *r = PQexec(su, sql);
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(su);
	const char *owner = test_env("TEST_MIGRATION_DATABASE_URL");
	const char *q = strstr(owner, "/gala?");
	ck_assert_ptr_nonnull(q);
	char *url = malloc(strlen(owner) + strlen(name) + 1);
	sprintf(url, "%.*s/%s%s", (int)(q - owner), owner, name, q + 5);
	return url;
}

/* Runs `gala migrate` against url with schema_dir; returns its exit status
 * and leaves its stderr in *log (malloc'd). */
static int run_migrate(const char *url, const char *schema_dir, char **log)
{
	char logpath[] = "/tmp/gala-migrate-logXXXXXX";
	int fd = mkstemp(logpath);
	ck_assert_int_ge(fd, 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd, 2);
		setenv("MIGRATION_DATABASE_URL", url, 1);
		setenv("SCHEMA_DIR", schema_dir, 1);
		unsetenv("ENV_FILE");
		setenv("ENVIRONMENT", "test", 1);
		execl(test_env("GALA_BIN"), "gala", "migrate", (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	FILE *f = fdopen(fd, "r");
	rewind(f);
	char *text = calloc(1, 65536);
	size_t n = fread(text, 1, 65535, f);
	text[n] = '\0';
	fclose(f);
	unlink(logpath);
	*log = text;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int count_sql_files(const char *dir)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l > 4 && strcmp(e->d_name + l - 4, ".sql") == 0)
			n++;
	}
	closedir(d);
	return n;
}

static char *schema_dir(void)
{
	char *dir = malloc(4096);
	snprintf(dir, 4096, "%s/schema", test_env("GALA_SRCDIR"));
	return dir;
}

/* A fresh database with every migration applied; its URL (freed by the
 * caller). */
static char *migrated_database(const char *name)
{
	char *url = fresh_database(name);
	char *dir = schema_dir(), *log;
	ck_assert_int_eq(run_migrate(url, dir, &log), 0);
	free(log);
	free(dir);
	return url;
}

static char *db_scalar(const char *url, const char *sql)
{
	PGconn *c = PQconnectdb(url);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	char *v = test_db_value(c, sql, 0, NULL);
	PQfinish(c);
	return v;
}

START_TEST(migrations_apply_then_noop)
{
	char *url = fresh_database("itest_migrate");
	char *dir = schema_dir(), *log;
	ck_assert_int_eq(run_migrate(url, dir, &log), 0);
	free(log);
	char *count = db_scalar(url, "SELECT count(*) FROM schema_migrations");
	ck_assert_int_eq(atoi(count), count_sql_files(dir));
	char *first = db_scalar(url, "SELECT max(applied_at)::text FROM schema_migrations");
	free(count);

	ck_assert_int_eq(run_migrate(url, dir, &log), 0);
	ck_assert_msg(strstr(log, "up to date") != NULL, "second run said: %s", log);
	free(log);
	count = db_scalar(url, "SELECT count(*) FROM schema_migrations");
	ck_assert_int_eq(atoi(count), count_sql_files(dir));
	char *second = db_scalar(url, "SELECT max(applied_at)::text FROM schema_migrations");
	ck_assert_str_eq(first, second);
	free(count);
	free(first);
	free(second);
	free(dir);
	free(url);
}
END_TEST

/* A cluster upgraded from PostgreSQL < 15 may still let PUBLIC create in
 * schema public; 0010_public_schema takes that away. */
START_TEST(public_schema_closed_to_public)
{
	char *url = fresh_database("itest_public");
	char su_url[1024];
	snprintf(su_url, sizeof su_url, "postgresql://postgres%s", strchr(url, '@'));
	PGconn *su = PQconnectdb(su_url);
	ck_assert_msg(PQstatus(su) == CONNECTION_OK, "db: %s", PQerrorMessage(su));
	PGresult *r = PQexec(su, "GRANT CREATE ON SCHEMA public TO PUBLIC");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	static const char check[] = "SELECT has_schema_privilege('gala_app', 'public', 'CREATE')";
	char *can = test_db_value(su, check, 0, NULL);
	ck_assert_str_eq(can, "t");
	free(can);
	char *dir = schema_dir(), *log;
	ck_assert_int_eq(run_migrate(url, dir, &log), 0);
	free(log);
	can = test_db_value(su, check, 0, NULL);
	ck_assert_str_eq(can, "f");
	free(can);
	PQfinish(su);
	free(dir);
	free(url);
}
END_TEST

START_TEST(changed_migration_is_refused)
{
	char *url = fresh_database("itest_changed");
	char tmp[] = "/tmp/gala-schemaXXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	char cmd[8192];
	char *dir = schema_dir(), *log;
	snprintf(cmd, sizeof cmd, "cp '%s'/*.sql '%s'/", dir, tmp);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(run_migrate(url, tmp, &log), 0);
	free(log);

	snprintf(cmd, sizeof cmd, "echo '-- edited' >> '%s/0001_roles.sql'", tmp);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_ne(run_migrate(url, tmp, &log), 0);
	ck_assert_msg(strstr(log, "was changed after it was applied") != NULL, "said: %s", log);
	free(log);

	/* A new migration after a refused run is not applied either. */
	snprintf(cmd, sizeof cmd, "echo 'CREATE TABLE itest_new (id int);' > '%s/9999_itest_new.sql'", tmp);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_ne(run_migrate(url, tmp, &log), 0);
	free(log);
	char *exists = db_scalar(url, "SELECT to_regclass('itest_new') IS NOT NULL");
	ck_assert_str_eq(exists, "f");
	free(exists);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(cmd), 0);
	free(dir);
	free(url);
}
END_TEST

START_TEST(failed_migration_rolls_back)
{
	char *url = fresh_database("itest_failing");
	char tmp[] = "/tmp/gala-schemaXXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	char cmd[8192];
	snprintf(cmd, sizeof cmd,
	    "printf 'CREATE TABLE half (id int);\\nSELECT no_such_function();\\n' > '%s/0001_half.sql'", tmp);
	ck_assert_int_eq(system(cmd), 0);
	char *log;
	ck_assert_int_ne(run_migrate(url, tmp, &log), 0);
	free(log);
	char *exists = db_scalar(url, "SELECT to_regclass('half') IS NOT NULL");
	ck_assert_str_eq(exists, "f");
	char *count = db_scalar(url, "SELECT count(*) FROM schema_migrations");
	ck_assert_str_eq(count, "0");
	free(exists);
	free(count);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(cmd), 0);
	free(url);
}
END_TEST

static int health_status(void)
{
	arena_t *a = arena_new(4096);
	char *envp[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/health",
		"DOCUMENT_URI=/api/health", "REMOTE_ADDR=127.0.0.1", NULL };
	struct request req;
	request_init(&req, a, envp, NULL, 0);
	pipeline_run(&req, api_routes, api_routes_count);
	int status = req.resp.status;
	db_request_done();
	arena_free(a);
	return status;
}

START_TEST(health_and_reconnect)
{
	char *url = migrated_database("itest_health");
	memset(&itest_cfg, 0, sizeof itest_cfg);
	itest_cfg.max_body_bytes = 65536;
	itest_cfg.trusted_proxies = "";
	gala_config = &itest_cfg;

	db_configure(url, 5, true);
	ck_assert_int_eq(health_status(), 200);

	/* The server closes our idle connection: the next request reconnects. */
	PGconn *su = test_db_superuser();
	PQclear(PQexec(su, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	    "WHERE datname = 'itest_health' AND application_name = 'gala'"));
	PQfinish(su);
	usleep(200000);
	ck_assert_int_eq(health_status(), 200);

	/* Nothing to connect to: 503, not a crash or a hang. */
	db_configure("postgresql:///nope?host=/nonexistent", 1, true);
	ck_assert_int_eq(health_status(), 503);
	db_configure(url, 5, true);
	ck_assert_int_eq(health_status(), 200);
	db_disconnect();
	free(url);
}
END_TEST


/* How many named statements the worker's session holds, asked on that
 * session itself. */
static int prepared_count(arena_t *a)
{
	PGresult *r;
	ck_assert_int_eq(db_exec(a, &r, "SELECT count(*) FROM pg_prepared_statements", 0, NULL),
	    DB_OK);
	return (int)db_int(r, 0, 0);
}

START_TEST(statements_are_prepared_once_per_connection)
{
	char *url = fresh_database("itest_prepared");
	arena_t *a = arena_new(4096);
	db_configure(url, 5, true);
	PGresult *r;
	const char *p[] = { "41" };
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(db_exec(a, &r, "SELECT $1::int + 1", 1, p), DB_OK);
		ck_assert_str_eq(db_value(r, 0, 0), "42");
	}
	/* This statement and the count itself: two, however often each ran. */
	ck_assert_int_eq(prepared_count(a), 2);
	ck_assert_int_eq(prepared_count(a), 2);

	/* A new session prepares again. */
	db_disconnect();
	ck_assert_int_eq(db_exec(a, &r, "SELECT $1::int + 1", 1, p), DB_OK);
	ck_assert_str_eq(db_value(r, 0, 0), "42");
	ck_assert_int_eq(prepared_count(a), 2);

	/* A failed statement is an error, never kept as prepared. */
	ck_assert_int_eq(db_exec(a, &r, "SELECT no_such_column FROM pg_class", 0, NULL), DB_ERROR);
	ck_assert_str_eq(db_sqlstate(r), "42703");
	ck_assert_int_eq(prepared_count(a), 2);

	/* Off: nothing named, the same answers. */
	db_configure(url, 5, false);
	ck_assert_int_eq(db_exec(a, &r, "SELECT $1::int + 1", 1, p), DB_OK);
	ck_assert_str_eq(db_value(r, 0, 0), "42");
	ck_assert_int_eq(prepared_count(a), 0);
	db_request_done();
	db_disconnect();
	arena_free(a);
	free(url);
}
END_TEST

START_TEST(prepared_statement_survives_a_table_change)
{
	char *url = fresh_database("itest_replan");
	PGconn *c = PQconnectdb(url);
	PQclear(PQexec(c, "CREATE TABLE t (a int); INSERT INTO t VALUES (1)"));
	arena_t *a = arena_new(4096);
	db_configure(url, 5, true);
	PGresult *r;
	ck_assert_int_eq(db_exec(a, &r, "SELECT * FROM t", 0, NULL), DB_OK);
	ck_assert_int_eq(PQnfields(r), 1);
	/* A migration changes the row type under the named statement. */
	PQclear(PQexec(c, "ALTER TABLE t ADD COLUMN b int DEFAULT 2"));
	ck_assert_int_eq(db_exec(a, &r, "SELECT * FROM t", 0, NULL), DB_OK);
	ck_assert_int_eq(PQnfields(r), 2);
	ck_assert_str_eq(db_value(r, 0, 1), "2");
	/* Stale as a deferred statement: the round trip is sent again. */
	PQclear(PQexec(c, "ALTER TABLE t ADD COLUMN c int DEFAULT 3"));
	struct db_deferred d = { .sql = "SELECT * FROM t" };
	db_defer(&d);
	ck_assert_int_eq(db_exec(a, &r, "SELECT 42", 0, NULL), DB_OK);
	ck_assert_str_eq(db_value(r, 0, 0), "42");
	ck_assert_int_eq(d.status, DB_OK);
	ck_assert_int_eq(PQnfields(d.res), 3);
	PQfinish(c);
	db_request_done();
	db_disconnect();
	arena_free(a);
	free(url);
}
END_TEST

/* users.event_count, the total of an owner's event list, follows every
 * insert, delete and truncate of events in their own transaction; an
 * event's owner cannot change under it. */
START_TEST(event_count_follows_the_events)
{
	char *url = migrated_database("itest_event_count");
	PGconn *c = PQconnectdb(url);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	static const char *const setup[] = {
		"INSERT INTO users (id, email, password_hash, full_name) VALUES "
		"('00000000-0000-4000-8000-000000000001', 'a@gala.test', 'x', 'A'), "
		"('00000000-0000-4000-8000-000000000002', 'b@gala.test', 'x', 'B'), "
		"('00000000-0000-4000-8000-000000000003', 'c@gala.test', 'x', 'C')",
		"INSERT INTO events (owner_id, title, starts_at) SELECT "
		"('00000000-0000-4000-8000-00000000000' || (1 + g % 2))::uuid, 'E' || g, now() "
		"FROM generate_series(1, 7) g",
		"DELETE FROM events WHERE title IN ('E1', 'E2', 'E4')",
		"BEGIN",
		"INSERT INTO events (owner_id, title, starts_at) VALUES "
		"('00000000-0000-4000-8000-000000000003', 'gone', now())",
		"ROLLBACK",
	};
	for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) {
		PGresult *r = PQexec(c, setup[i]);
		ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", setup[i],
		    PQresultErrorMessage(r));
		PQclear(r);
	}
	const char *counts = "SELECT string_agg(event_count::text || '=' || "
	    "(SELECT count(*) FROM events e WHERE e.owner_id = u.id)::text, ',' ORDER BY u.id) "
	    "FROM users u";
	char *v = test_db_value(c, counts, 0, NULL);
	ck_assert_str_eq(v, "1=1,3=3,0=0");   /* even: 2, 4, 6; odd: 1, 3, 5, 7 */
	free(v);
	PGresult *r = PQexec(c, "UPDATE events SET owner_id = "
	    "'00000000-0000-4000-8000-000000000003' WHERE title = 'E3'");
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "55000");
	PQclear(r);
	PQclear(PQexec(c, "UPDATE events SET title = 'E3b' WHERE title = 'E3'"));
	PQclear(PQexec(c, "TRUNCATE events CASCADE"));
	v = test_db_value(c, counts, 0, NULL);
	ck_assert_str_eq(v, "0=0,0=0,0=0");
	free(v);
	PQfinish(c);
	free(url);
}
END_TEST

static void exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql,
	    PQresultErrorMessage(r));
	PQclear(r);
}

/* users.revoked_jtis, what the session check reads for a logout, follows
 * every insert, delete, update and truncate of revoked_tokens in their own
 * transaction; two logouts of one user at once both stay. */
/* One check of the session for a, in the form db_configure chose. */
static enum gala_error check_session(arena_t *a, struct session *s, const char *id,
    const char *jti, const char *role, bool need_verified)
{
	*s = (struct session){ .id = id, .role = role };
	snprintf(s->claims.jti, sizeof s->claims.jti, "%s", jti);
	session_check_defer(s, a, false, need_verified);
	enum gala_error e = session_check_result(s);
	db_request_done();
	return e;
}

/* The session check reads the same account and refuses the same tokens
 * with prepared statements (its SELECT) as without (the function
 * returning the row as one value, schema 0021). */
START_TEST(session_check_is_the_same_in_both_forms)
{
	char *url = migrated_database("itest_session_check");
	PGconn *c = PQconnectdb(url);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	exec_ok(c, "INSERT INTO users (id, email, password_hash, full_name, email_verified, "
	    "created_at) VALUES ('00000000-0000-4000-8000-000000000001', 'a@gala.test', 'x', "
	    "'Ann \"A\" Lee', false, '2026-01-02 03:04:05.999+00')");
	exec_ok(c, "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES "
	    "('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001', now())");
	const char *id = "00000000-0000-4000-8000-000000000001";
	const char *jti = "00000000-0000-4000-8000-0000000000a2";
	for (int prepared = 0; prepared < 2; prepared++) {
		arena_t *a = arena_new(4096);
		db_configure(url, 5, prepared == 1);
		struct session s;
		ck_assert_int_eq(check_session(a, &s, id, jti, "customer", false), GE_OK);
		const struct session_profile *p = session_profile(&s);
		ck_assert_str_eq(p->email, "a@gala.test");
		ck_assert_str_eq(p->full_name, "Ann \"A\" Lee");
		ck_assert_str_eq(s.role, "customer");
		ck_assert(!p->email_verified);
		ck_assert(!p->mfa_enabled);
		ck_assert_str_eq(p->created_at, "2026-01-02T03:04:05Z");
		ck_assert_int_eq(check_session(a, &s, id, "00000000-0000-4000-8000-0000000000a1",
		    "customer", false), GE_INVALID_TOKEN);
		ck_assert_int_eq(check_session(a, &s, id, jti, "admin", false), GE_CONFLICT);
		ck_assert_int_eq(check_session(a, &s, id, jti, "customer", true),
		    GE_EMAIL_NOT_VERIFIED);
		ck_assert_int_eq(check_session(a, &s, "00000000-0000-4000-8000-000000000009", jti,
		    "customer", false), GE_INVALID_TOKEN);
		exec_ok(c, "UPDATE users SET email_verified = true, mfa_enabled = true");
		ck_assert_int_eq(check_session(a, &s, id, jti, "customer", true), GE_OK);
		ck_assert(session_profile(&s)->email_verified);
		ck_assert(session_profile(&s)->mfa_enabled);
		exec_ok(c, "UPDATE users SET email_verified = false, mfa_enabled = false");
		db_disconnect();
		arena_free(a);
	}

	/* A composite of another shape is refused, not misread. */
	PGresult *r = PQexecParams(c, "SELECT ROW(1, 'x'), NULL::gala_session_row", 0, NULL,
	    NULL, NULL, NULL, 1);
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	struct db_field f[6];
	ck_assert(db_record(r, 0, 0, f, 2));
	ck_assert_int_eq(f[1].len, 1);
	ck_assert(!db_record(r, 0, 0, f, 6));
	ck_assert(!db_record(r, 0, 1, f, 6));
	PQclear(r);
	PQfinish(c);
	free(url);
}
END_TEST

START_TEST(revoked_jtis_follow_revoked_tokens)
{
	char *url = migrated_database("itest_revoked_jtis");
	PGconn *c = PQconnectdb(url), *other = PQconnectdb(url);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	ck_assert_int_eq(PQstatus(other), CONNECTION_OK);
	exec_ok(c, "INSERT INTO users (id, email, password_hash, full_name) VALUES "
	    "('00000000-0000-4000-8000-000000000001', 'a@gala.test', 'x', 'A'), "
	    "('00000000-0000-4000-8000-000000000002', 'b@gala.test', 'x', 'B')");
	exec_ok(c, "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES "
	    "('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001', now()), "
	    "('00000000-0000-4000-8000-0000000000a2', '00000000-0000-4000-8000-000000000001', now()), "
	    "('00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-000000000002', now())");
	exec_ok(c, "DELETE FROM revoked_tokens WHERE jti = '00000000-0000-4000-8000-0000000000a1'");
	exec_ok(c, "UPDATE revoked_tokens SET user_id = '00000000-0000-4000-8000-000000000002' "
	    "WHERE jti = '00000000-0000-4000-8000-0000000000a2'");
	exec_ok(c, "BEGIN");
	exec_ok(c, "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES "
	    "('00000000-0000-4000-8000-0000000000a3', '00000000-0000-4000-8000-000000000001', now())");
	exec_ok(c, "ROLLBACK");

	/* A second logout of A while the first holds A's row: it waits, then
	 * appends to what the first committed. */
	exec_ok(c, "BEGIN");
	exec_ok(c, "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES "
	    "('00000000-0000-4000-8000-0000000000a4', '00000000-0000-4000-8000-000000000001', now())");
	ck_assert_int_eq(PQsendQuery(other, "INSERT INTO revoked_tokens (jti, user_id, expires_at) "
	    "VALUES ('00000000-0000-4000-8000-0000000000a5', '00000000-0000-4000-8000-000000000001', "
	    "now())"), 1);
	char *waiting = test_db_value(c, "SELECT count(*) FROM pg_stat_activity "
	    "WHERE wait_event_type = 'Lock' AND datname = current_database()", 0, NULL);
	for (int i = 0; i < 500 && strcmp(waiting, "1") != 0; i++) {
		free(waiting);
		usleep(10000);
		waiting = test_db_value(c, "SELECT count(*) FROM pg_stat_activity "
		    "WHERE wait_event_type = 'Lock' AND datname = current_database()", 0, NULL);
	}
	ck_assert_str_eq(waiting, "1");
	free(waiting);
	exec_ok(c, "COMMIT");
	PGresult *r;
	while ((r = PQgetResult(other)) != NULL) {
		ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
		PQclear(r);
	}

	const char *sorted = "SELECT string_agg(coalesce((SELECT string_agg(right(j::text, 2), ',' "
	    "ORDER BY j) FROM unnest(u.revoked_jtis) j), ''), ';' ORDER BY u.id) FROM users u";
	char *v = test_db_value(c, sorted, 0, NULL);
	ck_assert_str_eq(v, "a4,a5;a2,b1");
	free(v);
	v = test_db_value(c, "SELECT string_agg(right(jti::text, 2), ',' ORDER BY jti) "
	    "FROM revoked_tokens", 0, NULL);
	ck_assert_str_eq(v, "a2,a4,a5,b1");
	free(v);
	exec_ok(c, "TRUNCATE revoked_tokens");
	v = test_db_value(c, sorted, 0, NULL);
	ck_assert_str_eq(v, ";");
	free(v);
	exec_ok(c, "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES "
	    "('00000000-0000-4000-8000-0000000000a6', '00000000-0000-4000-8000-000000000001', now())");
	exec_ok(c, "DELETE FROM users WHERE id = '00000000-0000-4000-8000-000000000001'");
	v = test_db_value(c, "SELECT count(*) FROM revoked_tokens", 0, NULL);
	ck_assert_str_eq(v, "0");
	free(v);
	PQfinish(other);
	PQfinish(c);
	free(url);
}
END_TEST

/* A result in binary format reads as the same values as in text: the
 * accessors decode each type, timestamps truncated to the second as
 * SQL_TS does, before 2000 and before 1970 too. */
START_TEST(binary_results_read_as_text)
{
	char *url = fresh_database("itest_binary");
	arena_t *a = arena_new(4096);
	db_configure(url, 5, true);
	static const char *const times[] = { "2026-12-03 13:25:01.999999+00",
		"1999-12-31 23:59:59.5+00", "1969-12-31 23:59:59.5+00", "1960-05-01 10:00:00.25+00",
		"2000-01-01 00:00:00+00" };
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
		const char *p[] = { times[i] };
		PGresult *text, *bin;
		ck_assert_int_eq(db_exec(a, &text, "SELECT " SQL_TS("$1::timestamptz"), 1, p), DB_OK);
		ck_assert_int_eq(db_exec_binary(a, &bin, "SELECT $1::timestamptz", 1, p), DB_OK);
		char t1[DB_TIME_LEN], t2[DB_TIME_LEN];
		ck_assert_str_eq(db_time(bin, 0, 0, t2), db_time(text, 0, 0, t1));
	}
	const char *sql = "SELECT 'a4e1c3d2-0b9f-4e7a-8c6d-5f4e3d2c1b0a'::uuid, (-7)::int2, "
	    "(-70000)::int4, (-9007199254740993)::int8, true, false, 'h\u00e9'::text, "
	    "NULL::uuid, NULL::timestamptz, " SQL_TS("'2026-12-03 13:25:01+00'::timestamptz");
	PGresult *r;
	ck_assert_int_eq(db_exec_binary(a, &r, sql, 0, NULL), DB_OK);
	char u[DB_UUID_LEN], t[DB_TIME_LEN];
	ck_assert_str_eq(db_uuid(r, 0, 0, u), "a4e1c3d2-0b9f-4e7a-8c6d-5f4e3d2c1b0a");
	ck_assert_int_eq(db_int(r, 0, 1), -7);
	ck_assert_int_eq(db_int(r, 0, 2), -70000);
	ck_assert(db_int(r, 0, 3) == -9007199254740993LL);
	ck_assert(db_bool(r, 0, 4));
	ck_assert(!db_bool(r, 0, 5));
	ck_assert_str_eq(db_value(r, 0, 6), "h\xc3\xa9");
	ck_assert_ptr_null(db_uuid(r, 0, 7, u));
	ck_assert_ptr_null(db_time(r, 0, 8, t));
	ck_assert_str_eq(db_time(r, 0, 9, t), "2026-12-03T13:25:01Z");
	/* A deferred statement's result can be binary too. */
	struct db_deferred d = { .sql = "SELECT 5::int8", .binary = true };
	db_defer(&d);
	ck_assert_int_eq(db_exec(a, &r, "SELECT 6::int8", 0, NULL), DB_OK);
	ck_assert_int_eq(d.status, DB_OK);
	ck_assert_int_eq(PQfformat(d.res, 0), 1);
	ck_assert_int_eq(db_int(d.res, 0, 0), 5);
	ck_assert_str_eq(db_value(r, 0, 0), "6");
	db_request_done();
	db_disconnect();
	arena_free(a);
	free(url);
}
END_TEST

/* A list's page and its total come from one statement; a page past the
 * end still knows the total, and both keep to the filter. */
START_TEST(page_carries_its_total)
{
	char *url = fresh_database("itest_page");
	PGconn *c = PQconnectdb(url);
	PQclear(PQexec(c, "CREATE TABLE t (k int, v int); "
	    "INSERT INTO t SELECT g % 2, g FROM generate_series(1, 7) g"));
	arena_t *a = arena_new(4096);
	db_configure(url, 5, true);
	static const char page_sql[] = SQL_PAGE("t.v", "t WHERE t.k = $1::int", "t.v DESC",
	    "$2", "$3");
	static const char total_sql[] = SQL_PAGE_TOTAL("t WHERE t.k = $1::int");
	const char *odd[] = { "1" };
	PGresult *r;
	long long total = -1;
	ck_assert_int_eq(db_page(a, &r, &total, page_sql, total_sql, 1, odd, 2, 1, false), DB_OK);
	ck_assert_int_eq(total, 4);   /* 1, 3, 5, 7 */
	ck_assert_int_eq(PQntuples(r), 2);
	ck_assert_str_eq(db_value(r, 0, 0), "5");
	ck_assert_str_eq(db_value(r, 1, 0), "3");
	total = -1;
	ck_assert_int_eq(db_page(a, &r, &total, page_sql, total_sql, 1, odd, 2, 10, false), DB_OK);
	ck_assert_int_eq(total, 4);
	ck_assert_int_eq(PQntuples(r), 0);
	total = -1;
	ck_assert_int_eq(db_page(a, &r, &total, page_sql, total_sql, 1, odd, 3, 0, true), DB_OK);
	ck_assert_int_eq(total, 4);
	ck_assert_int_eq(PQntuples(r), 3);
	ck_assert_int_eq(PQfformat(r, 0), 1);
	ck_assert_int_eq(db_int(r, 0, 0), 7);
	ck_assert_int_eq(db_int(r, 2, 0), 3);
	const char *none[] = { "5" };
	ck_assert_int_eq(db_page(a, &r, &total, page_sql, total_sql, 1, none, 2, 0, false), DB_OK);
	ck_assert_int_eq(total, 0);
	ck_assert_int_eq(PQntuples(r), 0);
	PQfinish(c);
	db_request_done();
	db_disconnect();
	arena_free(a);
	free(url);
}
END_TEST

/* A deferred statement goes out with the next one; when it fails, the
 * statement sent with it does not run and nothing after it runs either,
 * until the request ends. */
START_TEST(deferred_statement_guards_what_travels_with_it)
{
	char *url = fresh_database("itest_deferred");
	PGconn *c = PQconnectdb(url);
	PQclear(PQexec(c, "CREATE TABLE t (a int)"));
	for (int prepared = 0; prepared < 2; prepared++) {
		arena_t *a = arena_new(4096);
		db_configure(url, 5, prepared == 1);
		PGresult *r;
		const char *ok[] = { "1" }, *bad[] = { "0" };
		struct db_deferred d = { .sql = "SELECT 1 / $1::int", .nparams = 1, .params = ok };
		db_defer(&d);
		ck_assert(!d.sent);
		ck_assert_int_eq(db_exec(a, &r, "INSERT INTO t VALUES (1)", 0, NULL), DB_OK);
		ck_assert(d.sent);
		ck_assert_int_eq(d.status, DB_OK);
		ck_assert_str_eq(db_value(d.res, 0, 0), "1");
		db_request_done();

		d = (struct db_deferred){ .sql = "SELECT 1 / $1::int", .nparams = 1, .params = bad };
		db_defer(&d);
		ck_assert_int_eq(db_exec(a, &r, "INSERT INTO t VALUES (2)", 0, NULL), DB_REFUSED);
		ck_assert_int_eq(d.status, DB_ERROR);
		ck_assert_str_eq(db_sqlstate(d.res), "22012");
		ck_assert_int_eq(db_exec(a, &r, "INSERT INTO t VALUES (3)", 0, NULL), DB_REFUSED);
		db_request_done();

		/* When the statement it travelled with fails, both are rolled
		 * back, and the deferred one says so; ahead of BEGIN it commits
		 * on its own. */
		const char *five[] = { "5" }, *six[] = { "6" };
		d = (struct db_deferred){ .sql = "INSERT INTO t VALUES ($1::int)", .nparams = 1,
			.params = five };
		db_defer(&d);
		ck_assert_int_eq(db_exec(a, &r, "SELECT 1 / $1::int", 1, bad), DB_ERROR);
		ck_assert_int_eq(d.status, DB_OK);
		ck_assert(d.undone);
		db_request_done();
		d = (struct db_deferred){ .sql = "INSERT INTO t VALUES ($1::int)", .nparams = 1,
			.params = six };
		db_defer(&d);
		ck_assert_int_eq(db_begin(a), DB_OK);
		ck_assert_int_eq(db_exec(a, &r, "SELECT 1 / $1::int", 1, bad), DB_ERROR);
		ck_assert(!d.undone);
		db_request_done();

		/* One statement twice in a round trip, on a session that has
		 * not prepared it yet. */
		db_disconnect();
		d = (struct db_deferred){ .sql = "SELECT 1 / $1::int", .nparams = 1, .params = ok };
		db_defer(&d);
		ck_assert_int_eq(db_exec(a, &r, "SELECT 1 / $1::int", 1, ok), DB_OK);
		ck_assert_int_eq(d.status, DB_OK);
		db_request_done();

		/* Flushed alone, when no statement comes. */
		d = (struct db_deferred){ .sql = "SELECT 1 / $1::int", .nparams = 1, .params = ok };
		db_defer(&d);
		db_flush(a);
		ck_assert_int_eq(d.status, DB_OK);
		db_request_done();
		char *rows = test_db_value(c, "SELECT string_agg(a::text, ',' ORDER BY a) FROM t",
		    0, NULL);
		ck_assert_str_eq(rows, "1,6");
		free(rows);
		PQclear(PQexec(c, "TRUNCATE t"));
		db_disconnect();
		arena_free(a);
	}
	PQfinish(c);
	free(url);
}
END_TEST

static void assert_rows(PGconn *c, const char *want)
{
	char *rows = test_db_value(c, "SELECT coalesce(string_agg(a::text, ',' ORDER BY a), '') "
	    "FROM t", 0, NULL);
	ck_assert_str_eq(rows, want);
	free(rows);
}

static enum db_status insert(arena_t *a, const char *v)
{
	PGresult *r;
	const char *p[] = { v };
	return db_exec(a, &r, "INSERT INTO t VALUES ($1::int)", 1, p);
}

/* Under a hold (an idempotent request), the handler's work stays
 * uncommitted until it commits with the statement that settles its key,
 * all or nothing; a failed statement of the handler's leaves the rest;
 * db_commit_held (before a Stripe call) and db_begin commit it for real;
 * work lost with its connection is reported, never silently dropped. */
START_TEST(held_work_commits_with_what_settles_it)
{
	char *url = fresh_database("itest_hold");
	PGconn *c = PQconnectdb(url);
	PQclear(PQexec(c, "CREATE TABLE t (a int PRIMARY KEY)"));
	for (int prepared = 0; prepared < 2; prepared++) {
		arena_t *a = arena_new(4096);
		db_configure(url, 5, prepared == 1);
		db_hold();
		ck_assert_int_eq(insert(a, "1"), DB_OK);
		ck_assert_int_eq(insert(a, "1"), DB_ERROR);
		ck_assert_int_eq(insert(a, "2"), DB_OK);
		assert_rows(c, "");
		ck_assert_int_eq(db_begin(a), DB_OK);
		assert_rows(c, "1,2");
		ck_assert_int_eq(insert(a, "3"), DB_OK);
		ck_assert_int_eq(db_commit(a), DB_OK);
		db_rollback();
		assert_rows(c, "1,2");
		ck_assert(db_hold_pending());
		const char *four[] = { "4" }, *one[] = { "1" };
		struct db_deferred d = { .sql = "INSERT INTO t VALUES ($1::int)", .nparams = 1,
			.params = four };
		db_defer(&d);
		ck_assert_int_eq(db_hold_commit(a), DB_OK);
		assert_rows(c, "1,2,3,4");
		db_request_done();

		/* The settling statement fails: the held work goes with it. */
		db_hold();
		ck_assert_int_eq(insert(a, "5"), DB_OK);
		d = (struct db_deferred){ .sql = "INSERT INTO t VALUES ($1::int)", .nparams = 1,
			.params = one };
		db_defer(&d);
		ck_assert_int_eq(db_hold_commit(a), DB_ERROR);
		db_request_done();
		assert_rows(c, "1,2,3,4");

		/* Committed for real on demand; the hold goes on. A transaction
		 * the handler leaves open is not part of it. */
		db_hold();
		ck_assert_int_eq(insert(a, "6"), DB_OK);
		ck_assert(db_commit_held());
		assert_rows(c, "1,2,3,4,6");
		ck_assert(!db_hold_pending());
		ck_assert_int_eq(insert(a, "7"), DB_OK);
		ck_assert_int_eq(db_begin(a), DB_OK);
		ck_assert_int_eq(insert(a, "8"), DB_OK);
		ck_assert_int_eq(db_hold_commit(a), DB_OK);
		db_request_done();
		assert_rows(c, "1,2,3,4,6,7");

		/* Lost with the connection: said so until the hold ends. */
		db_hold();
		ck_assert_int_eq(insert(a, "9"), DB_OK);
		PQclear(PQexec(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
		    "WHERE application_name = 'gala' AND datname = current_database()"));
		ck_assert_int_eq(insert(a, "10"), DB_UNAVAILABLE);
		ck_assert(!db_commit_held());
		ck_assert_int_eq(db_begin(a), DB_UNAVAILABLE);
		ck_assert_int_eq(db_hold_commit(a), DB_UNAVAILABLE);
		db_request_done();
		ck_assert_int_eq(insert(a, "11"), DB_OK);
		assert_rows(c, "1,2,3,4,6,7,11");
		PQclear(PQexec(c, "TRUNCATE t"));
		db_disconnect();
		arena_free(a);
	}
	PQfinish(c);
	free(url);
}
END_TEST

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	Suite *s = suite_create("integration");
	TCase *tc = tcase_create("db");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, migrations_apply_then_noop);
	tcase_add_test(tc, public_schema_closed_to_public);
	tcase_add_test(tc, changed_migration_is_refused);
	tcase_add_test(tc, failed_migration_rolls_back);
	tcase_add_test(tc, health_and_reconnect);
	tcase_add_test(tc, statements_are_prepared_once_per_connection);
	tcase_add_test(tc, prepared_statement_survives_a_table_change);
	tcase_add_test(tc, deferred_statement_guards_what_travels_with_it);
	tcase_add_test(tc, held_work_commits_with_what_settles_it);
	tcase_add_test(tc, page_carries_its_total);
	tcase_add_test(tc, binary_results_read_as_text);
	tcase_add_test(tc, event_count_follows_the_events);
	tcase_add_test(tc, revoked_jtis_follow_revoked_tokens);
	tcase_add_test(tc, session_check_is_the_same_in_both_forms);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
