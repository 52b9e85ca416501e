-- The session check of every authenticated request. The worker sends it in
-- the same round trip as the route's first statement, so it raises instead
-- of returning no row: a failed check aborts the statements sent with it,
-- and a revoked or outdated token never gets a statement run on its behalf.
--   GA401  the user is gone, the token's version is outdated, or its jti
--          was revoked (logout)
--   GA409  the account's role is no longer the token's (p_role NULL skips
--          this comparison: the caller then takes the role returned)
CREATE FUNCTION gala_session(p_user uuid, p_jti uuid, p_version integer, p_role text,
    OUT email text, OUT full_name text, OUT role text, OUT email_verified boolean,
    OUT created_at bigint)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_version integer;
BEGIN
    SELECT u.email, u.full_name, u.role, u.email_verified,
           trunc(date_part('epoch', u.created_at))::bigint, u.token_version
      INTO email, full_name, role, email_verified, created_at, v_version
      FROM public.users u
     WHERE u.id = p_user;
    IF NOT FOUND OR v_version <> p_version
       OR EXISTS (SELECT 1 FROM public.revoked_tokens r WHERE r.jti = p_jti) THEN
        RAISE EXCEPTION 'the session is not valid' USING ERRCODE = 'GA401';
    END IF;
    IF p_role IS NOT NULL AND role <> p_role THEN
        RAISE EXCEPTION 'the role of the account changed' USING ERRCODE = 'GA409';
    END IF;
END
$$;
