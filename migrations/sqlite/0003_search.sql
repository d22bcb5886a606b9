-- Search over videos (core/src/db/search.rs). The two engines index differently; what they share is the
-- question the index answers: which videos contain a given three-letter sequence (case-insensitively)
-- in their title, description, or channel title or slug. Ranking then happens in Rust, the same way on
-- both engines. Postgres answers it with pg_trgm GIN indexes on the tables themselves
-- (migrations/postgres/0003_search.sql); SQLite answers it with an FTS5 trigram index, kept here.
--
-- Nothing in this file is mirrored on Postgres, so core/tests/schema_parity.rs leaves these tables
-- (and the shadow tables FTS5 creates for video_search) out by name.

-- The FTS5 rowid of each video. videos has a text key, and the implicit rowid of such a table may be
-- renumbered by VACUUM; an INTEGER PRIMARY KEY here is stable. The triggers below keep it in step
-- with videos (no foreign key: deleting the key row is the delete trigger's job, in the right order).
CREATE TABLE video_search_keys (
    id       INTEGER PRIMARY KEY,
    video_id TEXT NOT NULL,
    CONSTRAINT video_search_keys_video_id_key UNIQUE (video_id)
);

-- One row per video: its title, its channel's title and slug, its description. The trigram tokenizer
-- folds case (Unicode-aware) and indexes every three-character sequence, which is what typo-tolerant
-- candidate selection needs. Queries are single trigrams, so positions are not stored
-- (detail = none), nor column sizes (no bm25 ranking here: ranking is done in Rust).
CREATE VIRTUAL TABLE video_search USING fts5(title, channel, description, tokenize = 'trigram', detail = none, columnsize = 0);

CREATE TRIGGER videos_search_insert AFTER INSERT ON videos BEGIN
    INSERT INTO video_search_keys (video_id) VALUES (new.id);
    INSERT INTO video_search (rowid, title, channel, description)
        SELECT k.id, new.title, c.title || ' ' || c.slug, new.description
        FROM video_search_keys k JOIN channels c ON c.id = new.channel_id
        WHERE k.video_id = new.id;
END;

CREATE TRIGGER videos_search_update AFTER UPDATE OF title, description, channel_id ON videos BEGIN
    UPDATE video_search
        SET title = new.title,
            channel = (SELECT c.title || ' ' || c.slug FROM channels c WHERE c.id = new.channel_id),
            description = new.description
        WHERE rowid = (SELECT id FROM video_search_keys WHERE video_id = new.id);
END;

-- Also runs for videos deleted by the ON DELETE CASCADE of their channel.
CREATE TRIGGER videos_search_delete AFTER DELETE ON videos BEGIN
    DELETE FROM video_search WHERE rowid = (SELECT id FROM video_search_keys WHERE video_id = old.id);
    DELETE FROM video_search_keys WHERE video_id = old.id;
END;

CREATE TRIGGER channels_search_update AFTER UPDATE OF title, slug ON channels BEGIN
    UPDATE video_search
        SET channel = new.title || ' ' || new.slug
        WHERE rowid IN (SELECT k.id FROM videos v JOIN video_search_keys k ON k.video_id = v.id WHERE v.channel_id = new.id);
END;

-- Videos that exist before this migration.
INSERT INTO video_search_keys (video_id) SELECT id FROM videos ORDER BY id;
INSERT INTO video_search (rowid, title, channel, description)
    SELECT k.id, v.title, c.title || ' ' || c.slug, v.description
    FROM video_search_keys k JOIN videos v ON v.id = k.video_id JOIN channels c ON c.id = v.channel_id;
