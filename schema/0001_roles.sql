-- The application connects as gala_app, which may read and write rows but
-- never change the schema; gala migrate runs as the owner. Every table the
-- owner creates from here on is granted to gala_app by default; tables that
-- must stay append-only revoke what they must.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gala_app') THEN
        GRANT USAGE ON SCHEMA public TO gala_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO gala_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT USAGE, SELECT ON SEQUENCES TO gala_app;
        GRANT SELECT ON schema_migrations TO gala_app;
    END IF;
END
$$;
