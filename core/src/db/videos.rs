//! Videos: live recordings and uploads. The live and upload paths create and advance them; the API
//! lists, shows, edits and deletes them. Listing is keyset-paginated on the time-ordered id.

use chrono::{DateTime, Utc};

use super::{execute, now, on_pool, text_enum, Db, DbError};
use crate::ids::new_id;

#[derive(Debug, thiserror::Error)]
#[error("unknown value {0:?} in the database")]
pub struct UnknownValue(pub String);

text_enum!(
    /// Where a video came from.
    VideoKind { Live => "live", Upload => "upload" }
);
text_enum!(
    /// Where a video is in its life: `live` while streamed, `processing` while transcoded,
    /// then `ready`, or `failed` with an error message.
    VideoStatus { Live => "live", Processing => "processing", Ready => "ready", Failed => "failed" }
);
text_enum!(
    /// Who may watch: everyone (and listed), anyone with the link, or the owner only.
    Visibility { Public => "public", Unlisted => "unlisted", Private => "private" }
);

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Video {
    pub id: String,
    pub channel_id: String,
    pub channel_slug: String,
    pub channel_title: String,
    pub owner_id: String,
    #[sqlx(try_from = "String")]
    pub kind: VideoKind,
    #[sqlx(try_from = "String")]
    pub status: VideoStatus,
    pub title: String,
    pub description: String,
    #[sqlx(try_from = "String")]
    pub visibility: Visibility,
    /// Bumped on every visibility change: playback tokens carry it, so older ones stop working.
    pub playback_generation: i64,
    /// While live: the HTTP URL of the node ingesting it (origin nodes proxy its live HLS there).
    pub live_node_url: Option<String>,
    /// While live: the ingest node's last report ([`crate::live::LiveStats`] as JSON).
    pub live_stats: Option<String>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// The columns [`Video`] decodes, from `videos v JOIN channels c`.
macro_rules! video_columns {
    () => {
        "v.id, v.channel_id, c.slug AS channel_slug, c.title AS channel_title, c.owner_id, \
         v.kind, v.status, v.title, v.description, v.visibility, v.playback_generation, v.live_node_url, v.live_stats, v.duration_ms, v.error, v.created_at, v.updated_at, v.ended_at"
    };
}

/// Shared with search, which selects the same rows through its own joins.
pub(super) const COLUMNS: &str = video_columns!();

const SELECT: &str = concat!("SELECT ", video_columns!(), " FROM videos v JOIN channels c ON c.id = v.channel_id");

pub struct NewVideo<'a> {
    pub channel_id: &'a str,
    pub kind: VideoKind,
    pub status: VideoStatus,
    pub title: &'a str,
    pub description: &'a str,
    pub visibility: Visibility,
}

pub async fn create(db: &Db, new: NewVideo<'_>) -> Result<Video, DbError> {
    let sql = "INSERT INTO videos (id, channel_id, kind, status, title, description, visibility, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";
    let id = new_id();
    execute!(
        db,
        sqlx::query(sql)
            .bind(&id)
            .bind(new.channel_id)
            .bind(new.kind.as_str())
            .bind(new.status.as_str())
            .bind(new.title)
            .bind(new.description)
            .bind(new.visibility.as_str())
            .bind(now())
    )?;
    find(db, &id).await?.ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Video>, DbError> {
    let sql = format!("{SELECT} WHERE v.id = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Video>(&sql).bind(id).fetch_optional(pool).await)?)
}

/// Public videos that can be watched (live or ready), newest first, `limit` at a time, starting
/// after the id `before` (the previous page's last id).
pub async fn list_public(db: &Db, limit: u32, before: Option<&str>) -> Result<Vec<Video>, DbError> {
    list_public_where(db, PublicFilter::default(), limit, before).await
}

/// Narrows [`list_public_where`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PublicFilter<'a> {
    /// Only videos live right now.
    pub live_only: bool,
    /// Only this channel's (by slug).
    pub channel_slug: Option<&'a str>,
}

/// [`list_public`], narrowed by `filter`.
pub async fn list_public_where(db: &Db, filter: PublicFilter<'_>, limit: u32, before: Option<&str>) -> Result<Vec<Video>, DbError> {
    let sql = format!(
        "{SELECT} WHERE v.visibility = 'public' AND v.status IN ('live', 'ready') AND ($1 IS NULL OR v.id < $1) \
         AND (NOT $3 OR v.status = 'live') AND ($4 IS NULL OR c.slug = $4) ORDER BY v.id DESC LIMIT $2"
    );
    let before = before.map(str::to_string);
    let slug = filter.channel_slug.map(str::to_string);
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Video>(&sql)
        .bind(&before)
        .bind(i64::from(limit))
        .bind(filter.live_only)
        .bind(&slug)
        .fetch_all(pool)
        .await)?)
}

