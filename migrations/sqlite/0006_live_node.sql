-- Who ingests a live video. live_owner is one server process (a random id per start); it renews
-- live_lease_until while its publisher is connected. A lease that lapsed means the owner died or
-- its publisher left: another ingest node may then take the video over (a reconnect within the
-- grace period) or end it. live_node_url is how other nodes reach the owner's HTTP listener:
-- origin nodes pass the video's live HLS requests there. All three are cleared when it ends.
-- Kept equal to migrations/postgres/0006_live_node.sql (a test checks it).

ALTER TABLE videos ADD COLUMN live_node_url TEXT;
ALTER TABLE videos ADD COLUMN live_owner TEXT;
ALTER TABLE videos ADD COLUMN live_lease_until TEXT;
-- The ingest node's last report of the stream (health, viewers, uptime) as JSON, for API nodes.
ALTER TABLE videos ADD COLUMN live_stats TEXT;
