//! Restream targets of a channel (simulcast), and the state the pushing node reports for each.
//! The URL is stored sealed (see `crate::sealed`); only its masked form is ever returned.

use chrono::{DateTime, Utc};

use super::{execute, now, on_pool, text_enum, Db, DbError};
use crate::ids::new_id;

text_enum!(
    /// `idle` while the channel is off air or the target is disabled; `connecting` and `live` while
    /// it is pushed; `retrying` after a failure, until the next attempt.
    RestreamState { Idle => "idle", Connecting => "connecting", Live => "live", Retrying => "retrying" }
);

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Restream {
    pub id: String,
    pub channel_id: String,
    pub url_sealed: String,
    pub url_hint: String,
    pub enabled: bool,
    #[sqlx(try_from = "String")]
    pub state: RestreamState,
    pub last_error: Option<String>,
    pub bitrate_kbps: Option<i64>,
    pub state_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, channel_id, url_sealed, url_hint, enabled, state, last_error, bitrate_kbps, state_at, created_at";

pub async fn create(db: &Db, channel_id: &str, url_sealed: &str, url_hint: &str, enabled: bool) -> Result<Restream, DbError> {
    let id = new_id();
    let sql =
        "INSERT INTO restreams (id, channel_id, url_sealed, url_hint, enabled, state, created_at) VALUES ($1, $2, $3, $4, $5, 'idle', $6)";
    execute!(db, sqlx::query(sql).bind(&id).bind(channel_id).bind(url_sealed).bind(url_hint).bind(enabled).bind(now()))?;
    find(db, &id).await?.ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Restream>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM restreams WHERE id = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Restream>(&sql).bind(id).fetch_optional(pool).await)?)
}

pub async fn list_by_channel(db: &Db, channel_id: &str) -> Result<Vec<Restream>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM restreams WHERE channel_id = $1 ORDER BY id");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, Restream>(&sql).bind(channel_id).fetch_all(pool).await)?)
}

pub async fn set_enabled(db: &Db, id: &str, enabled: bool) -> Result<(), DbError> {
    execute!(db, sqlx::query("UPDATE restreams SET enabled = $1 WHERE id = $2").bind(enabled).bind(id))?;
    Ok(())
}

pub async fn delete(db: &Db, id: &str) -> Result<bool, DbError> {
    Ok(execute!(db, sqlx::query("DELETE FROM restreams WHERE id = $1").bind(id))? == 1)
}

/// What the pushing node reports about one target.
pub async fn report(db: &Db, id: &str, state: RestreamState, last_error: Option<&str>, bitrate_kbps: Option<i64>) -> Result<(), DbError> {
    let sql = "UPDATE restreams SET state = $1, last_error = COALESCE($2, last_error), bitrate_kbps = $3, state_at = $4 WHERE id = $5";
    execute!(db, sqlx::query(sql).bind(state.as_str()).bind(last_error).bind(bitrate_kbps).bind(now()).bind(id))?;
    Ok(())
}

/// What the sealing key of restream URLs is derived for (`crate::sealed::SealingKey::derive`).
pub const SEALING_PURPOSE: &str = "restream target urls";