/// A channel's videos, newest first. `all` includes unlisted, private, processing and failed ones
/// (for the owner); otherwise only what [`list_public`] would show.
pub async fn list_by_channel(db: &Db, channel_id: &str, all: bool, limit: u32, before: Option<&str>) -> Result<Vec<Video>, DbError> {
    let sql = format!(
        "{SELECT} WHERE v.channel_id = $1 AND ($2 OR (v.visibility = 'public' AND v.status IN ('live', 'ready'))) \
         AND ($3 IS NULL OR v.id < $3) ORDER BY v.id DESC LIMIT $4"
    );
    let before = before.map(str::to_string);
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Video>(&sql)
        .bind(channel_id)
        .bind(all)
        .bind(&before)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?)
}

/// Edits what the owner may edit; `None` leaves a field as it is. A new visibility also bumps the
/// playback generation, revoking every playback token issued before.
pub async fn update(
    db: &Db,
    id: &str,
    title: Option<&str>,
    description: Option<&str>,
    visibility: Option<Visibility>,
) -> Result<Option<Video>, DbError> {
    // The right-hand sides all read the row as it was before this statement.
    let sql = "UPDATE videos SET title = COALESCE($2, title), description = COALESCE($3, description), \
               visibility = COALESCE($4, visibility), \
               playback_generation = CASE WHEN COALESCE($4, visibility) <> visibility THEN playback_generation + 1 ELSE playback_generation END, \
               updated_at = $5 WHERE id = $1";
    let visibility = visibility.map(Visibility::as_str);
    execute!(db, sqlx::query(sql).bind(id).bind(title).bind(description).bind(visibility).bind(now()))?;
    find(db, id).await
}

/// Marks a video finished: `ready` with its duration, or `failed` with a message for the owner.
pub async fn finish(db: &Db, id: &str, status: VideoStatus, duration_ms: Option<i64>, error: Option<&str>) -> Result<(), DbError> {
    let sql = "UPDATE videos SET status = $2, duration_ms = COALESCE($3, duration_ms), error = $4, ended_at = $5, updated_at = $5, \
         live_node_url = NULL, live_owner = NULL, live_lease_until = NULL, live_stats = NULL WHERE id = $1";
    execute!(db, sqlx::query(sql).bind(id).bind(status.as_str()).bind(duration_ms).bind(error).bind(now()))?;
    Ok(())
}

/// Who ingests a live video, as the database knows it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LiveClaim {
    pub video_id: String,
    pub live_owner: Option<String>,
    pub live_lease_until: Option<DateTime<Utc>>,
}

impl LiveClaim {
    /// Whether the owner's lease has run out at `now` (it died, or its publisher left).
    pub fn lapsed(&self, now: DateTime<Utc>) -> bool {
        self.live_lease_until.is_none_or(|until| until <= now)
    }
}

/// Makes `owner` (reached at `node_url`) the ingest of live video `id` until `until`, if it is
/// already, or nobody is, or the current owner's lease has lapsed. False when another owner holds
/// a lease still running: of two nodes taking a video over, one wins.
pub async fn claim_live(db: &Db, id: &str, owner: &str, node_url: &str, until: DateTime<Utc>) -> Result<bool, DbError> {
    let sql = "UPDATE videos SET live_owner = $2, live_node_url = $3, live_lease_until = $4 \
               WHERE id = $1 AND status = 'live' AND (live_owner IS NULL OR live_owner = $2 OR live_lease_until IS NULL OR live_lease_until <= $5)";
    Ok(execute!(db, sqlx::query(sql).bind(id).bind(owner).bind(node_url).bind(until).bind(now()))? == 1)
}

