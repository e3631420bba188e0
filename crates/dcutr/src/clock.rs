//! One time source for every event: monotonic readings, converted to Unix time once.
//!
//! Each reading in this crate is a [`std::time::Instant`]. Durations (RTT, attempt length) are
//! differences of two instants, so a wall-clock step (NTP, a suspended laptop) cannot make them
//! negative. Unix nanoseconds, the unit of Punchr's wire protocol, come from one offset taken when
//! the [`Clock`] is made; all timestamps of one behaviour therefore agree with each other.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Converts [`Instant`]s into Unix nanoseconds through one fixed offset.
///
/// Copy it freely: every copy converts the same way. Use the clock of a
/// [`Behaviour`](crate::Behaviour) ([`Behaviour::clock`](crate::Behaviour::clock)) for a
/// measurement's own timestamps, so that they line up with the behaviour's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    origin: Instant,
    origin_unix_nanos: u64,
}

impl Clock {
    /// A clock whose offset is read now from the system's wall clock.
    pub fn new() -> Self {
        let origin = Instant::now();
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self::with_origin(origin, saturating_nanos(since_epoch))
    }

    /// A clock that maps `origin` to `origin_unix_nanos` (deterministic; for tests and replays).
    pub fn with_origin(origin: Instant, origin_unix_nanos: u64) -> Self {
        Self {
            origin,
            origin_unix_nanos,
        }
    }

    /// The current reading of the monotonic clock.
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// `at` in nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self, at: Instant) -> u64 {
        if at >= self.origin {
            self.origin_unix_nanos
                .saturating_add(saturating_nanos(at - self.origin))
        } else {
            self.origin_unix_nanos
                .saturating_sub(saturating_nanos(self.origin - at))
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_through_one_offset() {
        let origin = Instant::now();
        let clock = Clock::with_origin(origin, 1_000_000_000);
        assert_eq!(clock.unix_nanos(origin), 1_000_000_000);
        assert_eq!(
            clock.unix_nanos(origin + Duration::from_millis(3)),
            1_003_000_000
        );
        // Readings from before the clock was made are still representable.
        if let Some(earlier) = origin.checked_sub(Duration::from_nanos(5)) {
            assert_eq!(clock.unix_nanos(earlier), 999_999_995);
        }
    }

    #[test]
    fn system_clock_is_plausible() {
        let clock = Clock::new();
        // 2020-01-01 in Unix nanoseconds: the wall clock of any test machine is later.
        assert!(clock.unix_nanos(clock.now()) > 1_577_836_800_000_000_000);
    }
}
