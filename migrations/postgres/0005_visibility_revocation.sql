-- Turning a video's visibility revokes the playback tokens issued before (they carry the video's
-- playback generation), and a channel chooses the visibility its new live videos start with.
-- Kept equal to migrations/sqlite/0005_visibility_revocation.sql (a test checks it).

ALTER TABLE videos ADD COLUMN playback_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN default_visibility TEXT NOT NULL DEFAULT 'public'
    CHECK (default_visibility IN ('public', 'unlisted', 'private'));
