//! Opening the database: the engine behind a location (a SQLite file or a PostgreSQL URL), the
//! writer's connection pool with its settings, the embedded migrations, and the check that the
//! database can be written before a service starts on it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor};

use crate::selection::CandidateCache;
use crate::{Result, StoreError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Engine {
    /// The engine's name as users write it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// A handle on the Punchr database. Cheap to clone; clones share one connection pool (and the
/// peer selection's candidate list).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    pub(crate) candidates: Arc<CandidateCache>,
    /// Where the database is, password removed, for messages.
    location: Arc<str>,
    /// The file of a SQLite database given as a path.
    sqlite_file: Option<Arc<Path>>,
}

impl Store {
    /// Opens the database at `location` and applies the embedded migrations.
    ///
    /// `location` is a `postgres://` (or `postgresql://`) URL, a `sqlite:` URL, or the path of a
    /// SQLite file, which is created if missing (its directory must exist).
    pub async fn open(location: &str) -> Result<Store> {
        let store = Self::connect(location).await?;
        if let Err(error) = store.migrate().await {
            // Migrations are the first writes; when they fail because nothing may be written,
            // say that rather than which statement failed.
            return Err(store.unwritable_or(error).await);
        }
        Ok(store)
    }

    /// Refuses a database this process cannot write to: a service that stores what it
    /// measures checks this at start, so a read-only file, file system, database or role stops
    /// it with a clear error instead of failing every write later.
    pub async fn ensure_writable(&self) -> Result<()> {
        match self.read_only_reason().await? {
            Some(reason) => Err(self.unwritable(reason)),
            None => Ok(()),
        }
    }

    fn unwritable(&self, reason: String) -> StoreError {
        StoreError::Unwritable {
            location: self.location.to_string(),
            reason,
        }
    }

    async fn unwritable_or(&self, error: StoreError) -> StoreError {
        match self.read_only_reason().await {
            Ok(Some(reason)) => self.unwritable(reason),
            _ => error,
        }
    }

    /// Why nothing can be written, if so: the operating system's answer to opening the SQLite
    /// file for writing, or the database's to starting a write transaction.
    async fn read_only_reason(&self) -> Result<Option<String>> {
        if let Some(file) = &self.sqlite_file {
            // access(2), never open(2): closing any descriptor of the database file drops every
            // POSIX lock this process holds on it, and another process sharing the file (the
            // honeypot and the server do) may then checkpoint the WAL under our feet and
            // corrupt the database (sqlite.org/howtocorrupt.html §2.2).
            if let Err(error) = rustix::fs::access(file.as_ref(), rustix::fs::Access::WRITE_OK) {
                return Ok(Some(std::io::Error::from(error).to_string()));
            }
        }
        match self.engine {
            Engine::Postgres => {
                let read_only: String =
                    sqlx::query_scalar("SELECT current_setting('transaction_read_only')")
                        .fetch_one(&self.pool)
                        .await?;
                Ok((read_only == "on").then(|| {
                    "PostgreSQL allows only read-only transactions here \
                     (default_transaction_read_only is on, or the server is a standby)"
                        .to_owned()
                }))
            }
            Engine::Sqlite => {
                let mut conn = self.pool.acquire().await?;
                match conn.execute("BEGIN IMMEDIATE").await {
                    Ok(_) => {
                        conn.execute("ROLLBACK").await?;
                        Ok(None)
                    }
                    Err(error) => match StoreError::from(error) {
                        StoreError::ReadOnly(error) => Ok(Some(error.to_string())),
                        other => Err(other),
                    },
                }
            }
        }
    }

    /// Connects without applying migrations.
    pub async fn connect(location: &str) -> Result<Store> {
        Self::connect_with(location, None).await
    }

    /// Connects without applying migrations, with a pool of at most `max_connections`: a
    /// second, small pool for work that must not take the connections of the first (the
    /// dashboard's reports beside the server's result writes).
    pub async fn connect_sized(location: &str, max_connections: u32) -> Result<Store> {
        Self::connect_with(location, Some(max_connections.max(1))).await
    }

    async fn connect_with(location: &str, max_connections: Option<u32>) -> Result<Store> {
        install_default_drivers();
        let (engine, url) = resolve_location(location)?;
        let sqlite_file = sqlite_file(location, engine);
        let connect_error = |source| match sqlite_file.as_deref().and_then(unwritable_file) {
            Some(reason) => StoreError::Unwritable {
                location: redact_password(location),
                reason,
            },
            None => StoreError::Connect {
                location: redact_password(location),
                source,
            },
        };
        // A pool retries failed connections until its timeout; one plain connection first turns
        // a wrong password or a file that is no database into an immediate, precise error.
        let mut probe = AnyConnection::connect(&url).await.map_err(connect_error)?;
        if engine == Engine::Sqlite {
            probe.execute(SQLITE_PRAGMAS).await.map_err(connect_error)?;
        }
        probe.close().await.map_err(connect_error)?;
        let mut options = pool_options(engine);
        if let Some(max) = max_connections {
            options = options.max_connections(max);
        }
        let pool = options.connect(&url).await.map_err(connect_error)?;
        Ok(Store {
            pool,
            engine,
            candidates: Arc::default(),
            location: redact_password(location).into(),
            sqlite_file: sqlite_file.map(Into::into),
        })
    }

    /// Applies the migrations embedded in this binary that the database lacks.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// The engine this store runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The connection pool. Reports and dashboards read through [`Store::read_only`] or
    /// [`crate::ReadOnlyStore::connect`] instead; tests use this to look at what was written.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection; waits for the ones in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Closes `conn` instead of returning it to the pool when the write on it failed.
///
/// After a failed COMMIT or ROLLBACK, what sqlx believes about the connection's transaction no
/// longer has to match the database. Seen on a full disk with SQLite: after a COMMIT failed, the
/// connection went back to the pool and the results written on it next were confirmed to the
/// client, yet never became visible to anyone else, and it held SQLite's write lock, so every
/// other write failed with "database is locked" (the fault tests in the server crate catch
/// it). A fresh connection has no such history; closing this one rolls back what it holds.
pub(crate) fn discard_if_failed<T>(conn: &mut PoolConnection<Any>, written: &Result<T>) {
    if written.is_err() {
        conn.close_on_drop();
    }
}

/// WAL lets readers work beside the writer; NORMAL sync is durable across application crashes;
/// foreign keys are off by default in SQLite; writers wait for each other instead of failing.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";

/// How long a request waits for a pool connection. While the database is down a waiting
/// request keeps trying to connect until this passes, so it bounds how long a request hangs in an
/// outage; it stays well under the clients' 30 s request deadline, so they get UNAVAILABLE and
/// retry rather than giving up on a request that is still waiting (with 30 s, every request made
/// during a PostgreSQL restart waited 29.8 s and the clients saw their own deadline expire).
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

fn pool_options(engine: Engine) -> AnyPoolOptions {
    let options = AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
    match engine {
        // SQLite serialises writers anyway; a few connections let readers run beside one writer.
        Engine::Sqlite => options.max_connections(4).after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(SQLITE_PRAGMAS).await?;
                Ok(())
            })
        }),
        Engine::Postgres => options.max_connections(16),
    }
}

