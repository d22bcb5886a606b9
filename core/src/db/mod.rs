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

pub mod channels;
pub mod recordings;
pub mod refresh_tokens;
pub mod users;
pub mod videos;

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

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint rejected the write; the payload names the column (`username`, `slug`…).
    #[error("{0} is already taken")]
    Conflict(String),
    #[error("database error: {0}")]
    Sqlx(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        match unique_violation_column(&err) {
            Some(column) => DbError::Conflict(column),
            None => DbError::Sqlx(err),
        }
    }
}

/// The column a unique-constraint violation is about, for both engines' ways of saying it:
/// Postgres names the constraint (`users_username_key`), SQLite the column (`users.username`).
fn unique_violation_column(err: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(db_err) = err else { return None };
    if db_err.kind() != sqlx::error::ErrorKind::UniqueViolation {
        return None;
    }
    if let Some(constraint) = db_err.constraint() {
        let without_suffix = constraint.strip_suffix("_key").unwrap_or(constraint);
        let column = without_suffix.split_once('_').map_or(without_suffix, |(_table, col)| col);
        return Some(column.to_string());
    }
    let message = db_err.message();
    let qualified = message.rsplit("failed: ").next()?.split(',').next()?.trim();
    let column = qualified.split_once('.').map_or(qualified, |(_table, col)| col);
    Some(column.to_string())
}

impl Db {
    /// Opens the configured database (creating the SQLite file if needed) and applies migrations.
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
                std::fs::create_dir_all(&config.data_dir).map_err(|e| DbError::Sqlx(sqlx::Error::Io(e)))?;
                let options = SqliteConnectOptions::new().filename(config.data_dir.join(SQLITE_FILE));
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
        on_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))?;
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
