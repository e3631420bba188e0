//! The lab's split of results by NAT: the lab knows which NAT each of its peers sits behind and
//! has the store write it into `lab_labels` ([`punchr_store::Store::label_lab_peer`], migration
//! `0004_lab_labels.sql`); reports read the labels and split results by the (client NAT, remote
//! NAT) pair. Field campaigns leave the table empty and the split out.

use std::collections::BTreeMap;

use punchr_store::{Outcome, ReadOnlyStore};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{OutcomeCounts, Rate, ReportError};

/// The label of `peer_id`, if any.
pub async fn peer_label(
    store: &ReadOnlyStore,
    peer_id: &str,
) -> Result<Option<String>, ReportError> {
    let row = sqlx::query("SELECT nat_type FROM lab_labels WHERE peer_id = $1")
        .bind(peer_id)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// The transport of a lab punch: for a SUCCESS, the transport of the direct connection it made
/// (clients treat the server's filter as a preference and may fall back to another transport);
/// otherwise the protocol filter the server handed out (the lab's server hands out `ip4/tcp` or
/// `ip4/quic`), else the transports the punch tried.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CellTransport {
    /// TCP.
    Tcp,
    /// QUIC.
    Quic,
    #[default]
    /// Neither the filter nor the addresses tell (e.g. the remote never opened a DCUtR stream
    /// and no filter was handed out), or they name both.
    Unknown,
}

impl CellTransport {
    /// `TCP`, `QUIC` or `?`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CellTransport::Tcp => "TCP",
            CellTransport::Quic => "QUIC",
            CellTransport::Unknown => "?",
        }
    }

    /// From the outcome, the stored filter (a JSON array of multiaddr protocol codes) and the
    /// transport bits of `report_facts.transports`.
    fn classify(success: bool, protocol_filters: &str, transport_bits: i64) -> CellTransport {
        if success {
            match transport_bits {
                1 => return CellTransport::Tcp,
                2 => return CellTransport::Quic,
                _ => {}
            }
        }
        // Multiaddr codes: 6 tcp, 460 quic-v1, 273 quic (draft 29).
        let codes: Vec<i64> = serde_json::from_str(protocol_filters).unwrap_or_default();
        let tcp = codes.contains(&6);
        let quic = codes.contains(&460) || codes.contains(&273);
        match (tcp, quic) {
            (true, false) => return CellTransport::Tcp,
            (false, true) => return CellTransport::Quic,
            _ => {}
        }
        match transport_bits {
            1 => CellTransport::Tcp,
            2 => CellTransport::Quic,
            _ => CellTransport::Unknown,
        }
    }
}

/// The punches of one (client NAT, remote NAT, transport) cell of a lab campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NatCell {
    /// The client host's NAT type (`?` when only the remote is labelled).
    pub client_nat: String,
    /// The remote's NAT type (`?` when only the client is labelled).
    pub remote_nat: String,
    /// The remote's libp2p implementation (`?` when not labelled).
    pub remote_impl: String,
    /// The transport.
    pub transport: CellTransport,
    /// Punches by outcome.
    pub outcomes: OutcomeCounts,
    /// Median time from the relayed connection to the direct one, over the successes.
    pub median_time_to_direct_ns: Option<i64>,
    /// Median RTT over the relayed connection that the DCUtR initiator measured in the
    /// successful attempts (CONNECT sent → CONNECT received).
    pub median_relayed_rtt_ns: Option<i64>,
}

impl NatCell {
    /// SUCCESS / (SUCCESS + FAILED), with its Wilson 95 % interval.
    pub fn success_rate(&self) -> Rate {
        self.outcomes.published_rate()
    }
}

/// Every labelled punch, split by (client NAT, remote NAT, transport), in that order.
pub async fn nat_cells(store: &ReadOnlyStore) -> Result<Vec<NatCell>, ReportError> {
    let rows = sqlx::query(
        "SELECT COALESCE(lc.nat_type, '?'), COALESCE(lr.nat_type, '?'), r.protocol_filters, \
                f.transports, f.outcome, f.time_to_direct_ns, a.start_rtt_seconds, \
                COALESCE(lr.implementation, '?') \
         FROM report_facts f \
         JOIN hole_punch_results r ON r.id = f.result_id \
         JOIN peers c ON c.id = f.client_peer_id \
         JOIN peers p ON p.id = f.remote_peer_id \
         LEFT JOIN lab_labels lc ON lc.peer_id = c.peer_id \
         LEFT JOIN lab_labels lr ON lr.peer_id = p.peer_id \
         LEFT JOIN hole_punch_attempts a \
                ON a.result_id = f.result_id AND a.attempt_number = f.successful_attempt \
         WHERE lc.peer_id IS NOT NULL OR lr.peer_id IS NOT NULL",
    )
    .fetch_all(store.pool())
    .await?;
    type Key = (String, String, String, CellTransport);
    let mut cells: BTreeMap<Key, (OutcomeCounts, Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for row in &rows {
        let filters: String = row.try_get(2)?;
        let outcome: String = row.try_get(4)?;
        let outcome = Outcome::from_stored(&outcome).unwrap_or(Outcome::Unknown);
        let success = outcome == Outcome::Success;
        let transport = CellTransport::classify(success, &filters, row.try_get(3)?);
        let key = (row.try_get(0)?, row.try_get(1)?, row.try_get(7)?, transport);
        let (outcomes, times, rtts) = cells.entry(key).or_default();
        outcomes.add(outcome, 1);
        if outcome == Outcome::Success {
            times.extend(row.try_get::<Option<i64>, _>(5)?);
            let rtt: Option<f64> = row.try_get(6)?;
            rtts.extend(rtt.filter(|s| *s > 0.0).map(|s| (s * 1e9) as i64));
        }
    }
    Ok(cells
        .into_iter()
        .map(
            |(
                (client_nat, remote_nat, remote_impl, transport),
                (outcomes, mut times, mut rtts),
            )| NatCell {
                client_nat,
                remote_nat,
                remote_impl,
                transport,
                outcomes,
                median_time_to_direct_ns: median(&mut times),
                median_relayed_rtt_ns: median(&mut rtts),
            },
        )
        .collect())
}

/// The punches against one remote implementation with one client role strategy over one
/// transport: how often they succeeded, on which attempt, over which transport the direct
/// connection ran, and which handshake role our successful dial took.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImplementationRow {
    /// The remote's implementation (`?` when not labelled).
    pub implementation: String,
    /// The clients' role strategy (`?` when the client did not say).
    pub role_strategy: String,
    /// The transport (as for [`NatCell`]).
    pub transport: CellTransport,
    /// Punches by outcome.
    pub outcomes: OutcomeCounts,
    /// Successes by the number of their successful attempt: `[1, 2, 3, later]`.
    pub successes_by_attempt: [u64; 4],
    /// Successes whose direct connection was TCP, QUIC, or neither known.
    pub direct_tcp: u64,
    /// See `direct_tcp`.
    pub direct_quic: u64,
    /// Successful attempts whose dial took the client role, the server role, or did not say.
    pub success_as_client: u64,
    /// See `success_as_client`.
    pub success_as_server: u64,
}

