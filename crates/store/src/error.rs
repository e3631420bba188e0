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
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
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
    /// An API key with that name exists already.
    #[error("an API key named {0:?} exists already")]
    DuplicateApiKeyName(String),
}
