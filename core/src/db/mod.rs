//! The database: one pool, SQLite or Postgres, and the repositories over it.
//!
//! Repositories are plain async functions taking `&Db`. Their SQL is written once in the dialect both
//! engines accept (`$1` placeholders, no engine-specific functions) and run on whichever pool is
//! configured through [`on_pool!`]; the same row types decode from both. Where the engines truly
//! differ (full-text search, job claiming) a repository matches on [`Db`] itself.
//! Nothing here formats a stream key or a password hash into a log line or an error.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

use crate::config::{Config, SQLITE_FILE};

pub mod access_tokens;
pub mod channels;
pub mod chat;
pub mod jobs;
pub mod password_resets;
pub mod recordings;
pub mod refresh_tokens;
pub mod restreams;
pub mod search;
pub mod uploads;
pub mod users;
pub mod videos;
pub mod webhooks;

/// A connection pool to whichever database the configuration selects.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same expression against either pool: `on_pool!(db, |pool| query.fetch_one(pool))`.
/// Each arm is type-checked against its own driver, so one query string serves both engines.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub use on_pool;

/// Runs a write on either pool and yields the number of rows it touched:
/// `execute!(db, sqlx::query(sql).bind(id))` is `Result<u64, sqlx::Error>`. Like [`on_pool!`], the
/// query expression is type-checked once per driver.
#[macro_export]
macro_rules! execute {
    ($db:expr, $query:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pool) => $query.execute(pool).await.map(|r| r.rows_affected()),
            $crate::db::Db::Postgres(pool) => $query.execute(pool).await.map(|r| r.rows_affected()),
        }
    };
}
pub use execute;

/// Declares a text-stored enum: its wire/database spelling, parsing, and serde in one place.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::db::videos::UnknownValue;
            fn try_from(value: String) -> Result<Self, $crate::db::videos::UnknownValue> {
                match value.as_str() {
                    $($text => Ok(Self::$variant),)+
                    _ => Err($crate::db::videos::UnknownValue(value)),
                }
            }
        }
    };
}
pub(crate) use text_enum;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint that guards a user-chosen value rejected the write; the payload names
    /// the request field (`username`, `email`, `slug`). Other unique violations are [`DbError::Sqlx`].
    #[error("{0} is already taken")]
    Conflict(String),
    /// A row the write refers to is gone (a foreign key failed), e.g. the signed-in user was
    /// deleted between authentication and the insert.
    #[error("a referenced row does not exist")]
    MissingReference,
    #[error("database error: {0}")]
    Sqlx(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db_err) = &err {
            match db_err.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    if let Some(field) = conflicting_field(db_err.constraint(), db_err.message()) {
                        return DbError::Conflict(field.to_string());
                    }
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => return DbError::MissingReference,
                _ => {}
            }
        }
        DbError::Sqlx(err)
    }
}

/// The unique constraints whose violation is the caller's to fix, with the request field each is
/// about. Both migrations name these constraints explicitly, so Postgres reports the name in the
/// first column; SQLite reports `table.column` (the second). Anything not listed here (a token or
/// key hash colliding, a primary key) is an internal error and names nothing.
const CONFLICT_FIELDS: &[(&str, &str, &str)] = &[
    ("users_username_key", "users.username", "username"),
    ("users_email_key", "users.email", "email"),
    ("channels_slug_key", "channels.slug", "slug"),
];

/// The request field a unique violation is about: by constraint name (Postgres) or by the
/// `UNIQUE constraint failed: table.column` message (SQLite).
fn conflicting_field(constraint: Option<&str>, message: &str) -> Option<&'static str> {
    if let Some(name) = constraint {
        return CONFLICT_FIELDS.iter().find(|(constraint, _, _)| *constraint == name).map(|(_, _, field)| *field);
    }
    let columns = message.strip_prefix("UNIQUE constraint failed: ")?.trim();
    CONFLICT_FIELDS.iter().find(|(_, column, _)| *column == columns).map(|(_, _, field)| *field)
}

impl Db {
    /// Opens the configured database (creating the SQLite file, and the data dir with mode 0700, if
    /// needed) and applies migrations.
    pub async fn connect(config: &Config) -> Result<Db, DbError> {
        let acquire_timeout = Duration::from_secs(config.database.acquire_timeout_secs);
        let max = config.database.max_connections;
        let url = config.database_url.as_ref().map(|s| s.expose().to_string());
        let db = match url.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let options = PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new().max_connections(max).acquire_timeout(acquire_timeout).connect_with(options).await?;
                Db::Postgres(pool)
            }
            Some(url) => Db::Sqlite(Self::sqlite_pool(SqliteConnectOptions::from_str(url)?, max, acquire_timeout).await?),
            None => {
                crate::secret::create_private_dir(&config.data_dir).map_err(|e| DbError::Sqlx(sqlx::Error::Io(e)))?;
                let path = config.data_dir.join(SQLITE_FILE);
                crate::secret::create_private_file(&path).map_err(|e| DbError::Sqlx(sqlx::Error::Io(e)))?;
                let options = SqliteConnectOptions::new().filename(path);
                Db::Sqlite(Self::sqlite_pool(options, max, acquire_timeout).await?)
            }
        };
        db.migrate().await?;
        Ok(db)
    }

    async fn sqlite_pool(options: SqliteConnectOptions, max: u32, acquire_timeout: Duration) -> Result<SqlitePool, sqlx::Error> {
        // WAL lets readers proceed while one writer commits; the busy timeout makes concurrent
        // writers wait for each other instead of failing with SQLITE_BUSY.
        let options =
            options.create_if_missing(true).journal_mode(SqliteJournalMode::Wal).busy_timeout(Duration::from_secs(5)).foreign_keys(true);
        SqlitePoolOptions::new().max_connections(max).acquire_timeout(acquire_timeout).connect_with(options).await
    }

    /// Applies this engine's migrations (embedded in the binary at build time).
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// One round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), DbError> {
        execute!(self, sqlx::query("SELECT 1"))?;
        Ok(())
    }

    pub fn engine(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

/// The current time at the precision both engines store (microseconds), so a value written and read
/// back compares equal on either.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    let now = chrono::Utc::now();
    now.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::conflicting_field;

    #[test]
    fn only_listed_constraints_name_a_field() {
        assert_eq!(conflicting_field(Some("users_username_key"), "duplicate key value"), Some("username"));
        assert_eq!(conflicting_field(None, "UNIQUE constraint failed: channels.slug"), Some("slug"));
        assert_eq!(conflicting_field(Some("channels_stream_key_hash_key"), "duplicate key value"), None);
        assert_eq!(conflicting_field(None, "UNIQUE constraint failed: channels.stream_key_hash"), None);
        assert_eq!(conflicting_field(None, "UNIQUE constraint failed: users.id"), None);
        assert_eq!(conflicting_field(None, "UNIQUE constraint failed: users.username, users.email"), None);
    }
}
