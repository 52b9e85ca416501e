/* gala migrate: applies schema/NNNN_name.sql in order, each in its own
 * transaction, recorded in schema_migrations with its SHA-256, under an
 * advisory lock so that two hosts never migrate at once. A file changed
 * after it was applied stops everything. Run it against Postgres directly,
 * not through a transaction-pooling PgBouncer (the lock is session-level). */
#ifndef GALA_MIGRATE_H
#define GALA_MIGRATE_H

/* Returns 0 when the schema is up to date, 1 on any error (logged). */
int migrate_run(const char *conninfo, const char *schema_dir, int connect_timeout_s,
    int statement_timeout_ms);

#endif
