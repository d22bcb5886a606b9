//! Accounts. Usernames and emails arrive already normalised to lowercase by the API (the schema
//! checks it), so the plain UNIQUE constraints make them unique case-insensitively on both engines.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{execute, now, on_pool, Db, DbError};
use crate::ids::new_id;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user with the password hash, only for checking a login.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserCredentials {
    #[sqlx(flatten)]
    pub user: User,
    pub password_hash: String,
}

const USER_COLUMNS: &str = "id, username, email, created_at, updated_at";

/// Creates a user; a taken username or email is [`DbError::Conflict`] naming the column.
pub async fn create(db: &Db, username: &str, email: &str, password_hash: &str) -> Result<User, DbError> {
    let now = now();
    let sql = format!(
        "INSERT INTO users (id, username, email, password_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING {USER_COLUMNS}"
    );
    let id = new_id();
    let user = on_pool!(db, |pool| sqlx::query_as::<_, User>(&sql)
        .bind(&id)
        .bind(username)
        .bind(email)
        .bind(password_hash)
        .bind(now)
        .fetch_one(pool)
        .await)?;
    Ok(user)
}

pub async fn find(db: &Db, id: &str) -> Result<Option<User>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, User>(&sql).bind(id).fetch_optional(pool).await)?)
}

/// The account with this username (stored lowercase: pass it lowercased).
pub async fn find_by_username(db: &Db, username: &str) -> Result<Option<User>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, User>(&sql).bind(username).fetch_optional(pool).await)?)
}

/// The account a login names, by username or by email (both stored lowercase).
pub async fn find_credentials(db: &Db, username_or_email: &str) -> Result<Option<UserCredentials>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1 OR email = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, UserCredentials>(&sql).bind(username_or_email).fetch_optional(pool).await)?)
}

/// The account's password hash, by id.
pub async fn password_hash(db: &Db, id: &str) -> Result<Option<String>, DbError> {
    let sql = "SELECT password_hash FROM users WHERE id = $1";
    Ok(on_pool!(db, |pool| sqlx::query_scalar::<_, String>(sql).bind(id).fetch_optional(pool).await)?)
}

pub async fn set_password_hash(db: &Db, id: &str, password_hash: &str) -> Result<bool, DbError> {
    let sql = "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1";
    Ok(execute!(db, sqlx::query(sql).bind(id).bind(password_hash).bind(now()))? == 1)
}

/// Changes the account's e-mail (lowercase); a taken address is [`DbError::Conflict`] (`email`).
pub async fn set_email(db: &Db, id: &str, email: &str) -> Result<bool, DbError> {
    let sql = "UPDATE users SET email = $2, updated_at = $3 WHERE id = $1";
    Ok(execute!(db, sqlx::query(sql).bind(id).bind(email).bind(now()))? == 1)
}

/// The account with this e-mail (stored lowercase: pass it lowercased).
pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<User>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as::<_, User>(&sql).bind(email).fetch_optional(pool).await)?)
}

/// Deletes an account and, by cascade, its sessions, channels and videos.
pub async fn delete(db: &Db, id: &str) -> Result<bool, DbError> {
    Ok(execute!(db, sqlx::query("DELETE FROM users WHERE id = $1").bind(id))? == 1)
}
