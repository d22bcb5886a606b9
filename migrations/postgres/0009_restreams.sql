-- Simulcast: where a channel's live stream is also pushed (YouTube, Twitch, another server).
-- Kept equal to migrations/sqlite/0009_restreams.sql (a test checks it).

CREATE TABLE restreams (
    id            TEXT PRIMARY KEY NOT NULL,
    channel_id    TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    -- The target's rtmp(s) URL, which holds the remote stream key: sealed (ChaCha20-Poly1305) with a
    -- key derived from the server secret, never shown again.
    url_sealed    TEXT NOT NULL,
    -- The URL with its stream key masked, as the owner sees it.
    url_hint      TEXT NOT NULL,
    enabled       BOOLEAN NOT NULL,
    -- What the node pushing it last reported: idle, connecting, live or retrying.
    state         TEXT NOT NULL CHECK (state IN ('idle', 'connecting', 'live', 'retrying')),
    last_error    TEXT,
    bitrate_kbps  BIGINT,
    state_at      TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX restreams_channel_idx ON restreams (channel_id, id);
