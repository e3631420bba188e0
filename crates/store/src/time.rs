use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as Unix nanoseconds, the unit of every time column.
pub fn now_unix_nanos() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX)
}
