//! Both engines must hold the same schema; bad locations must fail clearly.

use std::collections::BTreeMap;

use punchr_store::{Store, StoreError};
use punchr_testutil::TestDb;
use sqlx::Row;

type Columns = BTreeMap<String, Vec<(String, bool)>>;

async fn sqlite_columns(store: &Store) -> Columns {
    let rows = sqlx::query(
        "SELECT m.name AS table_name, p.name AS column_name, p.\"notnull\" AS not_null, p.pk AS pk \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations' \
         ORDER BY m.name, p.cid",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut columns = Columns::new();
    for row in rows {
        // SQLite reports INTEGER PRIMARY KEY columns as nullable; they are not.
        let not_null = row.try_get::<i64, _>("not_null").unwrap() != 0
            || row.try_get::<i64, _>("pk").unwrap() == 1;
        columns
            .entry(row.try_get("table_name").unwrap())
            .or_default()
            .push((row.try_get("column_name").unwrap(), not_null));
    }
    columns
}

async fn postgres_columns(store: &Store) -> Columns {
    let rows = sqlx::query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name, \
           (is_nullable = 'NO') AS not_null \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' \
         ORDER BY table_name, ordinal_position",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut columns = Columns::new();
    for row in rows {
        columns
            .entry(row.try_get("table_name").unwrap())
            .or_default()
            .push((
                row.try_get("column_name").unwrap(),
                row.try_get("not_null").unwrap(),
            ));
    }
    columns
}

#[tokio::test]
async fn both_engines_hold_the_same_tables_and_columns() {
    let sqlite = TestDb::sqlite().await;
    let postgres = TestDb::postgres().await;
    let sqlite_schema = sqlite_columns(&sqlite.store).await;
    let postgres_schema = postgres_columns(&postgres.store).await;
    assert!(sqlite_schema.len() >= 14, "{sqlite_schema:?}");
    assert_eq!(sqlite_schema, postgres_schema);
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_without_the_password() {
    let err = Store::open("postgres://punchr:hunter2@127.0.0.1:1/punchr")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("cannot open database"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn a_sqlite_file_in_a_missing_directory_is_refused() {
    let err = Store::open("/nonexistent-punchr-dir/punchr.sqlite")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidLocation { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "these are not the tables you are looking for".repeat(100),
    )
    .unwrap();
    let err = Store::open(path.to_str().unwrap()).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("not a database") || message.contains("file is not a database"),
        "{message}"
    );
    // The file is left as it was.
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("these are not"));
}
