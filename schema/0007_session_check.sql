-- Raises an error with the given SQLSTATE. The session check that every
-- authenticated request runs (src/http/auth.c) calls it only when the
-- session is not valid: the check travels in the same round trip as the
-- route's first statement, and an error, unlike an empty result, aborts
-- the statements sent with it. Being plpgsql, it is only called on that
-- failure path, so the check itself stays a plain, planned-once SELECT.
--   GA401  the token's version is outdated, or its jti
--          was revoked (logout)
--   GA409  the account's role is no longer the token's
CREATE FUNCTION gala_raise(p_code text, p_message text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message;
END
$$;
