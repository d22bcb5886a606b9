//! The SQLite and Postgres migrations must describe the same schema: the same tables with the same
//! columns and nullability, the same indexes and unique constraints (by table, columns and
//! uniqueness), and the same foreign keys with the same ON DELETE action. Only the storage type of
//! timestamps differs by design, and search, which each engine indexes its own way
//! (migrations/*/0003_search.sql): its objects are listed below by name, and only they are left out.

use std::collections::BTreeSet;

use ferrocast_core::testing::TestDb;
use ferrocast_core::Db;
use sqlx::Row;

type Columns = BTreeSet<(String, String, bool)>;
/// (table, comma-separated columns in index order, unique)
type Indexes = BTreeSet<(String, String, bool)>;
/// (table, column, referenced table, referenced column, ON DELETE action)
type ForeignKeys = BTreeSet<(String, String, String, String, String)>;

const SQLITE_TABLES: &str = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'";

/// Search on SQLite is an FTS5 virtual table, the shadow tables FTS5 creates to store it (`_data`,
/// `_idx`, `_content`, `_config`; no `_docsize`, as the table is declared `columnsize = 0`), and a
/// table of stable FTS rowids. Postgres has no counterpart to any of them: it searches the tables
/// themselves through indexes. Named one by one, so that any other table still has to match.
const SQLITE_ONLY_TABLES: &[&str] =
    &["video_search", "video_search_data", "video_search_idx", "video_search_content", "video_search_config", "video_search_keys"];

/// Search on Postgres is two pg_trgm GIN indexes on expressions; SQLite's counterpart is the tables
/// above. (The pg_trgm extension itself adds functions, operators and types, no tables or indexes
/// in the schema compared here.)
const POSTGRES_ONLY_INDEXES: &[&str] = &["videos_search_trgm_idx", "channels_search_trgm_idx"];

/// The names in `names` that are not in `only_here`, after checking that every one of `only_here`
/// is there: an exclusion that no longer matches anything must be noticed, not linger.
fn without<'a>(what: &str, names: impl IntoIterator<Item = &'a String> + Clone, only_here: &[&str]) -> BTreeSet<String> {
    for name in only_here {
        assert!(names.clone().into_iter().any(|n| n == name), "{what}: expected {name} to exist (is the exclusion list stale?)");
    }
    names.into_iter().filter(|name| !only_here.contains(&name.as_str())).cloned().collect()
}

/// The SQLite tables compared with Postgres: all but SQLite's own (`sqlite_*`), sqlx's bookkeeping
/// and [`SQLITE_ONLY_TABLES`].
async fn sqlite_tables(pool: &sqlx::SqlitePool) -> BTreeSet<String> {
    let tables: Vec<String> = sqlx::query_scalar(SQLITE_TABLES).fetch_all(pool).await.expect("sqlite tables");
    without("SQLite tables", &tables, SQLITE_ONLY_TABLES)
}

