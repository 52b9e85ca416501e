-- The statement timeout is the database's default for every new session,
-- set by gala migrate from DB_STATEMENT_TIMEOUT_MS: it then holds directly
-- and through a pooler alike, where a startup parameter (options=-c ...)
-- is refused by PgBouncer and a session SET would leak to other clients
-- of a pooled connection. Only the database's owner may call it.
CREATE FUNCTION gala_set_statement_timeout(p_ms integer) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF p_ms < 0 THEN
        RAISE EXCEPTION 'statement timeout must not be negative';
    END IF;
    EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L',
                   current_database(), p_ms || 'ms');
END
$$;
REVOKE EXECUTE ON FUNCTION gala_set_statement_timeout(integer) FROM PUBLIC;
