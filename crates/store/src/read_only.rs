//! A handle on the database that can only read, for reports and the dashboard.
//!
//! Its sessions are read-only in the database itself (SQLite's `PRAGMA query_only`,
//! PostgreSQL's `default_transaction_read_only`), so whatever SQL a report runs, it writes
//! nothing: the store stays the only writer of every table, `report_facts` included.

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

use crate::engine::{resolve_location, ACQUIRE_TIMEOUT};
use crate::{Engine, Result, Store, StoreError};

/// What each connection runs first: the engine's settings, then read-only for good. (SQLite's
/// WAL mode is the file's, set by the writer that created it; a read-only session cannot and
/// need not set it.)
fn read_only_statement(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => {
            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA query_only = ON;"
        }
        Engine::Postgres => "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    }
}

fn options(engine: Engine, max_connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .max_connections(max_connections.max(1))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute(read_only_statement(engine)).await?;
                Ok(())
            })
        })
}

/// A read-only handle on a Punchr database. Cheap to clone; clones share one pool.
#[derive(Debug, Clone)]
pub struct ReadOnlyStore {
    pool: AnyPool,
    engine: Engine,
}

impl ReadOnlyStore {
    /// Connects to the database at `location` (as [`Store::open`] takes it, which must have
    /// created it) with a pool of at most `max_connections`: a pool of its own, so that reports
    /// never take the connections that store results.
    pub async fn connect(location: &str, max_connections: u32) -> Result<ReadOnlyStore> {
        sqlx::any::install_default_drivers();
        let (engine, url) = resolve_location(location)?;
        let connect_error = |source| StoreError::Connect {
            location: crate::redact_password(location),
            source,
        };
        // One plain connection first, as the writer does: a wrong password or a missing file is
        // an immediate, precise error rather than a pool that keeps retrying.
        AnyConnection::connect(&url)
            .await
            .map_err(connect_error)?
            .close()
            .await
            .map_err(connect_error)?;
        let pool = options(engine, max_connections)
            .connect(&url)
            .await
            .map_err(connect_error)?;
        Ok(ReadOnlyStore { pool, engine })
    }

    /// The pool, for SELECTs.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The engine of the database.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The key with this secret if it exists and is not revoked (the dashboard's personal
    /// page), as [`Store::authenticate`].
    pub async fn authenticate(
        &self,
        secret: &crate::ApiKeySecret,
    ) -> Result<Option<crate::ApiKey>> {
        crate::keys::authenticate(&self.pool, secret).await
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Store {
    /// A read-only handle on this store's database, with a small pool of its own that connects
    /// when first used. Call it inside a Tokio runtime: the pool starts its upkeep task there.
    pub fn read_only(&self) -> ReadOnlyStore {
        let connect = (*self.pool().connect_options()).clone();
        ReadOnlyStore {
            pool: options(self.engine(), 2).connect_lazy_with(connect),
            engine: self.engine(),
        }
    }
}
