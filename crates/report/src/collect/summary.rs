//! One scan of the facts in scope, grouped by every column the per-outcome splits need (time
//! bucket, outcome, transports, IP versions, attempts, successful attempt, API key). The splits
//! over time, by transport and IP version, by attempt and by client are sums over these groups,
//! so a report reads a million facts once for all of them, not once per split.

use punchr_store::Outcome;
use sqlx::{AnyPool, Row};

use super::{count, outcome_of, NANOS_PER_SECOND};
use crate::ReportError;

/// Results that share every grouped column.
#[derive(Debug, Clone, Copy)]
pub(super) struct SummaryRow {
    /// Start of the time bucket, Unix seconds.
    pub(super) bucket: i64,
    pub(super) outcome: Outcome,
    /// Bit set, see [`punchr_store::facts::TRANSPORT_BITS`].
    pub(super) transports: i64,
    /// Bit set, see [`punchr_store::facts::IP_BITS`].
    pub(super) ip_versions: i64,
    pub(super) attempts: i64,
    pub(super) successful_attempt: Option<i64>,
    pub(super) api_key_id: i64,
    /// How many results.
    pub(super) results: u64,
}

pub(super) async fn summary(
    pool: &AnyPool,
    condition: &str,
    bucket_ns: i64,
) -> Result<Vec<SummaryRow>, ReportError> {
    let rows = sqlx::query(&format!(
        "SELECT (f.created_at / {bucket_ns}) * {bucket_ns}, f.outcome, f.transports, f.ip_versions, f.attempts, \
           f.successful_attempt, f.api_key_id, COUNT(*) \
         FROM report_facts f WHERE {condition} GROUP BY 1, 2, 3, 4, 5, 6, 7"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let bucket: i64 = row.try_get(0)?;
            let outcome: String = row.try_get(1)?;
            Ok(SummaryRow {
                bucket: bucket / NANOS_PER_SECOND,
                outcome: outcome_of(&outcome),
                transports: row.try_get(2)?,
                ip_versions: row.try_get(3)?,
                attempts: row.try_get(4)?,
                successful_attempt: row.try_get(5)?,
                api_key_id: row.try_get(6)?,
                results: count(row, 7)?,
            })
        })
        .collect()
}
