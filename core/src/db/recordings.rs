//! The parts of a recording: its renditions and segments, written as the pipeline produces them.
//! With these rows a crashed or remote node can rebuild every playlist of a video.

use super::{execute, on_pool, Db, DbError};

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RenditionRow {
    pub video_id: String,
    pub name: String,
    pub width: i64,
    pub height: i64,
    pub frame_rate_milli: i64,
    pub codecs: String,
    pub video_bitrate_kbps: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SegmentRow {
    pub video_id: String,
    pub rendition: String,
    pub sequence: i64,
    pub uri: String,
    pub duration_us: i64,
    pub bytes: i64,
    pub discontinuity: bool,
    /// RFC 3339 with milliseconds, exactly as written into the playlist.
    pub program_date_time: String,
}

/// Records a rendition; a second call for the same name keeps the first (a reconnect reuses the ladder).
pub async fn add_rendition(db: &Db, r: &RenditionRow) -> Result<(), DbError> {
    let sql = "INSERT INTO renditions (video_id, name, width, height, frame_rate_milli, codecs, video_bitrate_kbps) \
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (video_id, name) DO NOTHING";
    execute!(
        db,
        sqlx::query(sql)
            .bind(&r.video_id)
            .bind(&r.name)
            .bind(r.width)
            .bind(r.height)
            .bind(r.frame_rate_milli)
            .bind(&r.codecs)
            .bind(r.video_bitrate_kbps)
    )?;
    Ok(())
}

pub async fn renditions(db: &Db, video_id: &str) -> Result<Vec<RenditionRow>, DbError> {
    let sql = "SELECT video_id, name, width, height, frame_rate_milli, codecs, video_bitrate_kbps FROM renditions \
               WHERE video_id = $1 ORDER BY height, name";
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, RenditionRow>(sql).bind(video_id).fetch_all(pool).await)?)
}

pub async fn add_segment(db: &Db, s: &SegmentRow) -> Result<(), DbError> {
    let sql = "INSERT INTO segments (video_id, rendition, sequence, uri, duration_us, bytes, discontinuity, program_date_time) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    execute!(
        db,
        sqlx::query(sql)
            .bind(&s.video_id)
            .bind(&s.rendition)
            .bind(s.sequence)
            .bind(&s.uri)
            .bind(s.duration_us)
            .bind(s.bytes)
            .bind(s.discontinuity)
            .bind(&s.program_date_time)
    )?;
    Ok(())
}

/// A rendition's segments in playlist order.
pub async fn segments(db: &Db, video_id: &str, rendition: &str) -> Result<Vec<SegmentRow>, DbError> {
    let sql = "SELECT video_id, rendition, sequence, uri, duration_us, bytes, discontinuity, program_date_time FROM segments \
               WHERE video_id = $1 AND rendition = $2 ORDER BY sequence";
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, SegmentRow>(sql).bind(video_id).bind(rendition).fetch_all(pool).await)?)
}

/// Forgets a video's renditions and segments (before a transcode attempt starts over).
pub async fn clear(db: &Db, video_id: &str) -> Result<(), DbError> {
    execute!(db, sqlx::query("DELETE FROM segments WHERE video_id = $1").bind(video_id))?;
    execute!(db, sqlx::query("DELETE FROM renditions WHERE video_id = $1").bind(video_id))?;
    Ok(())
}
