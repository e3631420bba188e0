//! [`StoreError`]: what can go wrong in the storage layer, with driver errors sorted by what a
//! caller can do about them (retry later, free disk space, fix the request).

use sqlx::error::DatabaseError;
use thiserror::Error;

/// What can go wrong in the storage layer.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database location is neither a `postgres://` URL nor a usable SQLite path.
    #[error("invalid database location {location:?}: {reason}")]
    InvalidLocation {
        /// What the user gave.
        location: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Connecting to the database failed.
    #[error("cannot open database {location}: {source}")]
    Connect {
        /// The database (password removed).
        location: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database cannot be written: a read-only file, file system, database or role, found
    /// when the store was opened.
    #[error("database {location} is not writable: {reason}; make it writable and start again")]
    Unwritable {
        /// The database (password removed).
        location: String,
        /// Why, in the operating system's or the database's words.
        reason: String,
    },
    /// The database is unreachable for now (the connection was refused or lost, the server is
    /// restarting, or every connection is busy). Retrying later may succeed.
    #[error("database unavailable (it may be restarting; retry later): {0}")]
    Unavailable(sqlx::Error),
    /// The disk holding the database is full; nothing of the failed write was stored.
    #[error("database storage is full (free disk space where the database lives): {0}")]
    StorageFull(sqlx::Error),
    /// The database refuses writes (it became read-only while in use).
    #[error("database is read-only (make it writable again): {0}")]
    ReadOnly(sqlx::Error),
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A value cannot be stored as it is (for example a time past the year 2262).
    #[error("invalid value for {field}: {reason}")]
    InvalidValue {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// No API key with that name or id exists.
    #[error("no API key named {0:?}")]
    UnknownApiKey(String),
    /// No API key with that id exists.
    #[error("no API key with id {0}; `keys list` shows the ids")]
    UnknownApiKeyId(i64),
    /// An API key with that name exists already.
    #[error("an API key named {0:?} exists already")]
    DuplicateApiKeyName(String),
    /// A write did not do what its statements promise (a bug, not a state of the database);
    /// the transaction is rolled back.
    #[error("storage invariant broken: {0}")]
    Invariant(String),
}

impl StoreError {
    /// Whether the failure is a passing state of the database (unreachable, full, read-only)
    /// rather than a fault of the request: the same write may succeed later, so a caller keeps
    /// it and retries.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::StorageFull(_) | StoreError::ReadOnly(_)
        )
    }
}

/// Sorts driver errors by what the caller can do about them.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match classify(&error) {
            Class::Unavailable => StoreError::Unavailable(error),
            Class::Full => StoreError::StorageFull(error),
            Class::ReadOnly => StoreError::ReadOnly(error),
            Class::Other => StoreError::Database(error),
        }
    }
}

enum Class {
    Unavailable,
    Full,
    ReadOnly,
    Other,
}

fn classify(error: &sqlx::Error) -> Class {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Class::Unavailable,
        sqlx::Error::Database(error) => classify_database(error.as_ref()),
        _ => Class::Other,
    }
}

/// PostgreSQL reports a five-character SQLSTATE; SQLite its (extended) result code as a number.
fn classify_database(error: &dyn DatabaseError) -> Class {
    let Some(code) = error.code() else {
        return Class::Other;
    };
    // SQLite's extended result codes stay below 10000.
    if code.len() == 5 {
        return classify_sqlstate(&code).unwrap_or(Class::Other);
    }
    match code.parse::<i32>().map(|extended| extended & 0xff) {
        // SQLITE_FULL; SQLITE_READONLY (and its extended codes); SQLITE_BUSY and SQLITE_LOCKED
        // after the busy timeout; SQLITE_IOERR, SQLITE_CANTOPEN (the file went away).
        Ok(13) => Class::Full,
        Ok(8) => Class::ReadOnly,
        Ok(5 | 6 | 10 | 14) => Class::Unavailable,
        _ => Class::Other,
    }
}

/// PostgreSQL's SQLSTATEs for the same situations (appendix A of its manual).
fn classify_sqlstate(code: &str) -> Option<Class> {
    match code {
        // disk_full, insufficient_resources
        "53100" | "53000" => Some(Class::Full),
        // read_only_sql_transaction
        "25006" => Some(Class::ReadOnly),
        // too_many_connections; admin_shutdown, crash_shutdown, cannot_connect_now
        "53300" | "57P01" | "57P02" | "57P03" => Some(Class::Unavailable),
        // connection_exception and its subclasses
        _ if code.starts_with("08") => Some(Class::Unavailable),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use punchr_types::error_line;

    use super::*;

    #[test]
    fn error_lines_say_each_cause_once() {
        let io = std::io::Error::other("Read-only file system (os error 30)");
        let error = StoreError::Connect {
            location: "/srv/punchr.sqlite".into(),
            source: sqlx::Error::Io(io),
        };
        assert_eq!(
            error_line(&error),
            "cannot open database /srv/punchr.sqlite: error communicating with database: \
             Read-only file system (os error 30)"
        );
    }
}