async fn columns(db: &Db) -> Columns {
    let rows: Vec<(String, String, bool)> = match db {
        Db::Sqlite(pool) => {
            let mut columns = Vec::new();
            for table in sqlite_tables(pool).await {
                let rows = sqlx::query("SELECT name, \"notnull\" FROM pragma_table_info($1)")
                    .bind(&table)
                    .fetch_all(pool)
                    .await
                    .expect("sqlite columns");
                columns.extend(rows.into_iter().map(|r| (table.clone(), r.get::<String, _>(0), r.get::<i64, _>(1) == 1)));
            }
            columns
        }
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

/// Every index, including the ones behind primary keys and UNIQUE constraints. An indexed expression
/// is listed as `(expression)` on both engines, so an expression index still has to exist on both.
async fn indexes(db: &Db) -> Indexes {
    match db {
        Db::Sqlite(pool) => {
            let mut indexes = Indexes::new();
            for table in sqlite_tables(pool).await {
                let list =
                    sqlx::query("SELECT name, \"unique\" FROM pragma_index_list($1)").bind(&table).fetch_all(pool).await.expect("list");
                for index in list {
                    let name: String = index.get(0);
                    let columns: Vec<Option<String>> = sqlx::query_scalar("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                        .bind(&name)
                        .fetch_all(pool)
                        .await
                        .expect("index columns");
                    let columns: Vec<String> = columns.into_iter().map(|c| c.unwrap_or_else(|| "(expression)".into())).collect();
                    indexes.insert((table.clone(), columns.join(","), index.get::<i64, _>(1) == 1));
                }
            }
            indexes
        }
        Db::Postgres(pool) => {
            let rows: Vec<(String, (String, String, bool))> = sqlx::query(
                "SELECT i.indexrelid::regclass::text, \
                        t.relname::text, \
                        string_agg(COALESCE(a.attname::text, '(expression)'), ',' ORDER BY k.ord), \
                        i.indisunique \
                 FROM pg_index i \
                 JOIN pg_class t ON t.oid = i.indrelid \
                 JOIN pg_namespace n ON n.oid = t.relnamespace \
                 CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                 LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum AND k.attnum <> 0 \
                 WHERE n.nspname = 'public' AND t.relname NOT LIKE '\\_sqlx%' \
                 GROUP BY i.indexrelid, t.relname, i.indisunique",
            )
            .fetch_all(pool)
            .await
            .expect("postgres indexes")
            .into_iter()
            .map(|r| (r.get::<String, _>(0), (r.get::<String, _>(1), r.get::<String, _>(2), r.get::<bool, _>(3))))
            .collect();
            let kept = without("Postgres indexes", rows.iter().map(|(name, _)| name), POSTGRES_ONLY_INDEXES);
            rows.into_iter().filter(|(name, _)| kept.contains(name)).map(|(_, index)| index).collect()
        }
    }
}

async fn foreign_keys(db: &Db) -> ForeignKeys {
    match db {
        Db::Sqlite(pool) => {
            let mut keys = ForeignKeys::new();
            for table in sqlite_tables(pool).await {
                let rows = sqlx::query("SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list($1)")
                    .bind(&table)
                    .fetch_all(pool)
                    .await
                    .expect("foreign keys");
                for r in rows {
                    keys.insert((table.clone(), r.get(0), r.get(1), r.get(2), r.get::<String, _>(3).to_uppercase()));
                }
            }
            keys
        }
        Db::Postgres(pool) => sqlx::query(
            "SELECT cl.relname::text, a.attname::text, rcl.relname::text, ra.attname::text, \
                    CASE c.confdeltype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' \
                                       WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END \
             FROM pg_constraint c \
             JOIN pg_class cl ON cl.oid = c.conrelid \
             JOIN pg_namespace n ON n.oid = cl.relnamespace \
             JOIN pg_class rcl ON rcl.oid = c.confrelid \
             CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(col, rcol) \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col \
             JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.rcol \
             WHERE c.contype = 'f' AND n.nspname = 'public'",
        )
        .fetch_all(pool)
        .await
        .expect("postgres foreign keys")
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect(),
    }
}

fn assert_same<T: Ord + std::fmt::Debug>(what: &str, sqlite: &BTreeSet<T>, postgres: &BTreeSet<T>) {
    let only_sqlite: Vec<_> = sqlite.difference(postgres).collect();
    let only_postgres: Vec<_> = postgres.difference(sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "{what} differ\nonly in SQLite: {only_sqlite:?}\nonly in Postgres: {only_postgres:?}"
    );
}

#[tokio::test]
async fn both_migration_sets_produce_the_same_schema() {
    let sqlite = TestDb::sqlite().await;
    let postgres = TestDb::postgres().await;

    let (sqlite_columns, postgres_columns) = (columns(&sqlite.db).await, columns(&postgres.db).await);
    assert!(sqlite_columns.len() > 20, "read the schema: {sqlite_columns:?}");
    assert_same("columns", &sqlite_columns, &postgres_columns);

    let (sqlite_indexes, postgres_indexes) = (indexes(&sqlite.db).await, indexes(&postgres.db).await);
    for expected in [("users", "username", true), ("users", "email", true), ("channels", "slug", true), ("videos", "channel_id,id", false)]
    {
        let expected = (expected.0.to_string(), expected.1.to_string(), expected.2);
        assert!(sqlite_indexes.contains(&expected), "read the indexes: {expected:?} in {sqlite_indexes:?}");
    }
    assert_same("indexes and unique constraints", &sqlite_indexes, &postgres_indexes);

    let (sqlite_keys, postgres_keys) = (foreign_keys(&sqlite.db).await, foreign_keys(&postgres.db).await);
    let owner = ("channels".to_string(), "owner_id".to_string(), "users".to_string(), "id".to_string(), "CASCADE".to_string());
    assert!(sqlite_keys.contains(&owner), "read the foreign keys: {sqlite_keys:?}");
    assert_same("foreign keys", &sqlite_keys, &postgres_keys);
}

#[test]
fn both_migration_sets_have_the_same_files() {
    let names = |dir: &str| -> BTreeSet<String> {
        let path = format!("{}/../migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_dir(path).expect("migrations dir").map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect()
    };
    assert_eq!(names("sqlite"), names("postgres"));
}
