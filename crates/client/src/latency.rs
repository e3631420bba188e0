//! Latency samples gathered during a hole punch from the ping protocol, which runs on every
//! connection: to the relay, to the remote over the relayed connection, and to the remote over
//! the direct connection after the punch. At most [`MAX_SAMPLES`] each, as the original did.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use punchr_types::LatencyKind;

use crate::request::Latency;

/// Samples kept per measurement.
pub const MAX_SAMPLES: usize = 10;

#[derive(Debug)]
struct Measurement {
    peer: PeerId,
    address: Multiaddr,
    kind: LatencyKind,
    samples: Vec<Result<Duration, String>>,
}

/// The measurements of one hole punch, keyed by the connection they use.
#[derive(Debug, Default)]
pub struct LatencyRecorder {
    by_connection: HashMap<ConnectionId, Measurement>,
}

impl LatencyRecorder {
    /// Starts measuring on a connection.
    pub fn track(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        address: Multiaddr,
        kind: LatencyKind,
    ) {
        self.by_connection.entry(connection).or_insert(Measurement {
            peer,
            address,
            kind,
            samples: Vec::new(),
        });
    }

    /// Records a ping result if the connection is tracked and its measurement is not full.
    pub fn record(&mut self, connection: ConnectionId, sample: Result<Duration, String>) {
        if let Some(measurement) = self.by_connection.get_mut(&connection) {
            if measurement.samples.len() < MAX_SAMPLES {
                measurement.samples.push(sample);
            }
        }
    }

    /// How many samples a kind has so far.
    pub fn samples_of(&self, kind: LatencyKind) -> usize {
        self.by_connection
            .values()
            .filter(|m| m.kind == kind)
            .map(|m| m.samples.len())
            .sum()
    }

    /// The measurements with at least one sample, described with what identify told us.
    pub fn finish(self, describe: impl Fn(&PeerId) -> (String, Vec<String>)) -> Vec<Latency> {
        let mut latencies: Vec<Latency> = self
            .by_connection
            .into_values()
            .filter(|m| !m.samples.is_empty())
            .map(|m| {
                let (agent_version, protocols) = describe(&m.peer);
                Latency {
                    peer_id: m.peer.to_bytes(),
                    agent_version,
                    protocols,
                    address: m.address,
                    kind: m.kind,
                    samples: m.samples,
                }
            })
            .collect();
        latencies.sort_by_key(|l| l.kind);
        latencies
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_capped_and_untracked_connections_ignored() {
        let mut recorder = LatencyRecorder::default();
        let relay = ConnectionId::new_unchecked(1);
        recorder.track(
            relay,
            PeerId::random(),
            "/ip4/198.18.0.1/tcp/4001".parse().unwrap(),
            LatencyKind::ToRelay,
        );
        for _ in 0..15 {
            recorder.record(relay, Ok(Duration::from_millis(20)));
        }
        recorder.record(ConnectionId::new_unchecked(2), Ok(Duration::from_millis(5)));
        assert_eq!(recorder.samples_of(LatencyKind::ToRelay), MAX_SAMPLES);
        let latencies = recorder.finish(|_| ("relay/1.0".into(), vec![]));
        assert_eq!(latencies.len(), 1);
        assert_eq!(latencies[0].agent_version, "relay/1.0");
    }
}
