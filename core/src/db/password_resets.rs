//! Password reset links: stored as hashes of their secret, each usable once before it expires.

use chrono::{DateTime, Utc};

use super::{execute, now, on_pool, Db, DbError};

pub async fn insert(db: &Db, token_hash: &str, user_id: &str, expires_at: DateTime<Utc>) -> Result<(), DbError> {
    let sql = "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
    execute!(db, sqlx::query(sql).bind(token_hash).bind(user_id).bind(now()).bind(expires_at))?;
    Ok(())
}

/// Links sent to the account since `since` (for the per-account limit).
pub async fn sent_since(db: &Db, user_id: &str, since: DateTime<Utc>) -> Result<i64, DbError> {
    let sql = "SELECT COUNT(*) FROM password_resets WHERE user_id = $1 AND created_at > $2";
    Ok(on_pool!(db, |pool| sqlx::query_scalar(sql).bind(user_id).bind(since).fetch_one(pool).await)?)
}

/// Uses the link: the account it resets, if it exists, is unused and has not expired. Of two
/// racing uses exactly one gets the account. (Setting the new password cancels the account's
/// other links: [`cancel_for_user`].)
pub async fn redeem(db: &Db, token_hash: &str) -> Result<Option<String>, DbError> {
    let now = now();
    let sql = "UPDATE password_resets SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2";
    if execute!(db, sqlx::query(sql).bind(token_hash).bind(now))? == 0 {
        return Ok(None);
    }
    let sql = "SELECT user_id FROM password_resets WHERE token_hash = $1";
    let user_id: String = on_pool!(db, |pool| sqlx::query_scalar(sql).bind(token_hash).fetch_one(pool).await)?;
    Ok(Some(user_id))
}

/// Stops every unused link of the account (its e-mail or password changed: a link in the old
/// mailbox must not undo that).
pub async fn cancel_for_user(db: &Db, user_id: &str) -> Result<(), DbError> {
    let sql = "UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL";
    execute!(db, sqlx::query(sql).bind(user_id).bind(now()))?;
    Ok(())
}

/// Forgets links that expired before `before`.
pub async fn delete_expired(db: &Db, before: DateTime<Utc>) -> Result<u64, DbError> {
    Ok(execute!(db, sqlx::query("DELETE FROM password_resets WHERE expires_at < $1").bind(before))?)
}
