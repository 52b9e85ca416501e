-- Accounts, one-time codes, reset tokens, revoked access tokens and the
-- append-only audit log.

CREATE TABLE users (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email              text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash      text NOT NULL,
    full_name          text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 200),
    role               text NOT NULL DEFAULT 'customer'
                       CHECK (role IN ('customer', 'provider', 'admin')),
    email_verified     boolean NOT NULL DEFAULT false,
    -- Bumped by logout-all and password resets: older tokens stop working.
    token_version      integer NOT NULL DEFAULT 0,
    stripe_customer_id text UNIQUE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- Emails are matched case-insensitively.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- One live verification code per user; a resend replaces it.
CREATE TABLE email_otps (
    user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    code_hash    text NOT NULL,              -- HMAC-SHA256 keyed with SECRET_KEY
    expires_at   timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts BETWEEN 0 AND 5),
    last_sent_at timestamptz NOT NULL DEFAULT now(),
    used_at      timestamptz
);
CREATE INDEX email_otps_expires_at_idx ON email_otps (expires_at);

CREATE TABLE password_reset_tokens (
    token_hash text PRIMARY KEY,             -- SHA-256 of the token
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id);
CREATE INDEX password_reset_tokens_expires_at_idx ON password_reset_tokens (expires_at);

-- Logged-out tokens, kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at);

CREATE TABLE audit_logs (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    actor_user_id  uuid REFERENCES users (id),
    target_user_id uuid REFERENCES users (id),
    action         text NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    status         text NOT NULL CHECK (status IN ('success', 'failure')),
    ip             text,
    user_agent     text,
    request_id     text,
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX audit_logs_created_at_idx ON audit_logs (created_at DESC, id DESC);
CREATE INDEX audit_logs_action_idx ON audit_logs (action, created_at DESC);
CREATE INDEX audit_logs_actor_idx ON audit_logs (actor_user_id, created_at DESC);
CREATE INDEX audit_logs_target_idx ON audit_logs (target_user_id, created_at DESC);

-- Append-only, enforced in the database: the runtime role may not change or
-- remove rows, and the trigger stops everyone else short of dropping it.
CREATE FUNCTION audit_logs_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_logs_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_append_only();
CREATE TRIGGER audit_logs_no_truncate
    BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_append_only();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gala_app') THEN
        REVOKE UPDATE, DELETE, TRUNCATE ON audit_logs FROM gala_app;
    END IF;
END
$$;