/// Extends `owner`'s lease on live video `id`; false when it is no longer the owner.
pub async fn renew_live(db: &Db, id: &str, owner: &str, until: DateTime<Utc>) -> Result<bool, DbError> {
    let sql = "UPDATE videos SET live_lease_until = $3 WHERE id = $1 AND status = 'live' AND live_owner = $2";
    Ok(execute!(db, sqlx::query(sql).bind(id).bind(owner).bind(until))? == 1)
}

/// Records the owner's report of a live video (JSON of [`crate::live::LiveStats`]).
pub async fn set_live_stats(db: &Db, id: &str, owner: &str, stats: &str) -> Result<(), DbError> {
    let sql = "UPDATE videos SET live_stats = $3 WHERE id = $1 AND status = 'live' AND live_owner = $2";
    execute!(db, sqlx::query(sql).bind(id).bind(owner).bind(stats))?;
    Ok(())
}

impl Video {
    /// The ingest node's last report, while live.
    pub fn live_stats(&self) -> Option<crate::live::LiveStats> {
        self.live_stats.as_deref().and_then(|json| serde_json::from_str(json).ok())
    }
}

/// Lets the lease go at once (the publisher left): another node may take the video over now.
pub async fn release_live(db: &Db, id: &str, owner: &str) -> Result<(), DbError> {
    let sql = "UPDATE videos SET live_lease_until = $3 WHERE id = $1 AND status = 'live' AND live_owner = $2";
    execute!(db, sqlx::query(sql).bind(id).bind(owner).bind(now()))?;
    Ok(())
}

/// The channel's live video and who ingests it, if it has one.
pub async fn live_claim_of_channel(db: &Db, channel_id: &str) -> Result<Option<LiveClaim>, DbError> {
    let sql = "SELECT id AS video_id, live_owner, live_lease_until FROM videos WHERE channel_id = $1 AND status = 'live' ORDER BY id DESC LIMIT 1";
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, LiveClaim>(sql).bind(channel_id).fetch_optional(pool).await)?)
}

/// Live videos whose lease ran out before `before` (or that never had one and are older than
/// that): their owner is gone and nobody took them over in time. Also those last ingested at
/// `node_url`, the address of a process that is gone when this one starts there. Never those of
/// `except_owner` (a node ends its own videos itself).
pub async fn abandoned_live(
    db: &Db,
    before: DateTime<Utc>,
    node_url: Option<&str>,
    except_owner: Option<&str>,
) -> Result<Vec<String>, DbError> {
    let sql = "SELECT id FROM videos WHERE status = 'live' \
               AND (live_lease_until < $1 OR (live_lease_until IS NULL AND created_at < $1) OR live_node_url = $2) \
               AND (live_owner IS NULL OR $3 IS NULL OR live_owner <> $3) ORDER BY id";
    Ok(on_pool!(db, |pool| sqlx::query_scalar::<_, String>(sql).bind(before).bind(node_url).bind(except_owner).fetch_all(pool).await)?)
}

pub async fn delete(db: &Db, id: &str) -> Result<bool, DbError> {
    let rows = execute!(db, sqlx::query("DELETE FROM videos WHERE id = $1").bind(id))?;
    Ok(rows == 1)
}

/// Ids of a channel's videos with whether each is live, for removing their files with the channel.
pub async fn ids_of_channel(db: &Db, channel_id: &str) -> Result<Vec<(String, bool)>, DbError> {
    let sql = "SELECT id, status = 'live' FROM videos WHERE channel_id = $1 ORDER BY id";
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, (String, bool)>(sql).bind(channel_id).fetch_all(pool).await)?)
}

/// Ids of videos still marked `live`; at start-up these are orphans of a crash.
pub async fn live_ids(db: &Db) -> Result<Vec<String>, DbError> {
    let sql = "SELECT id FROM videos WHERE status = 'live' ORDER BY id";
    Ok(on_pool!(db, |pool| sqlx::query_scalar::<_, String>(sql).fetch_all(pool).await)?)
}
