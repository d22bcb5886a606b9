//! Channels: what a streamer publishes to. Each has one stream key, stored as its hash
//! (see [`crate::stream_key`]); the plain key is never read back from here, only its sealed copy
//! for the owner to reveal.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::videos::Visibility;
use super::{execute, now, on_pool, Db, DbError};
use crate::ids::new_id;
use crate::stream_key;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Channel {
    pub id: String,
    pub owner_id: String,
    pub owner_username: String,
    pub slug: String,
    pub title: String,
    pub description: String,
    /// The visibility a new live video of this channel starts with.
    #[sqlx(try_from = "String")]
    pub default_visibility: Visibility,
    /// What the next live video is called and says (empty: the channel's own title and
    /// description). The live video takes them when it starts.
    pub stream_title: String,
    pub stream_description: String,
    /// The video being streamed right now, if any, whatever its visibility: for the owner and for
    /// the live path only.
    pub live_video_id: Option<String>,
    /// The video being streamed right now if it is public: what anyone else may be told.
    pub public_live_video_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Channel {
    /// The title the channel's next live video takes.
    pub fn broadcast_title(&self) -> &str {
        if self.stream_title.is_empty() {
            &self.title
        } else {
            &self.stream_title
        }
    }

    /// The description the channel's next live video takes.
    pub fn broadcast_description(&self) -> &str {
        if self.stream_description.is_empty() {
            &self.description
        } else {
            &self.stream_description
        }
    }
}

/// Every read goes through this select so a channel always comes with its owner's name and live video.
const SELECT: &str = "SELECT c.id, c.owner_id, u.username AS owner_username, c.slug, c.title, c.description, c.default_visibility, c.stream_title, c.stream_description, \
    (SELECT v.id FROM videos v WHERE v.channel_id = c.id AND v.status = 'live' ORDER BY v.id DESC LIMIT 1) AS live_video_id, \
    (SELECT v.id FROM videos v WHERE v.channel_id = c.id AND v.status = 'live' AND v.visibility = 'public' \
     ORDER BY v.id DESC LIMIT 1) AS public_live_video_id, \
    c.created_at, c.updated_at \
    FROM channels c JOIN users u ON u.id = c.owner_id";

/// Creates a channel with the given key hash; a taken slug is [`DbError::Conflict`].
pub async fn create(
    db: &Db,
    owner_id: &str,
    slug: &str,
    title: &str,
    description: &str,
    stream_key_hash: &str,
) -> Result<Channel, DbError> {
    let sql = "INSERT INTO channels (id, owner_id, slug, title, description, stream_key_hash, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $7)";
    let id = new_id();
    execute!(db, sqlx::query(sql).bind(&id).bind(owner_id).bind(slug).bind(title).bind(description).bind(stream_key_hash).bind(now()))?;
    find_by_id(db, &id).await?.ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))
}

pub async fn find_by_id(db: &Db, id: &str) -> Result<Option<Channel>, DbError> {
    let sql = format!("{SELECT} WHERE c.id = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Channel>(&sql).bind(id).fetch_optional(pool).await)?)
}

pub async fn find_by_slug(db: &Db, slug: &str) -> Result<Option<Channel>, DbError> {
    let sql = format!("{SELECT} WHERE c.slug = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Channel>(&sql).bind(slug).fetch_optional(pool).await)?)
}

/// The channel a presented stream key opens, or `None` for "no such key": one equality lookup on
/// the unique index over the key's hash. Called by the RTMP listener on every publish.
pub async fn find_by_stream_key(db: &Db, presented_key: &str) -> Result<Option<Channel>, DbError> {
    let sql = format!("{SELECT} WHERE c.stream_key_hash = $1");
    let hash = stream_key::hash(presented_key);
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Channel>(&sql).bind(&hash).fetch_optional(pool).await)?)
}