/// Every punch against a labelled remote, by (implementation, role strategy, transport).
pub async fn implementation_rows(
    store: &ReadOnlyStore,
) -> Result<Vec<ImplementationRow>, ReportError> {
    let rows = sqlx::query(
        "SELECT COALESCE(lr.implementation, '?'), COALESCE(r.role_strategy, '?'), r.protocol_filters, \
                f.transports, f.outcome, f.successful_attempt, a.handshake_role \
         FROM report_facts f \
         JOIN hole_punch_results r ON r.id = f.result_id \
         JOIN peers p ON p.id = f.remote_peer_id \
         JOIN lab_labels lr ON lr.peer_id = p.peer_id \
         LEFT JOIN hole_punch_attempts a \
                ON a.result_id = f.result_id AND a.attempt_number = f.successful_attempt",
    )
    .fetch_all(store.pool())
    .await?;
    let mut groups: BTreeMap<(String, String, CellTransport), ImplementationRow> = BTreeMap::new();
    for row in &rows {
        let outcome: String = row.try_get(4)?;
        let outcome = Outcome::from_stored(&outcome).unwrap_or(Outcome::Unknown);
        let success = outcome == Outcome::Success;
        let bits: i64 = row.try_get(3)?;
        let filters: String = row.try_get(2)?;
        let transport = CellTransport::classify(success, &filters, bits);
        let key: (String, String, CellTransport) = (row.try_get(0)?, row.try_get(1)?, transport);
        let entry = groups
            .entry(key.clone())
            .or_insert_with(|| ImplementationRow {
                implementation: key.0.clone(),
                role_strategy: key.1.to_ascii_lowercase(),
                transport,
                ..ImplementationRow::default()
            });
        entry.outcomes.add(outcome, 1);
        if !success {
            continue;
        }
        // Attempts are numbered from 1.
        let attempt: Option<i64> = row.try_get(5)?;
        let slot = match attempt {
            Some(n @ 1..=3) => (n - 1) as usize,
            _ => 3,
        };
        entry.successes_by_attempt[slot] += 1;
        match bits {
            1 => entry.direct_tcp += 1,
            2 => entry.direct_quic += 1,
            _ => {}
        }
        let role: Option<String> = row.try_get(6)?;
        match role.as_deref() {
            Some("CLIENT") => entry.success_as_client += 1,
            Some("SERVER") => entry.success_as_server += 1,
            _ => {}
        }
    }
    Ok(groups.into_values().collect())
}

/// The median (the lower one of an even count), or nothing for no values.
fn median(values: &mut [i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    Some(values[(values.len() - 1) / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successes_count_for_their_connection_and_the_rest_for_their_filter() {
        let classify = CellTransport::classify;
        // A QUIC-filtered punch that fell back to TCP and succeeded is a TCP success.
        assert_eq!(classify(true, "[4,460]", 1), CellTransport::Tcp);
        assert_eq!(classify(true, "[4,6]", 2), CellTransport::Quic);
        assert_eq!(classify(true, "[4,6]", 3), CellTransport::Tcp);
        assert_eq!(classify(false, "[4,6]", 2), CellTransport::Tcp);
        assert_eq!(classify(false, "[4,460]", 1), CellTransport::Quic);
        assert_eq!(classify(false, "[4,273]", 0), CellTransport::Quic);
        assert_eq!(classify(false, "[]", 1), CellTransport::Tcp);
        assert_eq!(classify(false, "[]", 2), CellTransport::Quic);
        assert_eq!(classify(false, "[]", 3), CellTransport::Unknown);
        assert_eq!(classify(false, "[6,460]", 0), CellTransport::Unknown);
        assert_eq!(classify(false, "not json", 0), CellTransport::Unknown);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5]), Some(5));
        assert_eq!(median(&mut [9, 1, 5]), Some(5));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2));
    }
}
