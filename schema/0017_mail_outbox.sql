-- The mail outbox (API.md "Mail"): a request queues its mail here in the
-- transaction of its cause, and gala mailer sends it (src/services/outbox.c).
--
-- A body holds secrets (a verification code, a reset link), so it is kept
-- sealed: XChaCha20-Poly1305 under a subkey of SECRET_KEY, bound to the
-- row's id, recipient and subject, so a reader of the table (or of a
-- backup) learns no code, and a body moved to another row or address no
-- longer opens. It is erased once the mail is sent or abandoned; gala
-- maintenance deletes finished rows after a week.
CREATE TABLE mail_outbox (
    id              uuid PRIMARY KEY,            -- chosen by the writer: the seal names it
    kind            text NOT NULL CHECK (kind IN ('verification', 'password_reset',
                                                  'password_changed')),
    user_id         uuid REFERENCES users (id) ON DELETE CASCADE,
    recipient       text NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
    subject         text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    sealed          text,                        -- hex nonce || ciphertext; NULL once finished
    request_id      text,                        -- of the cause, for the mailer's log
    -- pending: due at next_attempt_at; sending: claimed by a mailer until
    -- next_attempt_at (its lease: a mailer that died mid-send is replaced
    -- then, as if the server's answer were lost); sent; failed: refused by
    -- the mail server, unreadable, or not sent within 24 hours.
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,  -- also the fence of a claim
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CHECK ((state IN ('sent', 'failed')) = (sealed IS NULL)),
    CHECK ((state IN ('sent', 'failed')) = (finished_at IS NOT NULL))
);
-- What the mailers poll: only the rows still to send are in it.
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at)
    WHERE state IN ('pending', 'sending');
CREATE INDEX mail_outbox_finished_idx ON mail_outbox (finished_at)
    WHERE state IN ('sent', 'failed');
CREATE INDEX mail_outbox_user_idx ON mail_outbox (user_id);

-- The runtime role queues mail and records deliveries, but never readdresses
-- a queued mail: no UPDATE of who, what or why (0001 granted all columns).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gala_app') THEN
        REVOKE UPDATE ON mail_outbox FROM gala_app;
        GRANT UPDATE (sealed, state, attempts, next_attempt_at, last_error, finished_at)
            ON mail_outbox TO gala_app;
    END IF;
END
$$;
