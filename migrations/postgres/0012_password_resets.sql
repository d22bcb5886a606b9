-- Password reset links sent by e-mail: the SHA-256 of each link's secret, its account, and until
-- when it works. A link works once.
-- Kept equal to migrations/sqlite/0012_password_resets.sql (a test checks it).

CREATE TABLE password_resets (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id, created_at);
