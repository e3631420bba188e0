//! Which results a report covers, and how that becomes SQL.

use std::time::Duration;

use punchr_store::Store;
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
        store: &Store,
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

/// Reads a time bound: RFC 3339 (`2025-11-20T08:00:00Z`, `2025-11-20T09:00:00+01:00`), a date
/// (`2025-11-20`, midnight UTC), `now`, or a span back from `now_ns` (`90s`, `30m`, `24h`, `7d`,
/// `2w`). Returns Unix nanoseconds.
pub fn parse_time_bound(text: &str, now_ns: i64) -> Result<i64, ReportError> {
    let text = text.trim();
    let invalid = |reason: &str| ReportError::InvalidTime {
        input: text.to_owned(),
        reason: reason.to_owned(),
    };
    if text.eq_ignore_ascii_case("now") {
        return Ok(now_ns);
    }
    if let Some(span) = parse_span(text) {
        let span = span.map_err(|reason| invalid(&reason))?;
        let span_ns = i64::try_from(span.as_nanos()).map_err(|_| invalid("too far back"))?;
        return Ok(now_ns.saturating_sub(span_ns));
    }
    let parsed = if text.len() == 10 {
        OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &Rfc3339)
    } else {
        OffsetDateTime::parse(text, &Rfc3339)
    };
    let time = parsed.map_err(|_| {
        invalid("write RFC 3339 (2025-11-20T08:00:00Z), a date (2025-11-20), or a span back from now (30m, 24h, 7d)")
    })?;
    i64::try_from(time.unix_timestamp_nanos()).map_err(|_| invalid("out of range"))
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
