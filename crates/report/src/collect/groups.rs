//! Splits of the facts by one column: outcomes over time, by remote agent, by client (API key
//! name), and by the lab's NAT type pair.

use std::collections::{BTreeMap, HashMap};

use sqlx::{AnyPool, Row};

use super::summary::SummaryRow;
use super::{count, outcome_of};
use crate::model::{GroupRow, NatPairRow, OutcomeCounts, TimeBucket};
use crate::ReportError;

/// How many agent versions a report lists; the rest are summed as `(other)`.
const MAX_AGENTS: usize = 12;

pub(super) fn over_time(summary: &[SummaryRow]) -> Vec<TimeBucket> {
    let mut buckets: BTreeMap<i64, OutcomeCounts> = BTreeMap::new();
    for row in summary {
        buckets
            .entry(row.bucket)
            .or_default()
            .add(row.outcome, row.results);
    }
    buckets
        .into_iter()
        .map(|(start, outcomes)| TimeBucket {
            start,
            published: outcomes.published_rate(),
            end_to_end: outcomes.end_to_end_rate(),
            outcomes,
        })
        .collect()
}

pub(super) async fn by_remote_agent(
    pool: &AnyPool,
    condition: &str,
) -> Result<Vec<GroupRow>, ReportError> {
    let rows = sqlx::query(&format!(
        "SELECT p.agent_version, g.outcome, CAST(SUM(g.n) AS BIGINT) FROM \
           (SELECT f.remote_peer_id, f.outcome, COUNT(*) AS n FROM report_facts f WHERE {condition} GROUP BY 1, 2) g \
         JOIN peers p ON p.id = g.remote_peer_id GROUP BY 1, 2"
    ))
    .fetch_all(pool)
    .await?;
    let mut groups: HashMap<String, OutcomeCounts> = HashMap::new();
    for row in &rows {
        let agent: Option<String> = row.try_get(0)?;
        let outcome: String = row.try_get(1)?;
        groups
            .entry(punchr_store::agent::release(agent.as_deref()))
            .or_default()
            .add(outcome_of(&outcome), count(row, 2)?);
    }
    Ok(largest_groups(groups, MAX_AGENTS, "(other)"))
}

pub(super) async fn by_client(
    pool: &AnyPool,
    summary: &[SummaryRow],
) -> Result<Vec<GroupRow>, ReportError> {
    let rows = sqlx::query("SELECT id, CASE WHEN anonymous THEN 'anonymous #' || CAST(id AS TEXT) ELSE name END FROM api_keys")
        .fetch_all(pool)
        .await?;
    let mut names: HashMap<i64, String> = HashMap::new();
    for row in &rows {
        names.insert(row.try_get(0)?, row.try_get(1)?);
    }
    let mut groups: HashMap<String, OutcomeCounts> = HashMap::new();
    for row in summary {
        let name = names
            .get(&row.api_key_id)
            .cloned()
            .unwrap_or_else(|| format!("key #{}", row.api_key_id));
        groups
            .entry(name)
            .or_default()
            .add(row.outcome, row.results);
    }
    Ok(largest_groups(groups, usize::MAX, ""))
}

pub(super) async fn by_nat_pair(
    pool: &AnyPool,
    condition: &str,
) -> Result<Vec<NatPairRow>, ReportError> {
    let labelled: i64 = sqlx::query("SELECT COUNT(*) FROM (SELECT 1 FROM lab_labels LIMIT 1) t")
        .fetch_one(pool)
        .await?
        .try_get(0)?;
    if labelled == 0 {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(&format!(
        "SELECT COALESCE(lc.nat_type, '?'), COALESCE(lr.nat_type, '?'), f.outcome, COUNT(*) \
         FROM report_facts f \
         JOIN peers c ON c.id = f.client_peer_id \
         JOIN peers p ON p.id = f.remote_peer_id \
         LEFT JOIN lab_labels lc ON lc.peer_id = c.peer_id \
         LEFT JOIN lab_labels lr ON lr.peer_id = p.peer_id \
         WHERE {condition} AND (lc.peer_id IS NOT NULL OR lr.peer_id IS NOT NULL) \
         GROUP BY 1, 2, 3"
    ))
    .fetch_all(pool)
    .await?;
    let mut pairs: BTreeMap<(String, String), OutcomeCounts> = BTreeMap::new();
    for row in &rows {
        let client: String = row.try_get(0)?;
        let remote: String = row.try_get(1)?;
        let outcome: String = row.try_get(2)?;
        pairs
            .entry((client, remote))
            .or_default()
            .add(outcome_of(&outcome), count(row, 3)?);
    }
    Ok(pairs
        .into_iter()
        .map(|((client_nat, remote_nat), outcomes)| NatPairRow {
            row: GroupRow::new(format!("{client_nat} → {remote_nat}"), outcomes),
            client_nat,
            remote_nat,
        })
        .collect())
}

/// Groups by total, largest first (ties by name); beyond `keep`, summed into `rest_key`.
pub(super) fn largest_groups(
    groups: HashMap<String, OutcomeCounts>,
    keep: usize,
    rest_key: &str,
) -> Vec<GroupRow> {
    let mut groups: Vec<(String, OutcomeCounts)> = groups.into_iter().collect();
    groups
        .sort_by(|(a_key, a), (b_key, b)| b.total().cmp(&a.total()).then_with(|| a_key.cmp(b_key)));
    let mut rest = OutcomeCounts::default();
    let mut rows = Vec::new();
    for (index, (key, outcomes)) in groups.into_iter().enumerate() {
        if index < keep {
            rows.push(GroupRow::new(key, outcomes));
        } else {
            rest.add_all(&outcomes);
        }
    }
    if rest.total() > 0 {
        rows.push(GroupRow::new(rest_key, rest));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use punchr_store::Outcome;

    #[test]
    fn small_groups_are_summed() {
        let mut groups = HashMap::new();
        for (name, n) in [("a", 5), ("b", 3), ("c", 2), ("d", 1)] {
            let mut counts = OutcomeCounts::default();
            counts.add(Outcome::Success, n);
            groups.insert(name.to_owned(), counts);
        }
        let rows = largest_groups(groups, 2, "(other)");
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "(other)"]);
        assert_eq!(rows[2].outcomes.success, 3);
    }
}
