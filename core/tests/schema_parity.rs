//! The SQLite and Postgres migrations must describe the same tables with the same columns and the
//! same nullability; only the storage type of timestamps differs by design.

use std::collections::BTreeSet;

use ferrocast_core::testing::TestDb;
use ferrocast_core::Db;
use sqlx::Row;

type Columns = BTreeSet<(String, String, bool)>;

async fn columns(db: &Db) -> Columns {
    let rows: Vec<(String, String, bool)> = match db {
        Db::Sqlite(pool) => sqlx::query(
            "SELECT m.name, p.name, p.\"notnull\" FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
        )
        .fetch_all(pool)
        .await
        .expect("sqlite columns")
        .into_iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1), r.get::<i64, _>(2) == 1))
        .collect(),
        Db::Postgres(pool) => sqlx::query(
            "SELECT table_name::text, column_name::text, is_nullable = 'NO' FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
        )
        .fetch_all(pool)
        .await
        .expect("postgres columns")
        .into_iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1), r.get::<bool, _>(2)))
        .collect(),
    };
    rows.into_iter().collect()
}

#[tokio::test]
async fn both_migration_sets_produce_the_same_tables_and_columns() {
    let sqlite = TestDb::sqlite().await;
    let postgres = TestDb::postgres().await;
    let (sqlite_columns, postgres_columns) = (columns(&sqlite.db).await, columns(&postgres.db).await);
    assert!(sqlite_columns.len() > 20, "read the schema: {sqlite_columns:?}");
    let only_sqlite: Vec<_> = sqlite_columns.difference(&postgres_columns).collect();
    let only_postgres: Vec<_> = postgres_columns.difference(&sqlite_columns).collect();
    assert!(only_sqlite.is_empty() && only_postgres.is_empty(), "only in SQLite: {only_sqlite:?}\nonly in Postgres: {only_postgres:?}");
}

#[test]
fn both_migration_sets_have_the_same_files() {
    let names = |dir: &str| -> BTreeSet<String> {
        let path = format!("{}/../migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_dir(path).expect("migrations dir").map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect()
    };
    assert_eq!(names("sqlite"), names("postgres"));
}
