-- Shared state of the request pipeline: the rate limiter's buckets and the
-- idempotency keys. Every worker of every host reads and writes these rows,
-- so all of them share one count and one record of each key.

-- One GCRA bucket per key ("auth:ip:203.0.113.7", "auth-email:<sha256>",
-- "write:user:<uuid>"). tat is the theoretical arrival time: the bucket is
-- full again once tat is in the past, so such a row carries no information
-- and gala maintenance deletes it. No index besides the key: every check
-- updates tat, and an index on it would stop those updates from being HOT;
-- the purge scans in small batches instead. allowed is the verdict of the
-- last check, returned by the same statement that made it.
-- UNLOGGED: every limited request writes here, and a check that waited for
-- a WAL flush would cost more than the request it guards. The price is that
-- a crash of Postgres (or a failover to a standby) empties the table: every
-- client gets a fresh burst once, which a limiter may afford.
CREATE UNLOGGED TABLE rate_limits (
    key     text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 200),
    tat     timestamptz NOT NULL,
    allowed boolean NOT NULL
) WITH (fillfactor = 70);

-- One row per (scope, key): scope is "user:<uuid>", or "ip:<address>" for
-- anonymous callers. The request's fingerprint (method, path, SHA-256 of the
-- body) decides between a replay and 422 idempotency_key_reused. While
-- response_status is NULL the request is in flight, owned by the attempt
-- holding lock_token since locked_at; a retry takes over a row whose owner
-- is older than the request timeout (its worker was killed). Responses that
-- must not be replayed (server errors, validation refusals) delete the row.
CREATE TABLE idempotency_keys (
    scope                 text NOT NULL CHECK (length(scope) BETWEEN 1 AND 100),
    key                   text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_method        text NOT NULL,
    request_path          text NOT NULL,
    request_body_sha256   text NOT NULL,
    lock_token            text,
    locked_at             timestamptz,
    response_status       integer CHECK (response_status BETWEEN 100 AND 599),
    response_content_type text,
    response_body         bytea,
    -- The headers replayed with the body: Location and Set-Cookie.
    response_headers      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at            timestamptz NOT NULL DEFAULT now(),
    completed_at          timestamptz,
    PRIMARY KEY (scope, key)
);
-- Keys are kept 72 hours; the purge walks this index.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
