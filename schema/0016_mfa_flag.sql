-- Whether a user has two-factor authentication on is read by the session
-- check of every authenticated request (for the user object of /me): a
-- column of users, kept by a trigger on user_mfa, costs that check nothing,
-- where probing user_mfa cost every request an index lookup.
ALTER TABLE users ADD COLUMN mfa_enabled boolean NOT NULL DEFAULT false;
UPDATE users u SET mfa_enabled = true
WHERE EXISTS (SELECT 1 FROM user_mfa m WHERE m.user_id = u.id AND m.secret IS NOT NULL);

CREATE FUNCTION user_mfa_flag() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE users SET mfa_enabled = false WHERE id = OLD.user_id AND mfa_enabled;
        RETURN OLD;
    END IF;
    UPDATE users SET mfa_enabled = (NEW.secret IS NOT NULL)
    WHERE id = NEW.user_id AND mfa_enabled IS DISTINCT FROM (NEW.secret IS NOT NULL);
    RETURN NEW;
END
$$;
CREATE TRIGGER user_mfa_flag AFTER INSERT OR UPDATE OF secret OR DELETE ON user_mfa
    FOR EACH ROW EXECUTE FUNCTION user_mfa_flag();

-- The session check reads the column (src/services/session.c sends the
-- same SELECT when it prepares statements: keep the two in step).
DROP FUNCTION gala_session_check(uuid, uuid, bigint, text, boolean);
CREATE FUNCTION gala_session_check(p_user uuid, p_jti uuid, p_version bigint,
    p_role text, p_verified boolean)
RETURNS TABLE (email text, full_name text, role text, email_verified boolean,
    created_at bigint, mfa_enabled boolean, refused boolean)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY
    SELECT u.email, u.full_name, u.role, u.email_verified,
           trunc(date_part('epoch', u.created_at))::bigint,
           u.mfa_enabled,
           CASE
           WHEN (u.token_version <> p_version
                 AND (u.kept_jti IS DISTINCT FROM p_jti OR u.kept_version <> u.token_version))
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
