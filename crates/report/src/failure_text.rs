//! Failure reasons grouped by what went wrong rather than by whom. The store keeps every error's
//! reason ([`punchr_store::reason`]); SQL groups them and returns only the most frequent
//! [`MAX_REASON_ROWS`] groups with the total per outcome, so a report's memory does not grow with
//! the number of distinct error texts. This module merges groups that normalise to the same text
//! (rows stored before reasons were kept carry a cut raw text) and sums the tail.

use std::collections::HashMap;

use punchr_store::reason::failure_reason;

use crate::model::FailureReason;

/// How many reasons a report lists per table; the rest are summed as `(other reasons)`.
pub(crate) const MAX_REASONS: usize = 20;

/// How many `(outcome, reason)` groups SQL returns at most.
pub(crate) const MAX_REASON_ROWS: usize = 500;

/// Merges `(outcome, reason, count)` groups by normalised text; the `MAX_REASONS` most frequent
/// first, then per outcome what `totals` (failures per outcome) holds beyond them as
/// `(other reasons)`.
pub(crate) fn group_reasons(
    raw: Vec<(String, Option<String>, u64)>,
    totals: &HashMap<String, u64>,
) -> Vec<FailureReason> {
    let mut merged: HashMap<(String, String), u64> = HashMap::new();
    for (outcome, reason, count) in raw {
        *merged
            .entry((outcome, failure_reason(reason.as_deref())))
            .or_default() += count;
    }
    let mut reasons: Vec<FailureReason> = merged
        .into_iter()
        .map(|((outcome, reason), count)| FailureReason {
            outcome,
            reason,
            count,
        })
        .collect();
    reasons.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.outcome.cmp(&b.outcome))
            .then_with(|| a.reason.cmp(&b.reason))
    });
    reasons.truncate(MAX_REASONS);
    let mut listed: HashMap<&str, u64> = HashMap::new();
    for reason in &reasons {
        *listed.entry(reason.outcome.as_str()).or_default() += reason.count;
    }
    let mut other: Vec<FailureReason> = totals
        .iter()
        .filter_map(|(outcome, total)| {
            let rest = total.saturating_sub(listed.get(outcome.as_str()).copied().unwrap_or(0));
            (rest > 0).then(|| FailureReason {
                outcome: outcome.clone(),
                reason: "(other reasons)".to_owned(),
                count: rest,
            })
        })
        .collect();
    other.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.outcome.cmp(&b.outcome))
    });
    reasons.extend(other);
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(raw: &[(String, Option<String>, u64)]) -> HashMap<String, u64> {
        let mut totals = HashMap::new();
        for (outcome, _, count) in raw {
            *totals.entry(outcome.clone()).or_default() += count;
        }
        totals
    }

    #[test]
    fn equal_reasons_merge_and_the_tail_is_summed() {
        let mut raw = vec![
            (
                "FAILED".to_owned(),
                Some("dial 1.2.3.4:5 refused".to_owned()),
                3,
            ),
            (
                "FAILED".to_owned(),
                Some("dial 5.6.7.8:9 refused".to_owned()),
                4,
            ),
        ];
        for i in 0..30 {
            raw.push(("NO_STREAM".to_owned(), Some(format!("reason {i}")), 1));
        }
        let totals = totals(&raw);
        let grouped = group_reasons(raw, &totals);
        assert_eq!(grouped[0].reason, "dial <ip> refused");
        assert_eq!(grouped[0].count, 7);
        assert_eq!(grouped.len(), MAX_REASONS + 1);
        let other = grouped.last().unwrap();
        assert_eq!(
            (other.reason.as_str(), other.count),
            ("(other reasons)", 11)
        );
    }

    #[test]
    fn failures_beyond_the_rows_sql_returned_count_as_other() {
        let raw = vec![("FAILED".to_owned(), Some("refused".to_owned()), 5)];
        let totals = HashMap::from([("FAILED".to_owned(), 12), ("NO_STREAM".to_owned(), 3)]);
        let grouped = group_reasons(raw, &totals);
        let counts: Vec<(&str, &str, u64)> = grouped
            .iter()
            .map(|r| (r.outcome.as_str(), r.reason.as_str(), r.count))
            .collect();
        assert_eq!(
            counts,
            [
                ("FAILED", "refused", 5),
                ("FAILED", "(other reasons)", 7),
                ("NO_STREAM", "(other reasons)", 3)
            ]
        );
    }
}
