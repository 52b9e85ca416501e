#include "autoconf.h"

#include "db/migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "core/buf.h"
#include "core/log.h"

#define MIGRATE_LOCK_KEY "7046437341"   /* fixed advisory lock id of gala migrate */
#define MIGRATION_MAX_BYTES ((size_t)16 * 1024 * 1024)

struct migration {
	char name[256];
	char checksum[65];
	buf_t sql;
};

/* Checks that a file name is NNNN_name.sql (4 digits, [a-z0-9_] name). */
static int migrate_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len < 10 || strcmp(name + len - 4, ".sql") != 0)
		return 0;
	for (int i = 0; i < 4; i++)
		if (!isdigit((unsigned char)name[i]))
			return 0;
	if (name[4] != '_')
		return 0;
	for (size_t i = 5; i < len - 4; i++)
		if (!(islower((unsigned char)name[i]) || isdigit((unsigned char)name[i]) || name[i] == '_'))
			return 0;
	return 1;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(((const struct migration *)a)->name, ((const struct migration *)b)->name);
}

static int read_file(const char *path, buf_t *out)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	char chunk[8192];
	size_t n;
	int rc = 0;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		if (buf_append(out, chunk, n) != 0) {
			rc = -1;
			break;
		}
	if (ferror(f))
		rc = -1;
	fclose(f);
	return rc;
}

static void free_migrations(struct migration *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf_free(&m[i].sql);
	free(m);
}

static int load_migrations(const char *dir, struct migration **out, size_t *nout)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		log_error("gala.migrate", "cannot open SCHEMA_DIR %s: %s", dir, strerror(errno));
		return -1;
	}
	struct migration *m = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int rc = 0;
	/* readdir is safe on a stream of one thread's own; readdir_r, which
	 * cppcheck would have, is deprecated by glibc. */
	/* cppcheck-suppress readdirCalled */
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (e->d_name[0] == '.' || len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0)
			continue;
		if (!migrate_name_valid(e->d_name)) {
			log_error("gala.migrate", "%s: migration files are named NNNN_name.sql", e->d_name);
			rc = -1;
			break;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			struct migration *nm = realloc(m, cap * sizeof *m);
			if (nm == NULL) {
				rc = -1;
				break;
			}
			m = nm;
		}
		struct migration *cur = &m[n++];
		snprintf(cur->name, sizeof cur->name, "%s", e->d_name);
		buf_init(&cur->sql, MIGRATION_MAX_BYTES);
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (read_file(path, &cur->sql) != 0 || cur->sql.len == 0) {
			log_error("gala.migrate", "cannot read %s", path);
			rc = -1;
			break;
		}
		unsigned char hash[crypto_hash_sha256_BYTES];
		crypto_hash_sha256(hash, (const unsigned char *)cur->sql.data, cur->sql.len);
		sodium_bin2hex(cur->checksum, sizeof cur->checksum, hash, sizeof hash);
	}
	closedir(d);
	if (rc != 0) {
		free_migrations(m, n);
		return -1;
	}
	if (n > 1)
		qsort(m, n, sizeof *m, cmp_names);
	for (size_t i = 1; i < n; i++) {
		if (strncmp(m[i - 1].name, m[i].name, 4) == 0) {
			log_error("gala.migrate", "%s and %s share a version number", m[i - 1].name, m[i].name);
			free_migrations(m, n);
			return -1;
		}
	}
	*out = m;
	*nout = n;
	return 0;
}

static int exec_ok(PGconn *c, PGresult *r, const char *what)
{
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return 0;
	char msg[512];
	snprintf(msg, sizeof msg, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	msg[strcspn(msg, "\n")] = '\0';
	cJSON *f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "step", what);
	cJSON_AddStringToObject(f, "error", msg);
	log_emit(LOG_LEVEL_ERROR, "gala.migrate", "migration step failed", f);
	return -1;
}

/* Runs a fixed statement without values. */
static int run_fixed(PGconn *c, const char *sql, const char *what)
{
	PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
	int rc = exec_ok(c, r, what);
	PQclear(r);
	return rc;
}

