-- TOTP two-factor authentication (API.md, Two-factor authentication).
-- Secrets are kept encrypted (libsodium secretbox under a key derived from
-- SECRET_KEY, src/services/mfa.c), recovery codes and mfa_tokens only as
-- keyed hashes. Rows reach gala_app through 0001's default privileges.

-- One row per user who started a setup. secret is set once a code confirmed
-- it (MFA is on); pending_secret waits for that confirmation, and a new
-- setup replaces it. last_step is the newest TOTP step accepted: a code of
-- that step or an older one is never accepted again.
CREATE TABLE user_mfa (
    user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret         text,
    pending_secret text,
    last_step      bigint NOT NULL DEFAULT 0,
    enabled_at     timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((secret IS NULL) = (enabled_at IS NULL))
);

-- Ten per user; pending ones belong to the setup that is not confirmed yet
-- and replace the active ones on confirmation. Single use: used_at.
CREATE TABLE mfa_recovery_codes (
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash text NOT NULL,
    pending   boolean NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- The second step of a login: issued by POST /login to a user with MFA,
-- spent by POST /mfa/verify. Single use, 5 minutes, 5 wrong codes.
CREATE TABLE mfa_tokens (
    token_hash text PRIMARY KEY,             -- SHA-256 of the token
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    attempts   integer NOT NULL DEFAULT 0 CHECK (attempts BETWEEN 0 AND 5),
    used_at    timestamptz
);
CREATE INDEX mfa_tokens_user_idx ON mfa_tokens (user_id);
CREATE INDEX mfa_tokens_expires_at_idx ON mfa_tokens (expires_at);

-- Revoking every session but one (disabling MFA): token_version moves on,
-- and the one token kept (its jti) stays valid while token_version is still
-- kept_version. Any later bump (logout-all, a reset) ends it too, without
-- the code that bumps having to know about it.
ALTER TABLE users ADD COLUMN kept_jti uuid, ADD COLUMN kept_version integer;

-- The session check (0007, 0008) learns the kept token and returns whether
-- MFA is on (GET /me). src/services/session.c sends the same SELECT when it
-- prepares statements: keep the two in step.
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
           EXISTS (SELECT 1 FROM user_mfa m WHERE m.user_id = u.id AND m.secret IS NOT NULL),
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
