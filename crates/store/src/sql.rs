//! Helpers for reading rows the same way on both engines.

use sqlx::any::AnyRow;
use sqlx::Row;

/// Reads a boolean column. PostgreSQL stores `BOOLEAN`; SQLite stores 0/1 in an `INTEGER`
/// column, because sqlx's Any driver cannot decode SQLite's `BOOLEAN`.
pub fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    optional_flag(row, column)?.ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: "unexpected NULL".into(),
    })
}

/// Reads a nullable boolean column (see [`flag`]).
pub fn optional_flag(row: &AnyRow, column: &str) -> Result<Option<bool>, sqlx::Error> {
    match row.try_get::<Option<bool>, _>(column) {
        Ok(value) => Ok(value),
        Err(sqlx::Error::ColumnDecode { .. }) => {
            let value: Option<i64> = row.try_get(column)?;
            Ok(value.map(|v| v != 0))
        }
        Err(other) => Err(other),
    }
}
