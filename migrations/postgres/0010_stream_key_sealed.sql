-- The current stream key, sealed (ChaCha20-Poly1305 under a key derived from the server secret), so
-- its owner can see it again. Publishing still looks keys up by stream_key_hash only.
-- NULL for keys made before this column existed: the owner replaces the key to see one again.
-- Kept equal to migrations/sqlite/0010_stream_key_sealed.sql (a test checks it).

ALTER TABLE channels ADD COLUMN stream_key_sealed TEXT;
