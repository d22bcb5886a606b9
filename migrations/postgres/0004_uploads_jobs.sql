-- Resumable uploads and the durable job queue that turns them into videos.
-- Kept equal to migrations/sqlite/0004_uploads_jobs.sql (a test checks it).

CREATE TABLE uploads (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id  TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    filename    TEXT NOT NULL,
    size        BIGINT NOT NULL,
    part_size   BIGINT NOT NULL,
    part_count  BIGINT NOT NULL,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    visibility  TEXT NOT NULL CHECK (visibility IN ('public', 'unlisted', 'private')),
    status      TEXT NOT NULL CHECK (status IN ('open', 'completed', 'aborted')),
    video_id    TEXT REFERENCES videos (id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX uploads_user_status_idx ON uploads (user_id, status);
CREATE INDEX uploads_expiry_idx ON uploads (status, expires_at);

CREATE TABLE upload_parts (
    upload_id   TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    part_number BIGINT NOT NULL,
    size        BIGINT NOT NULL,
    sha256      TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

-- One row per unit of background work. A worker claims a job by taking a lease; a job whose lease
-- expired (its worker died) is claimed again. Deleting the video deletes its job, which the worker
-- notices at its next lease renewal.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY NOT NULL,
    kind             TEXT NOT NULL,
    video_id         TEXT REFERENCES videos (id) ON DELETE CASCADE,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts         BIGINT NOT NULL,
    max_attempts     BIGINT NOT NULL,
    run_after        TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    progress         DOUBLE PRECISION NOT NULL,
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX jobs_claim_idx ON jobs (status, run_after);
CREATE INDEX jobs_video_idx ON jobs (video_id);
