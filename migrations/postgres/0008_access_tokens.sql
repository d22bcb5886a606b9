-- Personal access tokens: long-lived credentials for scripts, each limited to a set of scopes.
-- Kept equal to migrations/sqlite/0008_access_tokens.sql (a test checks it).

CREATE TABLE access_tokens (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- What the owner called it ("CI upload script").
    name          TEXT NOT NULL,
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_hash    TEXT NOT NULL UNIQUE,
    -- The token's first characters, so the owner can tell which one a script holds.
    token_hint    TEXT NOT NULL,
    -- Space-separated scope names.
    scopes        TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    -- NULL: never expires.
    expires_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ
);
CREATE INDEX access_tokens_user_idx ON access_tokens (user_id, id);
