-- Webhooks a user registers, and the durable queue of their deliveries.
-- Kept equal to migrations/sqlite/0007_webhooks.sql (a test checks it).

CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Only this channel's events; NULL: all of the user's channels.
    channel_id  TEXT REFERENCES channels (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    -- Comma-separated event names.
    events      TEXT NOT NULL,
    -- Signs every delivery (HMAC-SHA256); shown to the owner once.
    secret      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhooks_user_idx ON webhooks (user_id, id);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY NOT NULL,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event            TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         BIGINT NOT NULL,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    last_status_code BIGINT,
    last_error       TEXT,
    last_latency_ms  BIGINT,
    created_at       TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id);
