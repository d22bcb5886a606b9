-- The node ingesting a live video, as other nodes reach its HTTP listener: origin nodes proxy the
-- video's live HLS there. Cleared when the video ends.
-- Kept equal to migrations/sqlite/0006_live_node.sql (a test checks it).

ALTER TABLE videos ADD COLUMN live_node_url TEXT;
