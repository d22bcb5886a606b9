//! Personal access tokens: credentials a user makes for scripts, each limited to scopes, stored
//! only as hashes. Deleting the row revokes the token everywhere at once (every request that
//! presents one looks it up; there is no cache to outlive it).

use chrono::{DateTime, Utc};

use super::{execute, now, on_pool, Db, DbError};
use crate::ids::new_id;

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AccessToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub token_hint: String,
    /// Space-separated scope names.
    pub scopes: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// `last_used_at` is kept to this resolution: the owner sees roughly when a script last ran
/// without every request writing a row.
const LAST_USED_RESOLUTION_SECS: i64 = 60;

impl AccessToken {
    pub fn scope_list(&self) -> Vec<String> {
        self.scopes.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect()
    }

    /// Whether a use now should be recorded ([`touch`]): the row just read says when the last
    /// recorded use was, so most requests need no write at all.
    pub fn use_is_unrecorded(&self, now: DateTime<Utc>) -> bool {
        self.last_used_at.is_none_or(|at| now - at >= chrono::Duration::seconds(LAST_USED_RESOLUTION_SECS))
    }
}

const COLUMNS: &str = "id, user_id, name, token_hint, scopes, created_at, expires_at, last_used_at";

/// What a new token is: its owner, name, scopes and expiry; `token_hash` and `token_hint` come
/// from the token itself, which the caller shows once and forgets.
pub struct NewAccessToken<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub token_hint: &'a str,
    pub scopes: &'a [String],
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn create(db: &Db, token: NewAccessToken<'_>) -> Result<AccessToken, DbError> {
    let id = new_id();
    let sql = "INSERT INTO access_tokens (id, user_id, name, token_hash, token_hint, scopes, created_at, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    execute!(
        db,
        sqlx::query(sql)
            .bind(&id)
            .bind(token.user_id)
            .bind(token.name)
            .bind(token.token_hash)
            .bind(token.token_hint)
            .bind(token.scopes.join(" "))
            .bind(now())
            .bind(token.expires_at)
    )?;
    let sql = format!("SELECT {COLUMNS} FROM access_tokens WHERE id = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, AccessToken>(&sql).bind(&id).fetch_one(pool).await)?)
}

pub async fn list_by_user(db: &Db, user_id: &str) -> Result<Vec<AccessToken>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM access_tokens WHERE user_id = $1 ORDER BY id");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, AccessToken>(&sql).bind(user_id).fetch_all(pool).await)?)
}

/// The unexpired token with this hash, if any.
pub async fn find_valid(db: &Db, token_hash: &str) -> Result<Option<AccessToken>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM access_tokens WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $2)");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, AccessToken>(&sql).bind(token_hash).bind(now()).fetch_optional(pool).await)?)
}

/// Records a use, at most once a minute per token (the condition also settles concurrent requests
/// that all saw a stale `last_used_at`).
pub async fn touch(db: &Db, id: &str) -> Result<(), DbError> {
    let at = now();
    let sql = "UPDATE access_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)";
    execute!(db, sqlx::query(sql).bind(at).bind(id).bind(at - chrono::Duration::seconds(LAST_USED_RESOLUTION_SECS)))?;
    Ok(())
}

/// Deletes `user_id`'s token `id`; false when there is no such token of theirs.
pub async fn delete(db: &Db, user_id: &str, id: &str) -> Result<bool, DbError> {
    Ok(execute!(db, sqlx::query("DELETE FROM access_tokens WHERE id = $1 AND user_id = $2").bind(id).bind(user_id))? == 1)
}
