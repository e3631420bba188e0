//! Whether the database takes writes, for `/readyz`.
//!
//! A full disk or a read-only database still answers the `SELECT 1` of the readiness check, so
//! the service also notes writes the database refused for such a reason. Readiness reports the
//! refusal for [`REMEMBERED`] after the last one, or until a write succeeds: long enough for an
//! operator or a load balancer to see it, short enough that a server nobody writes to any more
//! (taken out of rotation) comes back and tries again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a refused write keeps the server "not ready".
pub(crate) const REMEMBERED: Duration = Duration::from_secs(30);

/// The latest refused write, if any.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    refused: Mutex<Option<(Instant, &'static str)>>,
}

impl WriteHealth {
    /// The database refused a write because of `why` (e.g. "database storage is full").
    pub(crate) fn refused(&self, why: &'static str) {
        *self.lock() = Some((Instant::now(), why));
    }

    /// A write succeeded: the database takes writes again.
    pub(crate) fn accepted(&self) {
        *self.lock() = None;
    }

    /// Why writes fail, if one was refused within [`REMEMBERED`].
    pub(crate) fn problem(&self) -> Option<&'static str> {
        self.lock()
            .filter(|(at, _)| at.elapsed() < REMEMBERED)
            .map(|(_, why)| why)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, &'static str)>> {
        self.refused
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
