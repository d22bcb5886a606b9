//! Live chat: the messages of each channel (kept with the live video they were sent during, so its
//! recording replays them) and the users its owner has barred from writing.

use chrono::{DateTime, Utc};

use super::{execute, now, on_pool, Db, DbError};
use crate::ids::new_id;

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ChatMessage {
    pub id: String,
    pub channel_id: String,
    pub video_id: Option<String>,
    pub user_id: String,
    pub username: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

const SELECT: &str =
    "SELECT m.id, m.channel_id, m.video_id, m.user_id, u.username, m.text, m.created_at FROM chat_messages m JOIN users u ON u.id = m.user_id";

/// Stores a message; `video_id` is the channel's live video at the time, if any.
pub async fn insert(db: &Db, channel_id: &str, video_id: Option<&str>, user_id: &str, text: &str) -> Result<ChatMessage, DbError> {
    let sql = "INSERT INTO chat_messages (id, channel_id, video_id, user_id, text, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
    let id = new_id();
    execute!(db, sqlx::query(sql).bind(&id).bind(channel_id).bind(video_id).bind(user_id).bind(text).bind(now()))?;
    find(db, &id).await?.ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))
}

pub async fn find(db: &Db, id: &str) -> Result<Option<ChatMessage>, DbError> {
    let sql = format!("{SELECT} WHERE m.id = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, ChatMessage>(&sql).bind(id).fetch_optional(pool).await)?)
}

/// The channel's last `limit` messages, oldest first: what a new chat client is shown on joining.
pub async fn recent(db: &Db, channel_id: &str, limit: u32) -> Result<Vec<ChatMessage>, DbError> {
    let sql = format!("{SELECT} WHERE m.channel_id = $1 ORDER BY m.id DESC LIMIT $2");
    let mut messages =
        on_pool!(db, |pool| sqlx::query_as::<_, ChatMessage>(&sql).bind(channel_id).bind(i64::from(limit)).fetch_all(pool).await)?;
    messages.reverse();
    Ok(messages)
}

/// Messages sent during a live video, oldest first, after the message `after` (keyset paging).
pub async fn of_video(db: &Db, video_id: &str, after: Option<&str>, limit: u32) -> Result<Vec<ChatMessage>, DbError> {
    let sql = format!("{SELECT} WHERE m.video_id = $1 AND m.id > $2 ORDER BY m.id LIMIT $3");
    let after = after.unwrap_or("");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, ChatMessage>(&sql).bind(video_id).bind(after).bind(i64::from(limit)).fetch_all(pool).await)?)
}

/// Deletes one message of the channel; false when there was none with that id.
pub async fn delete(db: &Db, channel_id: &str, id: &str) -> Result<bool, DbError> {
    let sql = "DELETE FROM chat_messages WHERE id = $1 AND channel_id = $2";
    Ok(execute!(db, sqlx::query(sql).bind(id).bind(channel_id))? > 0)
}

/// Bars `user_id` from writing in the channel's chat (again: no error).
pub async fn ban(db: &Db, channel_id: &str, user_id: &str) -> Result<(), DbError> {
    let sql = "INSERT INTO chat_bans (channel_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT (channel_id, user_id) DO NOTHING";
    execute!(db, sqlx::query(sql).bind(channel_id).bind(user_id).bind(now()))?;
    Ok(())
}

/// Lifts a ban; false when the user was not banned.
pub async fn unban(db: &Db, channel_id: &str, user_id: &str) -> Result<bool, DbError> {
    let sql = "DELETE FROM chat_bans WHERE channel_id = $1 AND user_id = $2";
    Ok(execute!(db, sqlx::query(sql).bind(channel_id).bind(user_id))? > 0)
}

pub async fn is_banned(db: &Db, channel_id: &str, user_id: &str) -> Result<bool, DbError> {
    let sql = "SELECT COUNT(*) FROM chat_bans WHERE channel_id = $1 AND user_id = $2";
    let count: i64 = on_pool!(db, |pool| sqlx::query_scalar(sql).bind(channel_id).bind(user_id).fetch_one(pool).await)?;
    Ok(count > 0)
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ChatBan {
    pub username: String,
    pub created_at: DateTime<Utc>,
}

/// The channel's banned users, most recent first.
pub async fn bans(db: &Db, channel_id: &str) -> Result<Vec<ChatBan>, DbError> {
    let sql = "SELECT u.username, b.created_at FROM chat_bans b JOIN users u ON u.id = b.user_id WHERE b.channel_id = $1 \
               ORDER BY b.created_at DESC";
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, ChatBan>(sql).bind(channel_id).fetch_all(pool).await)?)
}
