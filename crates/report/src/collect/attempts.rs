//! Attempt numbers and the time from the relayed to the direct connection.
//!
//! The successful attempt of a SUCCESS result is its first attempt with outcome SUCCESS or
//! DIRECT_DIAL (the client stops after it, `punchr-original.md` §7.3). Time to direct = that
//! attempt's `ended_at` − the result's `connect_ended_at` (both taken by the client's clock).
//! Both are derived once per result into `report_facts` ([`super::facts`]); attempts are numbered
//! 1, 2, 3 … without gaps, so attempt n was made when a result has at least n.

use std::collections::BTreeMap;

use sqlx::{AnyPool, Row};

use super::summary::SummaryRow;
use super::{count, NANOS_PER_SECOND};
use crate::model::{AttemptRow, AttemptSplit, HistogramBin, TimeToDirect};
use crate::stats::{nearest_rank, Rate};
use crate::ReportError;

/// Upper bounds of the time-to-direct bins, seconds; a last bin takes the rest.
const BIN_BOUNDS: [f64; 8] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

/// Attempts per number: (made, successful in a SUCCESS result).
pub(super) type AttemptCounts = BTreeMap<i64, (u64, u64)>;

pub(super) fn attempt_counts(summary: &[SummaryRow]) -> AttemptCounts {
    let mut counts = AttemptCounts::new();
    for row in summary {
        for number in 1..=row.attempts {
            counts.entry(number).or_default().0 += row.results;
        }
        if let Some(number) = row.successful_attempt {
            counts.entry(number).or_default().1 += row.results;
        }
    }
    counts
}

/// The attempt split, given all SUCCESS results and those with a successful attempt.
pub(super) fn split(
    counts: AttemptCounts,
    successes: u64,
    with_successful_attempt: u64,
) -> AttemptSplit {
    AttemptSplit {
        rows: counts
            .into_iter()
            .map(|(attempt_number, (attempts, successful))| AttemptRow {
                attempt_number,
                attempts,
                successful,
                share_of_successes: Rate::new(successful.min(successes), successes),
                attempt_success_rate: Rate::new(successful, attempts),
            })
            .collect(),
        successes_without_successful_attempt: successes.saturating_sub(with_successful_attempt),
    }
}

/// One value per SUCCESS result with a successful attempt: nanoseconds to the direct connection.
fn time_to_direct_sql(condition: &str) -> String {
    format!("SELECT f.time_to_direct_ns AS ns FROM report_facts f WHERE {condition} AND f.time_to_direct_ns IS NOT NULL")
}

pub(super) async fn time_to_direct(
    pool: &AnyPool,
    condition: &str,
) -> Result<TimeToDirect, ReportError> {
    let values = time_to_direct_sql(condition);
    let mut bin_case = String::from("CASE");
    for (index, bound) in BIN_BOUNDS.iter().enumerate() {
        let bound_ns = (bound * NANOS_PER_SECOND as f64) as i64;
        bin_case.push_str(&format!(" WHEN ns < {bound_ns} THEN {index}"));
    }
    bin_case.push_str(&format!(" ELSE {} END", BIN_BOUNDS.len()));
    let rows = sqlx::query(&format!(
        "SELECT {bin_case} AS bin, COUNT(*) FROM ({values}) t GROUP BY 1"
    ))
    .fetch_all(pool)
    .await?;
    let mut bin_counts = vec![0u64; BIN_BOUNDS.len() + 1];
    for row in &rows {
        let bin: i64 = row.try_get(0)?;
        if let Some(slot) = usize::try_from(bin)
            .ok()
            .and_then(|b| bin_counts.get_mut(b))
        {
            *slot += count(row, 1)?;
        }
    }
    let total: u64 = bin_counts.iter().sum();
    let (p50_seconds, p90_seconds) = if total == 0 {
        (None, None)
    } else {
        let (p50_rank, p90_rank) = (nearest_rank(0.5, total), nearest_rank(0.9, total));
        let rows = sqlx::query(&format!(
            "SELECT rn, ns FROM (SELECT ns, ROW_NUMBER() OVER (ORDER BY ns) AS rn FROM ({values}) t) ranked \
             WHERE rn IN ({p50_rank}, {p90_rank})"
        ))
        .fetch_all(pool)
        .await?;
        let mut at_rank = BTreeMap::new();
        for row in &rows {
            let rank: i64 = row.try_get(0)?;
            let ns: i64 = row.try_get(1)?;
            at_rank.insert(rank as u64, ns as f64 / NANOS_PER_SECOND as f64);
        }
        (
            at_rank.get(&p50_rank).copied(),
            at_rank.get(&p90_rank).copied(),
        )
    };
    Ok(TimeToDirect {
        count: total,
        p50_seconds,
        p90_seconds,
        histogram: histogram_bins(&bin_counts),
    })
}

fn histogram_bins(counts: &[u64]) -> Vec<HistogramBin> {
    let mut bins = Vec::with_capacity(counts.len());
    let mut from = 0.0;
    for (index, &count) in counts.iter().enumerate() {
        let to = BIN_BOUNDS.get(index).copied();
        let label = match to {
            Some(to) if index == 0 => format!("< {to} s"),
            Some(to) => format!("{from}–{to} s"),
            None => format!("≥ {from} s"),
        };
        bins.push(HistogramBin {
            label,
            from_seconds: from,
            to_seconds: to,
            count,
        });
        from = to.unwrap_or(from);
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_everything_once() {
        let bins = histogram_bins(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let labels: Vec<&str> = bins.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "< 0.25 s",
                "0.25–0.5 s",
                "0.5–1 s",
                "1–2 s",
                "2–4 s",
                "4–8 s",
                "8–16 s",
                "16–32 s",
                "≥ 32 s"
            ]
        );
        assert_eq!(bins[8].to_seconds, None);
        assert_eq!(bins.iter().map(|b| b.count).sum::<u64>(), 45);
    }

    #[test]
    fn shares_count_against_all_successes() {
        let mut counts = AttemptCounts::new();
        counts.insert(1, (50, 18));
        counts.insert(2, (30, 8));
        counts.insert(3, (20, 4));
        let split = split(counts, 31, 30);
        assert_eq!(split.rows[0].share_of_successes.trials, 31);
        assert_eq!(split.rows[0].share_of_successes.successes, 18);
        assert_eq!(split.rows[2].attempt_success_rate.value, Some(0.2));
        assert_eq!(split.successes_without_successful_attempt, 1);
    }
}
