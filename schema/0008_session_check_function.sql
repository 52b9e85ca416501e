-- The session check of src/http/auth.c as a function, for connections
-- that send unnamed statements (DB_PREPARED_STATEMENTS=false, behind
-- PgBouncer older than 1.21). An unnamed statement is parsed and planned
-- afresh every time, and the check is the costliest statement to plan that
-- every authenticated request runs; plpgsql plans its query once per
-- session, so only the trivial call is planned per request. With prepared
-- statements the plain SELECT is cheaper, so auth.c sends that instead:
-- keep the two in step (the suite runs in both modes).
CREATE FUNCTION gala_session_check(p_user uuid, p_jti uuid, p_version bigint,
    p_role text, p_verified boolean)
RETURNS TABLE (email text, full_name text, role text, email_verified boolean,
    created_at bigint, refused boolean)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY
    SELECT u.email, u.full_name, u.role, u.email_verified,
           trunc(date_part('epoch', u.created_at))::bigint,
           CASE
           WHEN u.token_version <> p_version
                OR EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = p_jti)
           THEN gala_raise('GA401', 'the session is not valid')
           WHEN p_role IS NOT NULL AND u.role <> p_role
           THEN gala_raise('GA409', 'the role of the account changed')
           WHEN p_verified AND NOT u.email_verified
           THEN gala_raise('GA403', 'the email address is not verified')
           END
    FROM users u WHERE u.id = p_user;
END
$$;