static int apply_one(PGconn *c, const struct migration *m)
{
	if (run_fixed(c, "BEGIN", "begin") != 0)
		return -1;
	/* A migration file holds several statements: that needs the simple query
	 * protocol. The SQL is our own fixed file, with no values spliced in. */
	PGresult *r = PQexec(c, m->sql.data);
	int rc = exec_ok(c, r, m->name);
	PQclear(r);
	if (rc == 0) {
		char version[5];
		memcpy(version, m->name, 4);
		version[4] = '\0';
		const char *params[] = { version, m->name, m->checksum };
		r = PQexecParams(c, "INSERT INTO schema_migrations (version, name, checksum) "
		    "VALUES ($1, $2, $3)", 3, NULL, params, NULL, NULL, 0);
		rc = exec_ok(c, r, "record");
		PQclear(r);
	}
	if (rc == 0)
		rc = run_fixed(c, "COMMIT", "commit");
	if (rc != 0)
		run_fixed(c, "ROLLBACK", "rollback");
	return rc;
}

/* The database's default statement timeout for new sessions (schema
 * 0015): the workers' sessions, direct or pooled, take it from there. */
static int set_statement_timeout(PGconn *c, int statement_timeout_ms)
{
	char ms[16];
	snprintf(ms, sizeof ms, "%d", statement_timeout_ms);
	const char *p[] = { ms };
	PGresult *r = PQexecParams(c, "SELECT gala_set_statement_timeout($1::int)", 1, NULL, p,
	    NULL, NULL, 0);
	int rc = exec_ok(c, r, "statement timeout");
	PQclear(r);
	if (rc == 0)
		log_info("gala.migrate", "statement timeout of new sessions: %d ms", statement_timeout_ms);
	return rc;
}

int migrate_run(const char *conninfo, const char *schema_dir, int connect_timeout_s,
    int statement_timeout_ms)
{
	struct migration *m = NULL;
	size_t n = 0;
	if (load_migrations(schema_dir, &m, &n) != 0)
		return 1;

	char timeout[16];
	snprintf(timeout, sizeof timeout, "%d", connect_timeout_s);
	const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
	const char *vals[] = { conninfo, timeout, "gala-migrate", NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	int rc = 1;
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		char msg[256];
		snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "out of memory");
		msg[strcspn(msg, "\n")] = '\0';
		log_error("gala.migrate", "cannot connect to the database: %s", msg);
		goto out;
	}
	/* A migration may take long: the application's timeout is not ours. */
	if (run_fixed(c, "SET client_min_messages = warning", "settings") != 0 ||
	    run_fixed(c, "SET statement_timeout = 0", "settings") != 0 ||
	    run_fixed(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "lock") != 0 ||
	    run_fixed(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
		"version text PRIMARY KEY, name text NOT NULL UNIQUE, "
		"checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
		"bookkeeping table") != 0)
		goto out;

	PGresult *applied = PQexecParams(c, "SELECT name, checksum FROM schema_migrations",
	    0, NULL, NULL, NULL, NULL, 0);
	if (exec_ok(c, applied, "read applied") != 0) {
		PQclear(applied);
		goto out;
	}
	int changed = 0;
	size_t applied_now = 0;
	for (int row = 0; row < PQntuples(applied); row++) {
		const char *name = PQgetvalue(applied, row, 0);
		const char *sum = PQgetvalue(applied, row, 1);
		int found = 0;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(m[i].name, name) != 0)
				continue;
			found = 1;
			if (strcmp(m[i].checksum, sum) != 0) {
				log_error("gala.migrate", "%s was changed after it was applied "
				    "(checksum %.12s…, now %.12s…); add a new migration instead", name, sum,
				    m[i].checksum);
				changed = 1;
			}
		}
		if (!found)
			log_warn("gala.migrate", "%s is applied but its file is missing", name);
	}
	if (changed) {
		PQclear(applied);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int done = 0;
		for (int row = 0; row < PQntuples(applied); row++)
			if (strcmp(PQgetvalue(applied, row, 0), m[i].name) == 0)
				done = 1;
		if (done)
			continue;
		if (apply_one(c, &m[i]) != 0) {
			PQclear(applied);
			goto out;
		}
		log_info("gala.migrate", "applied %s", m[i].name);
		applied_now++;
	}
	PQclear(applied);
	if (applied_now == 0)
		log_info("gala.migrate", "schema is up to date (%zu migrations)", n);
	if (set_statement_timeout(c, statement_timeout_ms) != 0)
		goto out;
	rc = 0;
out:
	if (c != NULL) {
		if (PQstatus(c) == CONNECTION_OK)
			run_fixed(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", "unlock");
		PQfinish(c);
	}
	free_migrations(m, n);
	return rc;
}
