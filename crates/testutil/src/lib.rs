//! Test helpers shared by every crate's tests: a fresh database on each engine.
//!
//! Every storage-facing test runs twice, once on a scratch SQLite file and once on a fresh
//! database of the test PostgreSQL server, through [`on_both_engines!`]. The server is started
//! once per test run by `scripts/pg-scratch start` (which `scripts/test` and `.ci/run` call) and
//! found through `PUNCHR_TEST_POSTGRES_URL`. A missing server fails the PostgreSQL tests with a
//! message saying how to start it: they never pass by skipping.

pub mod disk;
pub mod fixtures;
pub mod http;
pub mod libp2p_peers;
pub mod logs;
pub mod postgres;
pub mod server;
pub mod sim;

use punchr_store::{Engine, Store};
use sqlx::{Connection, Executor};
use tempfile::TempDir;

/// The environment variable holding the admin URL of the test PostgreSQL server.
pub const POSTGRES_URL_VAR: &str = "PUNCHR_TEST_POSTGRES_URL";

/// A loopback TCP port that was free a moment ago, for a process a test starts with a fixed port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// An error with every error it was caused by, `: `-separated: a test that expects a failure for
/// one cause (an untrusted certificate, a refused connection) asserts on the cause, which
/// transport errors keep in their sources rather than in their own message.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A migrated, empty database for one test. Dropping it deletes the SQLite file or the
/// PostgreSQL database (see [`PostgresDatabase`]).
#[derive(Debug)]
pub struct TestDb {
    /// The store on the test database.
    pub store: Store,
    /// What to pass to `Store::open` (or a binary's `--db`) to reach the same database.
    pub location: String,
    _dir: Option<TempDir>,
    _postgres: Option<PostgresDatabase>,
}

impl TestDb {
    /// A fresh database on `engine`.
    pub async fn new(engine: Engine) -> TestDb {
        match engine {
            Engine::Sqlite => Self::sqlite().await,
            Engine::Postgres => Self::postgres().await,
        }
    }

    /// A fresh SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let location = dir.path().join("punchr.sqlite").display().to_string();
        let store = Store::open(&location)
            .await
            .expect("open the SQLite test database");
        TestDb {
            store,
            location,
            _dir: Some(dir),
            _postgres: None,
        }
    }

    /// A fresh database on the test PostgreSQL server.
    pub async fn postgres() -> TestDb {
        let database = PostgresDatabase::create().await;
        let location = database.url().to_owned();
        let store = Store::open(&location)
            .await
            .expect("open the PostgreSQL test database");
        TestDb {
            store,
            location,
            _dir: None,
            _postgres: Some(database),
        }
    }

    /// The engine under test.
    pub fn engine(&self) -> Engine {
        self.store.engine()
    }
}

/// The admin URL of the test PostgreSQL server; panics with instructions when it is not set.
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set, so the PostgreSQL half of this test cannot run. \
             Run the whole suite with `scripts/test`, or start a scratch server with \
             `eval \"$(scripts/pg-scratch start)\"` and run cargo test again."
        )
    })
}

/// An empty database with a unique name on a PostgreSQL server, dropped with it.
///
/// The suite creates hundreds of them (every storage test runs on PostgreSQL too, some with
/// 100 000 results); kept until the scratch server stopped, they filled a CI machine's disk
/// halfway through the run. A database whose owner panicked is kept, so a failed test's data can
/// be looked at; its name is printed.
#[derive(Debug)]
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    /// Creates one on the test PostgreSQL server ([`POSTGRES_URL_VAR`]).
    pub async fn create() -> PostgresDatabase {
        Self::create_on(&postgres_admin_url()).await
    }

    /// Creates one on the server of `admin_url`.
    pub async fn create_on(admin_url: &str) -> PostgresDatabase {
        let name = format!("punchr_test_{:016x}", rand::random::<u64>());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("connect to the test PostgreSQL server at {admin_url}: {e}")
            });
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create a test database");
        admin.close().await.ok();
        PostgresDatabase {
            url: replace_database(admin_url, &name),
            admin_url: admin_url.to_owned(),
            name,
        }
    }

    /// Its URL, for `Store::open` or a binary's `--db`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "kept the PostgreSQL database {} of a failed test",
                self.name
            );
            return;
        }
        // Drop runs inside the test's runtime, which cannot block on its own futures: the
        // statement runs on a thread of its own. FORCE ends the connections still open on it
        // (a store's pool closes its connections lazily).
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                admin.close().await.ok();
                Ok::<_, String>(())
            })
        })
        .join();
        // A server that is gone already (a test's private one, stopped first) took the
        // database with it.
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop the test database {}: {error}", self.name);
        }
    }
}

/// `url` with its database name replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|i| start + i))
        .unwrap_or(base.len());
    let mut replaced = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        replaced.push('?');
        replaced.push_str(query);
    }
    replaced
}

/// Runs each listed `async fn(TestDb)` on a SQLite and on a PostgreSQL database, as two tests
/// named `<fn>::sqlite` and `<fn>::postgres`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::TestDb::sqlite().await).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::TestDb::postgres().await).await
                }
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5433/postgres", "x"),
            "postgres://postgres@127.0.0.1:5433/x"
        );
        assert_eq!(
            replace_database("postgres://u:p@h:1/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:1/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://h:1", "x"), "postgres://h:1/x");
    }
}
