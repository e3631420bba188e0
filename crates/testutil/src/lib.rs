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

/// A migrated, empty database for one test. Dropping it deletes a SQLite file; PostgreSQL test
/// databases live until the scratch server is stopped.
#[derive(Debug)]
pub struct TestDb {
    /// The store on the test database.
    pub store: Store,
    /// What to pass to `Store::open` (or a binary's `--db`) to reach the same database.
    pub location: String,
    _dir: Option<TempDir>,
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
        }
    }

    /// A fresh database on the test PostgreSQL server.
    pub async fn postgres() -> TestDb {
        let location = create_postgres_database().await;
        let store = Store::open(&location)
            .await
            .expect("open the PostgreSQL test database");
        TestDb {
            store,
            location,
            _dir: None,
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

/// Creates an empty database with a unique name on the test PostgreSQL server and returns its
/// URL.
pub async fn create_postgres_database() -> String {
    create_database_on(&postgres_admin_url()).await
}

/// Creates an empty database with a unique name on the server of `admin_url`; returns its URL.
pub async fn create_database_on(admin_url: &str) -> String {
    let name = format!("punchr_test_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to the test PostgreSQL server at {admin_url}: {e}"));
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create a test database");
    admin.close().await.ok();
    replace_database(admin_url, &name)
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
