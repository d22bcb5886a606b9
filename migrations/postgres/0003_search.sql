-- Search over videos (core/src/db/search.rs). The two engines index differently; what they share is the
-- question the index answers: which videos contain a given three-letter sequence (case-insensitively)
-- in their title, description, or channel title or slug. Ranking then happens in Rust, the same way on
-- both engines. SQLite answers it with an FTS5 trigram table kept in step by triggers
-- (migrations/sqlite/0003_search.sql); Postgres answers `expr ILIKE '%abc%'` from pg_trgm GIN indexes
-- on the tables themselves, so there is nothing to keep in step here.
--
-- pg_trgm is a trusted extension (Postgres 13 and later): a role that owns the database, or has
-- CREATE on it, may install it without being superuser. If the application's role may not, a
-- superuser runs `CREATE EXTENSION pg_trgm;` in the database once, before the first start.
--
-- These indexes exist only on Postgres, so core/tests/schema_parity.rs leaves them out by name.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The expressions must stay exactly as written in core/src/db/search.rs, or the planner will not use them.
CREATE INDEX videos_search_trgm_idx ON videos USING gin ((title || ' ' || description) gin_trgm_ops);
CREATE INDEX channels_search_trgm_idx ON channels USING gin ((title || ' ' || slug) gin_trgm_ops);
