-- Credentials are never kept for replay (API.md, Auth). Register, signup,
-- login and reset-password no longer take an Idempotency-Key; the answers
-- stored for them held access tokens and session cookies, and the plain
-- SHA-256 of their bodies (and of verify-email's, holding a 6-digit code)
-- could be guessed back. Those rows go. From now on a body's fingerprint
-- is an HMAC under a key derived from SECRET_KEY; a row kept from before
-- no longer matches its own retry, which is then refused with
-- idempotency_key_reused rather than run twice.
DELETE FROM idempotency_keys
WHERE request_path IN ('/api/auth/register', '/api/auth/signup', '/api/auth/login',
                       '/api/auth/reset-password', '/api/auth/verify-email');
ALTER TABLE idempotency_keys RENAME COLUMN request_body_sha256 TO request_fingerprint;