/// Turns what the user gave into an engine and a URL sqlx understands.
pub(crate) fn resolve_location(location: &str) -> Result<(Engine, String)> {
    let invalid = |reason: &str| StoreError::InvalidLocation {
        location: redact_password(location),
        reason: reason.to_owned(),
    };
    if location.trim().is_empty() {
        return Err(invalid(
            "empty; give a SQLite file path or a postgres:// URL",
        ));
    }
    if location.starts_with("postgres://") || location.starts_with("postgresql://") {
        return Ok((Engine::Postgres, location.to_owned()));
    }
    if location.starts_with("sqlite:") {
        return Ok((Engine::Sqlite, location.to_owned()));
    }
    if location.contains("://") {
        return Err(invalid(
            "unknown scheme; give a SQLite file path or a postgres:// URL",
        ));
    }
    let path = Path::new(location);
    if path.is_dir() {
        return Err(invalid("is a directory; give the path of a SQLite file"));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        if !parent.is_dir() {
            return Err(invalid(&format!(
                "directory {} does not exist; create it first",
                parent.display()
            )));
        }
    }
    Ok((
        Engine::Sqlite,
        format!("sqlite://{}?mode=rwc", percent_encode_path(location)),
    ))
}

/// The file of a SQLite database given as a plain path.
fn sqlite_file(location: &str, engine: Engine) -> Option<std::path::PathBuf> {
    (engine == Engine::Sqlite && !location.starts_with("sqlite:")).then(|| location.into())
}

/// Why SQLite could not open `file`, when the reason is that it cannot be written or created:
/// SQLite itself only says "unable to open database file".
fn unwritable_file(file: &Path) -> Option<String> {
    let attempt = if file.exists() {
        std::fs::OpenOptions::new().append(true).open(file)
    } else {
        let created = std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(file);
        if created.is_ok() {
            let _ = std::fs::remove_file(file);
        }
        created
    };
    attempt.err().map(|error| match file.exists() {
        true => error.to_string(),
        false => format!("cannot create the file: {error}"),
    })
}

/// Escapes the characters that would end or change the path part of a URL.
fn percent_encode_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => encoded.push_str("%25"),
            '?' => encoded.push_str("%3F"),
            '#' => encoded.push_str("%23"),
            ' ' => encoded.push_str("%20"),
            _ => encoded.push(c),
        }
    }
    encoded
}

/// The location with any password replaced, fit for logs and error messages.
pub fn redact_password(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return location.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => location.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_select_postgres() {
        let (engine, url) = resolve_location("postgres://u:p@localhost:5432/db").unwrap();
        assert_eq!(engine, Engine::Postgres);
        assert_eq!(url, "postgres://u:p@localhost:5432/db");
    }

    #[test]
    fn plain_paths_select_sqlite_and_are_escaped() {
        let (engine, url) = resolve_location("punchr db?.sqlite").unwrap();
        assert_eq!(engine, Engine::Sqlite);
        assert_eq!(url, "sqlite://punchr%20db%3F.sqlite?mode=rwc");
    }

    #[test]
    fn bad_locations_say_what_to_do() {
        let missing_dir = resolve_location("/no/such/dir/punchr.sqlite").unwrap_err();
        assert!(
            missing_dir.to_string().contains("does not exist"),
            "{missing_dir}"
        );
        let scheme = resolve_location("mysql://localhost/db").unwrap_err();
        assert!(scheme.to_string().contains("unknown scheme"), "{scheme}");
        let empty = resolve_location(" ").unwrap_err();
        assert!(empty.to_string().contains("empty"), "{empty}");
        let dir = resolve_location("/tmp").unwrap_err();
        assert!(dir.to_string().contains("directory"), "{dir}");
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_password("postgres://punchr:secret@db:5432/punchr"),
            "postgres://punchr:***@db:5432/punchr"
        );
        assert_eq!(redact_password("punchr.sqlite"), "punchr.sqlite");
        let err = resolve_location("mysql://root:hunter2@db/x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
