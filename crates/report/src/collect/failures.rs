//! Why hole punches and attempts did not succeed: the stored failure reasons counted in SQL, the
//! most frequent [`MAX_REASON_ROWS`] groups and the totals per outcome read, then merged
//! ([`crate::failure_text`]). The rows read are bounded, whatever the number of distinct error
//! texts clients sent.

use std::collections::HashMap;

use sqlx::{AnyPool, Row};

use super::count;
use crate::failure_text::{group_reasons, MAX_REASON_ROWS};
use crate::filter::Scope;
use crate::model::FailureReason;
use crate::ReportError;

pub(super) struct Failures {
    pub(super) results: Vec<FailureReason>,
    pub(super) attempts: Vec<FailureReason>,
}

/// The reason column; rows stored before migration 0013 fall back to a cut error text.
fn reason_column(alias: &str) -> String {
    format!(
        "COALESCE({alias}.reason, SUBSTR({alias}.error, 1, {}))",
        punchr_store::reason::MAX_REASON_CHARS
    )
}

pub(super) async fn failure_reasons(
    pool: &AnyPool,
    scope: &Scope,
) -> Result<Failures, ReportError> {
    let condition = scope.condition("r");
    let results_from =
        format!("FROM hole_punch_results r WHERE {condition} AND r.outcome <> 'SUCCESS'");
    // Without a filter every attempt counts, and the join would only cost time.
    let attempts_from = if scope.is_everything() {
        "FROM hole_punch_attempts a WHERE a.outcome NOT IN ('SUCCESS', 'DIRECT_DIAL')".to_owned()
    } else {
        format!(
            "FROM hole_punch_results r JOIN hole_punch_attempts a ON a.result_id = r.id \
             WHERE {condition} AND a.outcome NOT IN ('SUCCESS', 'DIRECT_DIAL')"
        )
    };
    let (results, attempts) = tokio::try_join!(
        reasons(pool, "r", &results_from),
        reasons(pool, "a", &attempts_from),
    )?;
    Ok(Failures { results, attempts })
}

/// The reasons of the rows `from` selects (`alias` names the table holding `outcome`, `reason`
/// and `error`).
async fn reasons(
    pool: &AnyPool,
    alias: &str,
    from: &str,
) -> Result<Vec<FailureReason>, ReportError> {
    let reason = reason_column(alias);
    let groups_sql = format!(
        "SELECT {alias}.outcome, {reason}, COUNT(*) {from} GROUP BY 1, 2 \
         ORDER BY 3 DESC, 1, 2 LIMIT {MAX_REASON_ROWS}"
    );
    let totals_sql = format!("SELECT {alias}.outcome, COUNT(*) {from} GROUP BY 1");
    let (groups, totals) = tokio::try_join!(
        sqlx::query(&groups_sql).fetch_all(pool),
        sqlx::query(&totals_sql).fetch_all(pool),
    )?;
    let groups = groups
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, count(row, 2)?)))
        .collect::<Result<Vec<(String, Option<String>, u64)>, sqlx::Error>>()?;
    let totals = totals
        .iter()
        .map(|row| Ok((row.try_get(0)?, count(row, 1)?)))
        .collect::<Result<HashMap<String, u64>, sqlx::Error>>()?;
    Ok(group_reasons(groups, &totals))
}
