-- Nobody but the schema owner creates objects in public: a role that could
-- (PUBLIC held CREATE before PostgreSQL 15, and a database may have been
-- upgraded from one) could plant a function or operator that shadows one
-- Gala calls. PostgreSQL 15 and later already ship without it; this holds
-- for every cluster, and checks that it took: on an older one whose public
-- schema belongs to the superuser the owner cannot revoke it itself.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a
               WHERE n.nspname = 'public' AND a.grantee = 0
               AND a.privilege_type = 'CREATE') THEN
        RAISE EXCEPTION 'PUBLIC may still create in schema public: as a superuser, '
            'run REVOKE CREATE ON SCHEMA public FROM PUBLIC in this database, '
            'then gala migrate again';
    END IF;
END
$$;
