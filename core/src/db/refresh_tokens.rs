//! Refresh tokens, stored only as hashes. A family is one login and all its rotations: each token
//! may be exchanged once; presenting one that was already exchanged means it was copied, so the
//! whole family is revoked.

use chrono::{DateTime, Utc};

use super::{execute, now, on_pool, Db, DbError};
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
    execute!(db, sqlx::query(sql).bind(&id).bind(user_id).bind(family_id).bind(token_hash).bind(now()).bind(expires_at))?;
    Ok(())
}

/// Adds a rotated token to an existing family, unless the family has been revoked meanwhile.
///
/// Reuse detection revokes a family while another request may be rotating it: the revocation can
/// commit between that request's checks and its insert. So the insert comes first and the family
/// is checked after it; if any of its tokens is revoked, the new one is revoked too and this
/// returns `false` (the caller answers 401). A revocation that commits later still sees the new
/// row, and [`family_revoked`] at exchange time catches the last window.
pub async fn insert_rotated(db: &Db, user_id: &str, family_id: &str, token_hash: &str, expires_at: DateTime<Utc>) -> Result<bool, DbError> {
    insert(db, user_id, family_id, token_hash, expires_at).await?;
    if family_revoked(db, family_id).await? {
        revoke_family(db, family_id).await?;
        return Ok(false);
    }
    Ok(true)
}

/// Whether any token of the family has been revoked, or the family is gone (its account was
/// deleted): then the whole login session is over.
pub async fn family_revoked(db: &Db, family_id: &str) -> Result<bool, DbError> {
    let sql = "SELECT COUNT(*), COUNT(revoked_at) FROM refresh_tokens WHERE family_id = $1";
    let (tokens, revoked): (i64, i64) = on_pool!(db, |pool| sqlx::query_as(sql).bind(family_id).fetch_one(pool).await)?;
    Ok(tokens == 0 || revoked > 0)
}

pub async fn find_by_hash(db: &Db, token_hash: &str) -> Result<Option<RefreshToken>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM refresh_tokens WHERE token_hash = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, RefreshToken>(&sql).bind(token_hash).fetch_optional(pool).await)?)
}

/// Marks a token exchanged. Returns false when it was already used or revoked: of two racing
/// exchanges of the same token, exactly one wins.
pub async fn mark_used(db: &Db, id: &str) -> Result<bool, DbError> {
    let sql = "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL";
    let result = execute!(db, sqlx::query(sql).bind(id).bind(now()))?;
    Ok(result == 1)
}

/// Revokes every token of a login session.
pub async fn revoke_family(db: &Db, family_id: &str) -> Result<(), DbError> {
    let sql = "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL";
    execute!(db, sqlx::query(sql).bind(family_id).bind(now()))?;
    Ok(())
}

/// Revokes every login session of `user_id` but `keep_family` (the one changing the password);
/// returns the families revoked, so the node can refuse their access tokens at once.
pub async fn revoke_other_families(db: &Db, user_id: &str, keep_family: Option<&str>) -> Result<Vec<String>, DbError> {
    let sql = "SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL";
    let families: Vec<String> = on_pool!(db, |pool| sqlx::query_scalar(sql).bind(user_id).fetch_all(pool).await)?;
    let revoked: Vec<String> = families.into_iter().filter(|f| Some(f.as_str()) != keep_family).collect();
    for family in &revoked {
        revoke_family(db, family).await?;
    }
    Ok(revoked)
}
