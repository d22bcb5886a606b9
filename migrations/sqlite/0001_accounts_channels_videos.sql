-- Accounts, sessions, channels and videos. Kept column-for-column equal to
-- migrations/postgres/0001_accounts_channels_videos.sql (a test checks it).
-- Unique constraints are named explicitly (the same names on both engines): the repositories map
-- a violation to the request field by name (core/src/db/mod.rs, CONFLICT_FIELDS).
-- Ids are UUIDv7 text; times are UTC RFC 3339 text here and TIMESTAMPTZ on Postgres.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    -- Stored lowercase, so plain uniqueness is case-insensitive uniqueness.
    CONSTRAINT users_username_lowercase CHECK (username = lower(username)),
    CONSTRAINT users_email_lowercase CHECK (email = lower(email)),
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_email_key UNIQUE (email)
);

-- One row per refresh token ever issued; a family is one login session and its rotations.
CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    revoked_at  TEXT,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

CREATE TABLE channels (
    id              TEXT PRIMARY KEY NOT NULL,
    owner_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    slug            TEXT NOT NULL,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL,
    stream_key_hash TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    CONSTRAINT channels_slug_key UNIQUE (slug),
    CONSTRAINT channels_stream_key_hash_key UNIQUE (stream_key_hash)
);
CREATE INDEX channels_owner_idx ON channels (owner_id);

CREATE TABLE videos (
    id          TEXT PRIMARY KEY NOT NULL,
    channel_id  TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('live', 'upload')),
    status      TEXT NOT NULL CHECK (status IN ('live', 'processing', 'ready', 'failed')),
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    visibility  TEXT NOT NULL CHECK (visibility IN ('public', 'unlisted', 'private')),
    duration_ms BIGINT,
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    ended_at    TEXT
);
CREATE INDEX videos_channel_idx ON videos (channel_id, id);
CREATE INDEX videos_listing_idx ON videos (visibility, status, id);
