//! Times as Punchr records them: Unix nanoseconds in `i64`, the unit of every time column and,
//! as `u64`, of the wire (`DESIGN.md`, Conventions).

use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time as Unix nanoseconds (until the year 2262).
pub type UnixNanos = i64;

/// The current time as Unix nanoseconds.
pub fn now_unix_nanos() -> UnixNanos {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX)
}
