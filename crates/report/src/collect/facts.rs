//! `report_facts`: one narrow row per result with everything the reports aggregate, so that a
//! report over millions of results scans one small table instead of joining attempts and
//! addresses each time (migration `0004_report.sql`).
//!
//! Results never change once stored, so the table is filled incrementally: every report (and the
//! dashboard, every 15 s) first derives the facts of the results it has not seen, in chunks of
//! ids, set-based in SQL. A result committed late (its transaction took an id before a faster one
//! committed) is still found: each refresh looks [`LOOKBACK_IDS`] ids behind the last fact.

use punchr_store::{Engine, Store};
use sqlx::Row;
use tokio::task::JoinSet;

use crate::ReportError;
use punchr_types::log_target::REPORT;

/// Results per INSERT … SELECT.
const CHUNK_IDS: i64 = 100_000;

/// How far behind the newest fact a refresh looks for results that committed late.
const LOOKBACK_IDS: i64 = 10_000;

/// Transport bits of `report_facts.transports`, with their labels.
pub(super) const TRANSPORT_BITS: [(i64, &str); 6] = [
    (1, "TCP"),
    (2, "QUIC"),
    (4, "WebTransport"),
    (8, "WebRTC"),
    (16, "WebSocket"),
    (32, "other"),
];

/// IP version bits of `report_facts.ip_versions`, with their labels.
pub(super) const IP_BITS: [(i64, &str); 3] = [(1, "IPv4"), (2, "IPv6"), (4, "other")];

/// Derives the facts of every stored result that has none yet; returns how many were added.
/// PostgreSQL derives two chunks at a time (one per core of a small server); SQLite has one
/// writer anyway.
pub(crate) async fn refresh(store: &Store) -> Result<u64, ReportError> {
    let pool = store.pool();
    let parallel = match store.engine() {
        Engine::Postgres => 2,
        Engine::Sqlite => 1,
    };
    let row = sqlx::query(
        "SELECT (SELECT COALESCE(MAX(result_id), 0) FROM report_facts), \
                (SELECT COALESCE(MAX(id), 0) FROM hole_punch_results)",
    )
    .fetch_one(pool)
    .await?;
    let (newest_fact, newest_result): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    let mut added = 0;
    let mut low = (newest_fact - LOOKBACK_IDS).max(0);
    let mut running = JoinSet::new();
    while low < newest_result || !running.is_empty() {
        while low < newest_result && running.len() < parallel {
            let high = (low + CHUNK_IDS).min(newest_result);
            let (pool, sql) = (
                pool.clone(),
                punchr_store::facts::derive_facts_sql(low, high),
            );
            running.spawn(async move { sqlx::query(&sql).execute(&pool).await });
            low = high;
        }
        if let Some(done) = running.join_next().await {
            added += done
                .expect("a derivation task does not panic")?
                .rows_affected();
        }
    }
    if added > 0 {
        tracing::debug!(target: REPORT, event = "facts_derived", added, "derived report facts");
    }
    Ok(added)
}

/// The labels of the bits set in `mask`, or `none` for an empty set.
pub(super) fn labels(mask: i64, bits: &[(i64, &'static str)]) -> Vec<&'static str> {
    let labels: Vec<&'static str> = bits
        .iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, label)| *label)
        .collect();
    if labels.is_empty() {
        vec!["none"]
    } else {
        labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_name_their_groups() {
        assert_eq!(labels(3, &TRANSPORT_BITS), ["TCP", "QUIC"]);
        assert_eq!(labels(0, &TRANSPORT_BITS), ["none"]);
        assert_eq!(labels(6, &IP_BITS), ["IPv6", "other"]);
    }
}
