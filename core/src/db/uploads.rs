//! Resumable uploads: an upload row with its declared size and part layout, and one row per part
//! received (with its SHA-256). The bytes themselves live on local disk until the transcode job
//! assembles them (see `upload_parts`).

use chrono::{DateTime, Utc};

use super::videos::Visibility;
use super::{execute, now, on_pool, text_enum, Db, DbError};
use crate::ids::new_id;

text_enum!(
    /// An upload is `open` until it is completed into a video or aborted.
    UploadStatus { Open => "open", Completed => "completed", Aborted => "aborted" }
);

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Upload {
    pub id: String,
    pub user_id: String,
    pub channel_id: String,
    pub filename: String,
    pub size: i64,
    pub part_size: i64,
    pub part_count: i64,
    pub title: String,
    pub description: String,
    #[sqlx(try_from = "String")]
    pub visibility: Visibility,
    #[sqlx(try_from = "String")]
    pub status: UploadStatus,
    pub video_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Upload {
    /// The exact length part `n` (1-based) must have: every part is `part_size` but the last.
    pub fn expected_part_len(&self, n: i64) -> Option<i64> {
        if n < 1 || n > self.part_count {
            return None;
        }
        if n < self.part_count {
            Some(self.part_size)
        } else {
            Some(self.size - self.part_size * (self.part_count - 1))
        }
    }
}

pub struct NewUpload<'a> {
    pub user_id: &'a str,
    pub channel_id: &'a str,
    pub filename: &'a str,
    pub size: i64,
    pub part_size: i64,
    pub title: &'a str,
    pub description: &'a str,
    pub visibility: Visibility,
    pub expires_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, user_id, channel_id, filename, size, part_size, part_count, title, description, visibility, status, video_id, created_at, expires_at";

pub async fn create(db: &Db, new: NewUpload<'_>) -> Result<Upload, DbError> {
    let id = new_id();
    let part_count = (new.size + new.part_size - 1) / new.part_size;
    let sql = "INSERT INTO uploads (id, user_id, channel_id, filename, size, part_size, part_count, title, description, visibility, status, created_at, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11, $12)";
    execute!(
        db,
        sqlx::query(sql)
            .bind(&id)
            .bind(new.user_id)
            .bind(new.channel_id)
            .bind(new.filename)
            .bind(new.size)
            .bind(new.part_size)
            .bind(part_count)
            .bind(new.title)
            .bind(new.description)
            .bind(new.visibility.as_str())
            .bind(now())
            .bind(new.expires_at)
    )?;
    find(db, &id).await?.ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Upload>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM uploads WHERE id = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Upload>(&sql).bind(id).fetch_optional(pool).await)?)
}

/// Open uploads of a user (the in-flight limit counts these).
pub async fn count_open(db: &Db, user_id: &str) -> Result<i64, DbError> {
    let sql = "SELECT COUNT(*) FROM uploads WHERE user_id = $1 AND status = 'open'";
    Ok(on_pool!(db, |pool| sqlx::query_scalar::<_, i64>(sql).bind(user_id).fetch_one(pool).await)?)
}

/// Records part `n` (replacing an earlier copy of it: re-sending a part is safe).
pub async fn put_part(db: &Db, upload_id: &str, n: i64, size: i64, sha256: &str) -> Result<(), DbError> {
    let sql = "INSERT INTO upload_parts (upload_id, part_number, size, sha256, received_at) VALUES ($1, $2, $3, $4, $5) \
               ON CONFLICT (upload_id, part_number) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256, received_at = excluded.received_at";
    execute!(db, sqlx::query(sql).bind(upload_id).bind(n).bind(size).bind(sha256).bind(now()))?;
    Ok(())
}

/// Part numbers received so far, ascending.
pub async fn parts(db: &Db, upload_id: &str) -> Result<Vec<i64>, DbError> {
    let sql = "SELECT part_number FROM upload_parts WHERE upload_id = $1 ORDER BY part_number";
    Ok(on_pool!(db, |pool| sqlx::query_scalar::<_, i64>(sql).bind(upload_id).fetch_all(pool).await)?)
}

/// Moves an open upload to `completed` (with its video) or `aborted`. Returns false when it was no
/// longer open: of two racing completions, one wins.
pub async fn close(db: &Db, id: &str, status: UploadStatus, video_id: Option<&str>) -> Result<bool, DbError> {
    let sql = "UPDATE uploads SET status = $2, video_id = $3 WHERE id = $1 AND status = 'open'";
    Ok(execute!(db, sqlx::query(sql).bind(id).bind(status.as_str()).bind(video_id))? == 1)
}

/// Records the video a completed upload became.
pub async fn attach_video(db: &Db, id: &str, video_id: &str) -> Result<bool, DbError> {
    let sql = "UPDATE uploads SET video_id = $2 WHERE id = $1 AND status = 'completed'";
    Ok(execute!(db, sqlx::query(sql).bind(id).bind(video_id))? == 1)
}

/// Opens a completed upload again (its completion failed half-way), so the owner can retry.
pub async fn reopen(db: &Db, id: &str) -> Result<bool, DbError> {
    let sql = "UPDATE uploads SET status = 'open', video_id = NULL WHERE id = $1 AND status = 'completed'";
    Ok(execute!(db, sqlx::query(sql).bind(id))? == 1)
}

/// Ids of a channel's uploads (whatever their status), for removing their parts with the channel.
pub async fn ids_of_channel(db: &Db, channel_id: &str) -> Result<Vec<String>, DbError> {
    let sql = "SELECT id FROM uploads WHERE channel_id = $1 ORDER BY id";
    Ok(on_pool!(db, |pool| sqlx::query_scalar::<_, String>(sql).bind(channel_id).fetch_all(pool).await)?)
}

/// Open uploads whose expiry has passed.
pub async fn expired(db: &Db, at: DateTime<Utc>) -> Result<Vec<String>, DbError> {
    let sql = "SELECT id FROM uploads WHERE status = 'open' AND expires_at < $1 ORDER BY id";
    Ok(on_pool!(db, |pool| sqlx::query_scalar::<_, String>(sql).bind(at).fetch_all(pool).await)?)
}
