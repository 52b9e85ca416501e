-- Wrong verification codes are counted per account over an hour as well
-- as per code: a resend used to start the count again, so five tries a
-- minute could go on all day. A resend replaces the code and its five
-- tries; the window's count stays.
ALTER TABLE email_otps
    ADD COLUMN window_started_at timestamptz,
    ADD COLUMN window_failures   integer NOT NULL DEFAULT 0 CHECK (window_failures >= 0);
