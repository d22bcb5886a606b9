-- What a recording is made of: its renditions and every segment written for them, so playlists can
-- be rebuilt after a crash and by other nodes. Kept equal to migrations/postgres/0002_recordings.sql.

CREATE TABLE renditions (
    video_id           TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    width              BIGINT NOT NULL,
    height             BIGINT NOT NULL,
    frame_rate_milli   BIGINT NOT NULL,
    codecs             TEXT NOT NULL,
    video_bitrate_kbps BIGINT NOT NULL,
    PRIMARY KEY (video_id, name)
);

CREATE TABLE segments (
    video_id          TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    rendition         TEXT NOT NULL,
    sequence          BIGINT NOT NULL,
    uri               TEXT NOT NULL,
    duration_us       BIGINT NOT NULL,
    bytes             BIGINT NOT NULL,
    discontinuity     BOOLEAN NOT NULL,
    program_date_time TEXT NOT NULL,
    PRIMARY KEY (video_id, rendition, sequence)
);
