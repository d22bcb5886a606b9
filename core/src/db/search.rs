//! Search: the public videos (live or ready) whose title, description or channel (title or slug)
//! match a query, best first, tolerant of typos. The same query gives the same videos in the same
//! order on SQLite and on Postgres.
//!
//! Two steps. The database selects candidates: the watchable videos whose text contains at least one
//! of the query's three-letter sequences ([`SearchQuery::trigrams`]), case-insensitively, most
//! sequences first, then newest, at most [`MAX_CANDIDATES`]. SQLite answers this from an FTS5
//! trigram table, Postgres from pg_trgm GIN indexes (`ILIKE '%abc%'`); both are the same substring
//! test, so both engines select the same rows in the same order. Then [`rank`] scores the candidates
//! in Rust (exact, prefix, typo; title over channel over description) and keeps the best. A query
//! without any word of three characters (`tv`, `f1`) has no sequences to look up: its candidates
//! are the newest [`MAX_CANDIDATES`] watchable videos.
//!
//! User input reaches SQL only as bound values, and only after [`SearchQuery`] reduced it to letters
//! and digits; FTS5 phrases are quoted and LIKE patterns escaped all the same. Never build the
//! candidate SQL from anything but the number of sequences.

pub mod rank;

pub use rank::{Document, QueryError, SearchQuery, MAX_QUERY_CHARS};

use super::videos::{self, Video, COLUMNS};
use super::{Db, DbError};

/// The most candidates one query fetches from the database and ranks. Bounds the work of a query
/// that shares a common sequence (`ing`) with most of the catalogue; the ones with the most of the
/// query's sequences are kept.
pub const MAX_CANDIDATES: u32 = 300;

/// What `videos::list_public` lists: public, and live or ready.
const WATCHABLE: &str = "v.visibility = 'public' AND v.status IN ('live', 'ready')";

/// The searched text of a video and of its channel on Postgres. These must be the expressions of the
/// GIN indexes in migrations/postgres/0003_search.sql, or the planner cannot use them.
const PG_VIDEO_TEXT: &str = "(v.title || ' ' || v.description)";
const PG_CHANNEL_TEXT: &str = "(c.title || ' ' || c.slug)";

/// The best `limit` public, watchable videos for `query`, best first (ties: newest first).
pub async fn search_public(db: &Db, query: &SearchQuery, limit: u32) -> Result<Vec<Video>, DbError> {
    if query.is_empty() {
        return Ok(Vec::new());
    }
    let grams = query.trigrams();
    let candidates = if grams.is_empty() {
        videos::list_public(db, MAX_CANDIDATES, None).await?
    } else {
        match db {
            Db::Sqlite(pool) => {
                let sql = sqlite_candidates_sql(grams.len());
                let any = grams.iter().map(|g| fts5_phrase(g)).collect::<Vec<_>>().join(" OR ");
                let mut select = sqlx::query_as::<_, Video>(&sql).bind(any);
                for gram in &grams {
                    select = select.bind(fts5_phrase(gram));
                }
                select.bind(i64::from(MAX_CANDIDATES)).fetch_all(pool).await?
            }
            Db::Postgres(pool) => {
                let sql = postgres_candidates_sql(grams.len());
                let mut select = sqlx::query_as::<_, Video>(&sql);
                for gram in &grams {
                    select = select.bind(contains_pattern(gram));
                }
                select.bind(i64::from(MAX_CANDIDATES)).fetch_all(pool).await?
            }
        }
    };
    Ok(rank::rank(query, candidates, document, limit as usize))
}

fn document(video: &Video) -> Document<'_> {
    Document {
        id: &video.id,
        title: &video.title,
        channel_title: &video.channel_title,
        channel_slug: &video.channel_slug,
        description: &video.description,
    }
}

/// `$1` is every sequence OR-ed (which rows are candidates), `$2…$n+1` one sequence each (how many
/// of them a row contains: an uncorrelated `IN` is evaluated once, from the index), `$n+2` the cap.
fn sqlite_candidates_sql(grams: usize) -> String {
    let hits = (0..grams)
        .map(|k| format!("(s.rowid IN (SELECT rowid FROM video_search WHERE video_search MATCH ${}))", k + 2))
        .collect::<Vec<_>>()
        .join(" + ");
    format!(
        "SELECT {COLUMNS} FROM \
           (SELECT s.rowid AS search_rowid, {hits} AS hits FROM video_search s WHERE s.video_search MATCH $1) m \
         JOIN video_search_keys k ON k.id = m.search_rowid \
         JOIN videos v ON v.id = k.video_id JOIN channels c ON c.id = v.channel_id \
         WHERE {WATCHABLE} ORDER BY m.hits DESC, v.id DESC LIMIT ${}",
        grams + 2
    )
}

/// `$1…$n` one `%sequence%` pattern each, `$n+1` the cap. Videos and channels are matched in two
/// branches so each can use its own index.
fn postgres_candidates_sql(grams: usize) -> String {
    let any = |text: &str| (1..=grams).map(|k| format!("{text} ILIKE ${k}")).collect::<Vec<_>>().join(" OR ");
    let hits = (1..=grams)
        .map(|k| format!("(CASE WHEN {PG_VIDEO_TEXT} ILIKE ${k} OR {PG_CHANNEL_TEXT} ILIKE ${k} THEN 1 ELSE 0 END)"))
        .collect::<Vec<_>>()
        .join(" + ");
    format!(
        "WITH matched AS ( \
           SELECT v.id FROM videos v WHERE {} \
           UNION \
           SELECT v.id FROM channels c JOIN videos v ON v.channel_id = c.id WHERE {} \
         ) \
         SELECT {COLUMNS} FROM matched m JOIN videos v ON v.id = m.id JOIN channels c ON c.id = v.channel_id \
         WHERE {WATCHABLE} ORDER BY {hits} DESC, v.id DESC LIMIT ${}",
        any(PG_VIDEO_TEXT),
        any(PG_CHANNEL_TEXT),
        grams + 1
    )
}

/// An FTS5 phrase matching `text` literally: in double quotes, inner quotes doubled. Without the
/// quotes a sequence like `and`, `not` or `near` would be read as an operator.
fn fts5_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// A LIKE pattern matching any text that contains `text` (backslash is Postgres' default escape).
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted_and_escaped() {
        assert_eq!(fts5_phrase("and"), "\"and\"");
        assert_eq!(fts5_phrase("a\"b"), "\"a\"\"b\"");
        assert_eq!(contains_pattern("kee"), "%kee%");
        assert_eq!(contains_pattern("5%_\\"), "%5\\%\\_\\\\%");
    }

    #[test]
    fn candidate_sql_numbers_its_parameters() {
        let sqlite = sqlite_candidates_sql(3);
        assert!(sqlite.contains("MATCH $1)") && sqlite.contains("MATCH $4))") && sqlite.ends_with("LIMIT $5"), "{sqlite}");
        let postgres = postgres_candidates_sql(3);
        assert!(postgres.contains("ILIKE $3") && !postgres.contains("$4 ") && postgres.ends_with("LIMIT $4"), "{postgres}");
    }
}
