-- Without prepared statements (PgBouncer older than 1.21 in transaction
-- mode) every statement is planned each time it is sent. The session check
-- goes as a function so that its query is planned once per session
-- (0008), but "SELECT * FROM gala_session_check(...)" still costs a
-- function scan's planning on every request: about 20 µs more of Postgres
-- than "SELECT gala_session_check_row(...)", which returns the same row as
-- one composite value. gala_session_check() stays for workers of the
-- previous release during a rolling upgrade.
CREATE TYPE gala_session_row AS (email text, full_name text, role text,
    email_verified boolean, created_at timestamptz, mfa_enabled boolean);

-- NULL when the user is gone; the refusals raise as gala_session_check()
-- does (src/services/session.c sends the same query as a prepared
-- statement: keep the two in step).
CREATE FUNCTION gala_session_check_row(p_user uuid, p_jti uuid, p_version bigint,
    p_role text, p_verified boolean)
RETURNS gala_session_row
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    r gala_session_row;
    refused boolean;
BEGIN
    SELECT u.email, u.full_name, u.role, u.email_verified, u.created_at, u.mfa_enabled,
           CASE
           WHEN (u.token_version <> p_version
                 AND (u.kept_jti IS DISTINCT FROM p_jti OR u.kept_version <> u.token_version))
                OR p_jti = ANY (u.revoked_jtis)
           THEN gala_raise('GA401', 'the session is not valid')
           WHEN p_role IS NOT NULL AND u.role <> p_role
           THEN gala_raise('GA409', 'the role of the account changed')
           WHEN p_verified AND NOT u.email_verified
           THEN gala_raise('GA403', 'the email address is not verified')
           END
    INTO r.email, r.full_name, r.role, r.email_verified, r.created_at, r.mfa_enabled, refused
    FROM users u WHERE u.id = p_user;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN r;
END
$$;
