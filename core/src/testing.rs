//! Fresh, real databases for tests: a new SQLite file or a new Postgres database per call, with
//! migrations applied, dropped again when the [`TestDb`] goes out of scope.
//!
//! Postgres is reached at `FERROCAST_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `make test` makes sure a server is there.
//! This module is only for tests; nothing in the server calls it.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, Executor};

use crate::db::Db;

pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A migrated database that exists for one test.
pub struct TestDb {
    pub db: Db,
    /// The URL a separate process (the real binary) would use to reach the same database.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] TempDir),
    Postgres { admin_url: String, name: String },
}

pub fn admin_postgres_url() -> String {
    std::env::var("FERROCAST_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_string())
}

impl TestDb {
    pub async fn new(engine: Engine) -> TestDb {
        match engine {
            Engine::Sqlite => Self::sqlite().await,
            Engine::Postgres => Self::postgres().await,
        }
    }

    pub async fn sqlite() -> TestDb {
        let dir = TempDir::new();
        let path = dir.path().join("test.db");
        let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true).foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await.expect("open test sqlite");
        let db = Db::Sqlite(pool);
        db.migrate().await.expect("migrate test sqlite");
        TestDb { db, url: format!("sqlite://{}", path.display()), cleanup: Cleanup::Sqlite(dir) }
    }

    pub async fn postgres() -> TestDb {
        let admin_url = admin_postgres_url();
        let name = format!("ferrocast_test_{}", crate::ids::new_id());
        let admin_options = PgConnectOptions::from_str(&admin_url).expect("FERROCAST_TEST_POSTGRES_URL parses");
        let mut admin = admin_options
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot reach Postgres for tests at {admin_url} ({e}); run `make test`, which starts one"));
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create test database");
        admin.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(admin_options.clone().database(&name))
            .await
            .expect("connect to test database");
        let db = Db::Postgres(pool);
        db.migrate().await.expect("migrate test postgres");
        let url = replace_database(&admin_url, &name);
        TestDb { db, url, cleanup: Cleanup::Postgres { admin_url, name } }
    }
}

/// `postgres://u@h:5432/postgres?x` with the database `name` instead.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            // Drop runs outside async context; a short-lived thread with its own runtime drops the
            // database (FORCE ends the pool's connections) so test runs do not pile databases up.
            let (admin_url, name) = (admin_url.clone(), name.clone());
            let dropper = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                runtime.block_on(async move {
                    let Ok(options) = PgConnectOptions::from_str(&admin_url) else { return };
                    if let Ok(mut admin) = options.connect().await {
                        let _ = admin.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await;
                        let _ = admin.close().await;
                    }
                });
            });
            let _ = dropper.join();
        }
    }
}

/// The S3 server tests use: `FERROCAST_TEST_S3_ENDPOINT` (default `http://127.0.0.1:18333`, where
/// `scripts/ensure-s3.sh` starts SeaweedFS for `make test`), bucket `ferrocast-test`.
pub const DEFAULT_TEST_S3_ENDPOINT: &str = "http://127.0.0.1:18333";
pub const TEST_S3_BUCKET: &str = "ferrocast-test";
/// The credentials `scripts/ensure-s3.sh` gives its server.
pub const TEST_S3_ACCESS_KEY_ID: &str = "ferrocast";
pub const TEST_S3_SECRET_ACCESS_KEY: &str = "ferrocast-test-secret";

pub fn test_s3_endpoint() -> String {
    std::env::var("FERROCAST_TEST_S3_ENDPOINT").unwrap_or_else(|_| DEFAULT_TEST_S3_ENDPOINT.to_string())
}

/// Storage settings for a fresh prefix of the test bucket (each test sees only its own objects).
/// Sets the standard AWS credential variables for this process when they are unset (nextest runs
/// every test in a process of its own).
pub fn test_s3_config() -> crate::config::StorageConfig {
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        std::env::set_var("AWS_ACCESS_KEY_ID", TEST_S3_ACCESS_KEY_ID);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", TEST_S3_SECRET_ACCESS_KEY);
    }
    crate::config::StorageConfig {
        url: Some(format!("s3://{TEST_S3_BUCKET}/test-{}", crate::ids::new_id())),
        endpoint: Some(test_s3_endpoint()),
        region: Some("us-east-1".into()),
        allow_http: true,
        ..crate::config::StorageConfig::default()
    }
}

/// A temporary directory, removed on drop (kept tiny to avoid a runtime dependency on `tempfile`).
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    #[allow(clippy::new_without_default)]
    pub fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("ferrocast-test-{}", crate::ids::new_id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Declares one async test per engine: `both_engines!(name, |db: TestDb| async move { … });`
/// expands to `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_engines {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let test_db = $crate::testing::TestDb::new($crate::testing::Engine::Sqlite).await;
                ($body)(test_db).await;
            }

            #[tokio::test]
            async fn postgres() {
                let test_db = $crate::testing::TestDb::new($crate::testing::Engine::Postgres).await;
                ($body)(test_db).await;
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_swapped_in_the_url() {
        assert_eq!(super::replace_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"), "postgres://postgres@127.0.0.1:5432/t1");
        assert_eq!(super::replace_database("postgres://u:p@h/db?sslmode=disable", "t2"), "postgres://u:p@h/t2?sslmode=disable");
    }
}
