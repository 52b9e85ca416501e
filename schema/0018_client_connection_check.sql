-- A statement whose client has gone is stopped within a second instead of
-- running on to its commit: a worker killed in the middle of a request
-- (past REQUEST_TIMEOUT_SECONDS, or a crash) then leaves nothing done that
-- the client's retry under the same Idempotency-Key would do a second
-- time. Postgres polls the client's socket at this interval only while a
-- statement runs (a lock wait included). Like the statement timeout, it is
-- the database's default for new sessions, so it holds directly and
-- through a pooler (PgBouncer closes the server connection of a client
-- that leaves mid-transaction). PostgreSQL 14 or later.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET client_connection_check_interval = %L',
                   current_database(), '1s');
END
$$;
