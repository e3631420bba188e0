//! Which results a report covers, and how that becomes SQL.

use std::time::Duration;

use punchr_store::ReadOnlyStore;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::ReportError;

/// Which results to report on. Times are Unix nanoseconds and apply to when the server stored a
/// result (`hole_punch_results.created_at`): a client that delivers late from its outbox is
/// counted when the result arrives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFilter {
    /// Results stored at or after this time.
    pub since: Option<i64>,
    /// Results stored before this time.
    pub until: Option<i64>,
    /// Only results reported with API keys of this name.
    pub api_key_name: Option<String>,
    /// Only results reported with this API key (the personal page).
    pub api_key_id: Option<i64>,
    /// Width of the time buckets in seconds; chosen from the data's time span when absent.
    pub bucket_seconds: Option<i64>,
}

/// A filter resolved against the database: key names turned into ids.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    since: Option<i64>,
    until: Option<i64>,
    api_key_ids: Option<Vec<i64>>,
}

impl Scope {
    pub(crate) async fn resolve(
        store: &ReadOnlyStore,
        filter: &ReportFilter,
    ) -> Result<Scope, ReportError> {
        let mut ids: Option<Vec<i64>> = filter.api_key_id.map(|id| vec![id]);
        if let Some(name) = &filter.api_key_name {
            let rows = sqlx::query("SELECT id FROM api_keys WHERE name = $1 ORDER BY id")
                .bind(name)
                .fetch_all(store.pool())
                .await?;
            if rows.is_empty() {
                return Err(ReportError::UnknownKeyName(name.clone()));
            }
            let named: Vec<i64> = rows
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?;
            ids = Some(match ids {
                Some(by_id) => by_id.into_iter().filter(|id| named.contains(id)).collect(),
                None => named,
            });
        }
        Ok(Scope {
            since: filter.since,
            until: filter.until,
            api_key_ids: ids,
        })
    }

    /// Whether every result is in scope.
    pub(crate) fn is_everything(&self) -> bool {
        self.since.is_none() && self.until.is_none() && self.api_key_ids.is_none()
    }

    /// The SQL condition selecting the results in scope from `hole_punch_results` or
    /// `report_facts` (same column names) aliased `alias`. Only integers this crate produced are written into it, so it needs no binding.
    pub(crate) fn condition(&self, alias: &str) -> String {
        let mut parts = Vec::new();
        if let Some(since) = self.since {
            parts.push(format!("{alias}.created_at >= {since}"));
        }
        if let Some(until) = self.until {
            parts.push(format!("{alias}.created_at < {until}"));
        }
        if let Some(ids) = &self.api_key_ids {
            if ids.is_empty() {
                parts.push("1 = 0".to_owned());
            } else {
                let list: Vec<String> = ids.iter().map(i64::to_string).collect();
                parts.push(format!("{alias}.api_key_id IN ({})", list.join(", ")));
            }
        }
        if parts.is_empty() {
            "1 = 1".to_owned()
        } else {
            parts.join(" AND ")
        }
    }
}

/// A time bound as written, before it is resolved against a clock: equal bounds written
/// differently (`1d`, `24h`, `024h`) are equal values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TimeBound {
    /// This long before now.
    Ago(Duration),
    /// This Unix time, nanoseconds.
    At(i64),
}

impl TimeBound {
    /// Unix nanoseconds, relative bounds counted back from `now_ns`.
    pub(crate) fn resolve(self, now_ns: i64) -> i64 {
        match self {
            TimeBound::Ago(span) => {
                now_ns.saturating_sub(i64::try_from(span.as_nanos()).unwrap_or(i64::MAX))
            }
            TimeBound::At(ns) => ns,
        }
    }
}

/// Reads a time bound: RFC 3339 (`2025-11-20T08:00:00Z`, `2025-11-20T09:00:00+01:00`), a date
/// (`2025-11-20`, midnight UTC), `now`, or a span back from now (`90s`, `30m`, `24h`, `7d`,
/// `2w`).
pub(crate) fn parse_bound(text: &str) -> Result<TimeBound, ReportError> {
    let text = text.trim();
    let invalid = |reason: &str| ReportError::InvalidTime {
        input: text.to_owned(),
        reason: reason.to_owned(),
    };
    if text.eq_ignore_ascii_case("now") {
        return Ok(TimeBound::Ago(Duration::ZERO));
    }
    if let Some(span) = parse_span(text) {
        let span = span.map_err(|reason| invalid(&reason))?;
        i64::try_from(span.as_nanos()).map_err(|_| invalid("too far back"))?;
        return Ok(TimeBound::Ago(span));
    }
    let parsed = if text.len() == 10 {
        OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &Rfc3339)
    } else {
        OffsetDateTime::parse(text, &Rfc3339)
    };
    let time = parsed.map_err(|_| {
        invalid("write RFC 3339 (2025-11-20T08:00:00Z), a date (2025-11-20), or a span back from now (30m, 24h, 7d)")
    })?;
    i64::try_from(time.unix_timestamp_nanos())
        .map(TimeBound::At)
        .map_err(|_| invalid("out of range"))
}

/// Reads a time bound (see [`parse_bound`] for the forms) and returns Unix nanoseconds, spans
/// counted back from `now_ns`.
pub fn parse_time_bound(text: &str, now_ns: i64) -> Result<i64, ReportError> {
    parse_bound(text).map(|bound| bound.resolve(now_ns))
}

