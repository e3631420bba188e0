//! Splits by agent family ([`punchr_store::agent`]): of the client host that punched (ours, the
//! original Rust client, the original Go client) and of the remote that was punched (kubo,
//! go-libp2p by DCUtR role era, rust-libp2p, js-libp2p …). Each group carries both success
//! rates, the attempt numbers its successes came on and the transports of the direct
//! connections they made, so a field campaign can tell whether one family punches worse or
//! only later.
//!
//! One query groups the facts in scope by (client agent, remote agent, outcome, successful
//! attempt, transports); the agent strings are classified here, in Rust, because the families
//! are a table of prefixes, not something SQL should know.

use std::collections::{BTreeMap, HashMap};

use punchr_store::agent::Agent;
use punchr_store::Outcome;
use sqlx::{AnyPool, Row};

use super::facts::transport_labels;
use super::{count, outcome_of};
use crate::model::{FamilyRow, GroupRow, OutcomeCounts};
use crate::ReportError;

/// How many remote families a report lists; the rest are summed as `(other)`.
const MAX_REMOTE_FAMILIES: usize = 16;

/// Both splits.
pub(super) struct FamilySplits {
    pub(super) by_client: Vec<FamilyRow>,
    pub(super) by_remote: Vec<FamilyRow>,
}

/// What one family group gathers.
#[derive(Debug, Default)]
struct Tally {
    outcomes: OutcomeCounts,
    by_attempt: BTreeMap<String, u64>,
    by_transport: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, outcome: Outcome, attempt: Option<i64>, transports: i64, results: u64) {
        self.outcomes.add(outcome, results);
        if outcome != Outcome::Success {
            return;
        }
        let attempt = attempt.map_or_else(|| "none".to_owned(), |n| n.to_string());
        *self.by_attempt.entry(attempt).or_default() += results;
        for label in transport_labels(transports) {
            *self.by_transport.entry(label.to_owned()).or_default() += results;
        }
    }

    fn merge(&mut self, other: Tally) {
        self.outcomes.add_all(&other.outcomes);
        for (key, n) in other.by_attempt {
            *self.by_attempt.entry(key).or_default() += n;
        }
        for (key, n) in other.by_transport {
            *self.by_transport.entry(key).or_default() += n;
        }
    }
}

pub(super) async fn by_family(
    pool: &AnyPool,
    condition: &str,
) -> Result<FamilySplits, ReportError> {
    let rows = sqlx::query(&format!(
        "SELECT c.agent_version, p.agent_version, g.outcome, g.successful_attempt, g.transports, \
                CAST(SUM(g.n) AS BIGINT) FROM \
           (SELECT f.client_peer_id, f.remote_peer_id, f.outcome, f.successful_attempt, f.transports, \
                   COUNT(*) AS n \
            FROM report_facts f WHERE {condition} GROUP BY 1, 2, 3, 4, 5) g \
         JOIN peers c ON c.id = g.client_peer_id \
         JOIN peers p ON p.id = g.remote_peer_id \
         GROUP BY 1, 2, 3, 4, 5"
    ))
    .fetch_all(pool)
    .await?;
    let mut clients: HashMap<String, Tally> = HashMap::new();
    let mut remotes: HashMap<String, Tally> = HashMap::new();
    for row in &rows {
        let client: Option<String> = row.try_get(0)?;
        let remote: Option<String> = row.try_get(1)?;
        let outcome: String = row.try_get(2)?;
        let outcome = outcome_of(&outcome);
        let attempt: Option<i64> = row.try_get(3)?;
        let transports: i64 = row.try_get(4)?;
        let results = count(row, 5)?;
        for (groups, agent) in [(&mut clients, client), (&mut remotes, remote)] {
            groups
                .entry(Agent::classify(agent.as_deref()).group())
                .or_default()
                .add(outcome, attempt, transports, results);
        }
    }
    Ok(FamilySplits {
        by_client: finish(clients, usize::MAX),
        by_remote: finish(remotes, MAX_REMOTE_FAMILIES),
    })
}

/// Rows largest first (ties by name); beyond `keep`, summed into `(other)`.
fn finish(groups: HashMap<String, Tally>, keep: usize) -> Vec<FamilyRow> {
    let mut groups: Vec<(String, Tally)> = groups.into_iter().collect();
    groups.sort_by(|(a_key, a), (b_key, b)| {
        b.outcomes
            .total()
            .cmp(&a.outcomes.total())
            .then_with(|| a_key.cmp(b_key))
    });
    let mut rows = Vec::new();
    let mut rest: Option<Tally> = None;
    for (index, (key, tally)) in groups.into_iter().enumerate() {
        if index < keep {
            rows.push(row(key, tally));
        } else {
            rest.get_or_insert_with(Tally::default).merge(tally);
        }
    }
    if let Some(rest) = rest {
        rows.push(row("(other)".to_owned(), rest));
    }
    rows
}

fn row(key: String, tally: Tally) -> FamilyRow {
    FamilyRow {
        row: GroupRow::new(key, tally.outcomes),
        successes_by_attempt: tally.by_attempt,
        successes_by_transport: tally.by_transport,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successes_are_split_by_attempt_and_transport() {
        let mut tally = Tally::default();
        tally.add(Outcome::Success, Some(1), 1, 4);
        tally.add(Outcome::Success, Some(3), 2, 1);
        tally.add(Outcome::Success, None, 0, 2);
        // Failures count for the rates only.
        tally.add(Outcome::Failed, None, 1, 5);
        let row = row("kubo 0.43".into(), tally);
        assert_eq!(row.row.outcomes.success, 7);
        assert_eq!(row.row.outcomes.failed, 5);
        let attempts: Vec<(&str, u64)> = row
            .successes_by_attempt
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        assert_eq!(attempts, [("1", 4), ("3", 1), ("none", 2)]);
        let transports: Vec<(&str, u64)> = row
            .successes_by_transport
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        assert_eq!(transports, [("QUIC", 1), ("TCP", 4), ("none", 2)]);
    }

    #[test]
    fn small_families_are_summed() {
        let mut groups = HashMap::new();
        for (name, n) in [("a", 5), ("b", 3), ("c", 2)] {
            let mut tally = Tally::default();
            tally.add(Outcome::Success, Some(1), 1, n);
            groups.insert(name.to_owned(), tally);
        }
        let rows = finish(groups, 1);
        let keys: Vec<&str> = rows.iter().map(|r| r.row.key.as_str()).collect();
        assert_eq!(keys, ["a", "(other)"]);
        assert_eq!(rows[1].successes_by_attempt["1"], 5);
    }
}
