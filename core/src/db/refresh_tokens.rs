//! Refresh tokens, stored only as hashes. A family is one login and all its rotations: each token
//! may be exchanged once; presenting one that was already exchanged means it was copied, so the
//! whole family is revoked.

use chrono::{DateTime, Utc};

use super::{now, on_pool, Db, DbError};
use crate::ids::new_id;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RefreshToken {
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, user_id, family_id, created_at, expires_at, used_at, revoked_at";

pub async fn insert(db: &Db, user_id: &str, family_id: &str, token_hash: &str, expires_at: DateTime<Utc>) -> Result<(), DbError> {
    let sql = "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $6)";
    let id = new_id();
    on_pool!(db, |pool| sqlx::query(sql)
        .bind(&id)
        .bind(user_id)
        .bind(family_id)
        .bind(token_hash)
        .bind(now())
        .bind(expires_at)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn find_by_hash(db: &Db, token_hash: &str) -> Result<Option<RefreshToken>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM refresh_tokens WHERE token_hash = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, RefreshToken>(&sql).bind(token_hash).fetch_optional(pool).await)?)
}

/// Marks a token exchanged. Returns false when it was already used or revoked: of two racing
/// exchanges of the same token, exactly one wins.
pub async fn mark_used(db: &Db, id: &str) -> Result<bool, DbError> {
    let sql = "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL";
    let result = on_pool!(db, |pool| sqlx::query(sql).bind(id).bind(now()).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(result == 1)
}

/// Revokes every token of a login session.
pub async fn revoke_family(db: &Db, family_id: &str) -> Result<(), DbError> {
    let sql = "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL";
    on_pool!(db, |pool| sqlx::query(sql).bind(family_id).bind(now()).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}