/// The widest time bucket a report accepts: a year.
pub const MAX_BUCKET_SECONDS: i64 = 366 * 86_400;

/// The most time buckets one report may hold: a narrower bucket over the results in scope is
/// refused ([`ReportError::TooManyBuckets`]) rather than computed, serialised and sent.
pub const MAX_BUCKETS: i64 = 1_000;

/// Reads a bucket width (`5m`, `1h`, `1d`): whole seconds, 1 s to [`MAX_BUCKET_SECONDS`].
pub fn parse_bucket(text: &str) -> Result<i64, ReportError> {
    let invalid = |reason: &str| ReportError::InvalidBucket {
        input: text.to_owned(),
        reason: reason.to_owned(),
    };
    match parse_span(text.trim()) {
        Some(Ok(span)) => check_bucket(i64::try_from(span.as_secs()).unwrap_or(i64::MAX))
            .map_err(|_| invalid(&bucket_range())),
        Some(Err(reason)) => Err(invalid(&reason)),
        None => Err(invalid("not a width; write e.g. 5m, 1h or 1d")),
    }
}

fn bucket_range() -> String {
    format!("a bucket is 1 s to {} d wide", MAX_BUCKET_SECONDS / 86_400)
}

/// Refuses a bucket width outside 1 s ..= [`MAX_BUCKET_SECONDS`] (its nanoseconds must fit
/// the SQL that groups by it).
pub(crate) fn check_bucket(seconds: i64) -> Result<i64, ReportError> {
    if (1..=MAX_BUCKET_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(ReportError::InvalidBucket {
            input: format!("{seconds}s"),
            reason: bucket_range(),
        })
    }
}

/// A span like `24h`: `None` when `text` does not look like one.
pub(crate) fn parse_span(text: &str) -> Option<Result<Duration, String>> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    if split == 0 {
        return None;
    }
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    Some(
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(seconds_per_unit))
            .map(Duration::from_secs)
            .ok_or_else(|| "number too large".to_owned()),
    )
}

/// Unix nanoseconds as RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(unix_ns: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_ns.div_euclid(1_000_000_000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix_ns.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000_000_000_000;

    #[test]
    fn spans_count_back_from_now() {
        assert_eq!(
            parse_time_bound("24h", NOW).unwrap(),
            NOW - 86_400 * 1_000_000_000
        );
        assert_eq!(
            parse_time_bound("30m", NOW).unwrap(),
            NOW - 1_800 * 1_000_000_000
        );
        assert_eq!(
            parse_time_bound("7d", NOW).unwrap(),
            NOW - 7 * 86_400 * 1_000_000_000
        );
        assert_eq!(parse_time_bound("now", NOW).unwrap(), NOW);
    }

    #[test]
    fn rfc3339_and_dates_are_absolute() {
        assert_eq!(
            parse_time_bound("2025-11-24T16:00:00Z", NOW).unwrap(),
            1_764_000_000_000_000_000
        );
        assert_eq!(
            parse_time_bound("2025-11-24T17:00:00+01:00", NOW).unwrap(),
            1_764_000_000_000_000_000
        );
        assert_eq!(
            parse_time_bound("2025-11-24", NOW).unwrap(),
            1_763_942_400_000_000_000
        );
        assert_eq!(rfc3339(1_764_000_000_000_000_000), "2025-11-24T16:00:00Z");
    }

    #[test]
    fn bad_times_say_what_to_write() {
        let error = parse_time_bound("yesterday", NOW).unwrap_err().to_string();
        assert!(error.contains("RFC 3339"), "{error}");
        assert!(parse_time_bound("5y", NOW).is_err());
    }

    #[test]
    fn bounds_written_differently_are_equal() {
        assert_eq!(parse_bound("1d").unwrap(), parse_bound("24h").unwrap());
        assert_eq!(parse_bound("01s").unwrap(), parse_bound("1s").unwrap());
        assert_eq!(
            parse_bound("2025-11-24").unwrap(),
            parse_bound("2025-11-24T00:00:00Z").unwrap()
        );
        assert_eq!(parse_bound("now").unwrap(), parse_bound("0s").unwrap());
    }

    #[test]
    fn buckets_are_bounded_and_never_overflow() {
        assert_eq!(parse_bucket("5m").unwrap(), 300);
        assert_eq!(parse_bucket("0005m").unwrap(), 300);
        for text in [
            "0s",
            "367d",
            "9223372036854775807s",
            "18446744073709551615w",
            "99999999999999999999999s",
            "soon",
        ] {
            let error = parse_bucket(text).unwrap_err().to_string();
            assert!(error.contains("bucket"), "{text}: {error}");
        }
        assert!(check_bucket(i64::MAX).is_err());
        assert!(check_bucket(-1).is_err());
    }

    #[test]
    fn conditions_hold_only_integers() {
        let scope = Scope {
            since: Some(5),
            until: Some(9),
            api_key_ids: Some(vec![1, 2]),
        };
        assert_eq!(
            scope.condition("r"),
            "r.created_at >= 5 AND r.created_at < 9 AND r.api_key_id IN (1, 2)"
        );
        let everything = Scope {
            since: None,
            until: None,
            api_key_ids: None,
        };
        assert_eq!(everything.condition("r"), "1 = 1");
    }
}