/// A user's channels, oldest first.
pub async fn list_by_owner(db: &Db, owner_id: &str) -> Result<Vec<Channel>, DbError> {
    let sql = format!("{SELECT} WHERE c.owner_id = $1 ORDER BY c.id");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Channel>(&sql).bind(owner_id).fetch_all(pool).await)?)
}

/// What the owner may change of a channel; `None` leaves a field as it is.
#[derive(Default)]
pub struct ChannelChanges<'a> {
    pub title: Option<&'a str>,
    pub description: Option<&'a str>,
    pub default_visibility: Option<Visibility>,
    pub stream_title: Option<&'a str>,
    pub stream_description: Option<&'a str>,
}

pub async fn update(db: &Db, id: &str, changes: ChannelChanges<'_>) -> Result<Option<Channel>, DbError> {
    let sql = "UPDATE channels SET title = COALESCE($2, title), description = COALESCE($3, description), \
               default_visibility = COALESCE($4, default_visibility), stream_title = COALESCE($5, stream_title), \
               stream_description = COALESCE($6, stream_description), updated_at = $7 WHERE id = $1";
    let visibility = changes.default_visibility.map(Visibility::as_str);
    execute!(
        db,
        sqlx::query(sql)
            .bind(id)
            .bind(changes.title)
            .bind(changes.description)
            .bind(visibility)
            .bind(changes.stream_title)
            .bind(changes.stream_description)
            .bind(now())
    )?;
    find_by_id(db, id).await
}

/// Replaces the key hash: the old key stops opening the channel with this statement's commit.
pub async fn set_stream_key_hash(db: &Db, id: &str, stream_key_hash: &str) -> Result<bool, DbError> {
    let sql = "UPDATE channels SET stream_key_hash = $2, updated_at = $3 WHERE id = $1";
    let rows = execute!(db, sqlx::query(sql).bind(id).bind(stream_key_hash).bind(now()))?;
    Ok(rows == 1)
}

/// Records the sealed copy of the channel's current key (see `crate::sealed`), which its owner may
/// reveal; publishing never reads it.
pub async fn set_stream_key_sealed(db: &Db, id: &str, sealed: &str) -> Result<(), DbError> {
    execute!(db, sqlx::query("UPDATE channels SET stream_key_sealed = $2 WHERE id = $1").bind(id).bind(sealed))?;
    Ok(())
}

/// The sealed copy of the channel's current key, if one was kept.
pub async fn stream_key_sealed(db: &Db, id: &str) -> Result<Option<String>, DbError> {
    let sql = "SELECT stream_key_sealed FROM channels WHERE id = $1";
    Ok(on_pool!(db, |pool| sqlx::query_scalar::<_, Option<String>>(sql).bind(id).fetch_optional(pool).await)?.flatten())
}

/// A new key for the channel: its hash for publishing and its sealed copy for the owner, together.
pub async fn replace_stream_key(db: &Db, id: &str, stream_key_hash: &str, sealed: &str) -> Result<bool, DbError> {
    let sql = "UPDATE channels SET stream_key_hash = $2, stream_key_sealed = $3, updated_at = $4 WHERE id = $1";
    let rows = execute!(db, sqlx::query(sql).bind(id).bind(stream_key_hash).bind(sealed).bind(now()))?;
    Ok(rows == 1)
}

/// The hash of the channel's current stream key; `None` once the channel is deleted.
pub async fn stream_key_hash(db: &Db, id: &str) -> Result<Option<String>, DbError> {
    let sql = "SELECT stream_key_hash FROM channels WHERE id = $1";
    Ok(on_pool!(db, |pool| sqlx::query_scalar::<_, String>(sql).bind(id).fetch_optional(pool).await)?)
}

/// Deletes a channel and, by cascade, its videos' rows.
pub async fn delete(db: &Db, id: &str) -> Result<bool, DbError> {
    let rows = execute!(db, sqlx::query("DELETE FROM channels WHERE id = $1").bind(id))?;
    Ok(rows == 1)
}
