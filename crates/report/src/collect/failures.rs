//! Why hole punches and attempts did not succeed: error texts counted in SQL, then normalised
//! and merged ([`crate::failure_text`]).

use sqlx::{AnyPool, Row};

use super::count;
use crate::failure_text::group_reasons;
use crate::filter::Scope;
use crate::model::FailureReason;
use crate::ReportError;

pub(super) struct Failures {
    pub(super) results: Vec<FailureReason>,
    pub(super) attempts: Vec<FailureReason>,
}

pub(super) async fn failure_reasons(
    pool: &AnyPool,
    scope: &Scope,
) -> Result<Failures, ReportError> {
    let condition = scope.condition("r");
    let result_sql = format!(
        "SELECT r.outcome, r.error, COUNT(*) FROM hole_punch_results r \
         WHERE {condition} AND r.outcome <> 'SUCCESS' GROUP BY 1, 2"
    );
    // Without a filter every attempt counts, and the join would only cost time.
    let attempt_sql = if scope.is_everything() {
        "SELECT a.outcome, a.error, COUNT(*) FROM hole_punch_attempts a \
         WHERE a.outcome NOT IN ('SUCCESS', 'DIRECT_DIAL') GROUP BY 1, 2"
            .to_owned()
    } else {
        format!(
            "SELECT a.outcome, a.error, COUNT(*) FROM hole_punch_results r \
             JOIN hole_punch_attempts a ON a.result_id = r.id \
             WHERE {condition} AND a.outcome NOT IN ('SUCCESS', 'DIRECT_DIAL') GROUP BY 1, 2"
        )
    };
    let (results, attempts) = tokio::try_join!(
        sqlx::query(&result_sql).fetch_all(pool),
        sqlx::query(&attempt_sql).fetch_all(pool),
    )?;
    let read =
        |rows: Vec<sqlx::any::AnyRow>| -> Result<Vec<(String, Option<String>, u64)>, sqlx::Error> {
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, count(row, 2)?)))
                .collect()
        };
    Ok(Failures {
        results: group_reasons(read(results)?),
        attempts: group_reasons(read(attempts)?),
    })
}
