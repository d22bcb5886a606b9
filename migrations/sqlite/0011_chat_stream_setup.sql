-- Live chat per channel, and what the channel's next broadcast is called.
-- Kept equal to migrations/postgres/0011_chat_stream_setup.sql (a test checks it).

-- The title and description the next live video takes (empty: the channel's own title and
-- description, as before).
ALTER TABLE channels ADD COLUMN stream_title TEXT NOT NULL DEFAULT '';
ALTER TABLE channels ADD COLUMN stream_description TEXT NOT NULL DEFAULT '';

CREATE TABLE chat_messages (
    id          TEXT PRIMARY KEY NOT NULL,
    channel_id  TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    -- The channel's live video when the message was sent, so its recording replays the chat;
    -- NULL for messages sent while the channel was offline.
    video_id    TEXT REFERENCES videos (id) ON DELETE SET NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX chat_messages_channel_idx ON chat_messages (channel_id, id);
CREATE INDEX chat_messages_video_idx ON chat_messages (video_id, id);

-- Users the channel's owner has barred from writing in its chat.
CREATE TABLE chat_bans (
    channel_id  TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);
