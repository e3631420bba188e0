//! Builds the TrackHolePunch request from a classified hole punch (`punchr-original.md` §7.4),
//! avoiding the original's bugs: a zero duration is sent as 0 rather than making the message
//! unencodable, and elapsed times are seconds, not microseconds.

use std::time::Duration;

use multiaddr::Multiaddr;
use punchr_proto as pb;
use punchr_types::{HandshakeRole, LatencyKind, RoleStrategy};

use crate::classifier::{AttemptRecord, Classified};

/// Pings to one peer, in the wire's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    /// Peer ID bytes of the pinged peer.
    pub peer_id: Vec<u8>,
    /// Its agent version, if known.
    pub agent_version: String,
    /// Its protocols, if known.
    pub protocols: Vec<String>,
    /// The address of the connection the pings used.
    pub address: Multiaddr,
    /// What was measured.
    pub kind: LatencyKind,
    /// One entry per ping: the RTT or the error.
    pub samples: Vec<Result<Duration, String>>,
}

/// Everything a report says besides the classification.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Peer ID bytes of the host that punched.
    pub client_id: Vec<u8>,
    /// Peer ID bytes of the remote.
    pub remote_id: Vec<u8>,
    /// Addresses the server served.
    pub served_addresses: Vec<Multiaddr>,
    /// The host's listen and observed addresses.
    pub listen_addresses: Vec<Multiaddr>,
    /// The server's protocol filter.
    pub protocol_filter: Vec<i32>,
    /// Latency measurements around the punch.
    pub latencies: Vec<Latency>,
    /// How the host's dials chose their handshake role.
    pub role_strategy: punchr_dcutr::RoleStrategy,
}

fn unix_nanos(at: i64) -> u64 {
    u64::try_from(at).unwrap_or(0)
}

fn wire_attempt(attempt: &AttemptRecord) -> pb::HolePunchAttempt {
    pb::HolePunchAttempt {
        opened_at: unix_nanos(attempt.opened_at),
        started_at: attempt.started_at.map(unix_nanos),
        ended_at: unix_nanos(attempt.ended_at),
        start_rtt: attempt.start_rtt.map(|rtt| rtt.as_secs_f32()),
        elapsed_time: attempt.elapsed.as_secs_f32(),
        outcome: pb::HolePunchAttemptOutcome::from(attempt.outcome).into(),
        error: attempt.error.clone(),
        direct_dial_error: attempt.dial_failure.as_ref().map(|f| f.error.clone()),
        multi_addresses: attempt.addresses.iter().map(|a| a.to_vec()).collect(),
        // dcutr's role, as the result records it, as the wire numbers it.
        handshake_role: attempt
            .handshake_role
            .map(|role| pb::HandshakeRole::from(HandshakeRole::from(role)).into()),
    }
}

fn wire_latency(latency: &Latency) -> pb::LatencyMeasurement {
    pb::LatencyMeasurement {
        remote_id: latency.peer_id.clone(),
        agent_version: latency.agent_version.clone(),
        protocols: latency.protocols.clone(),
        multi_address: latency.address.to_vec(),
        // The wire marks a failed sample with -1 and its error at the same index.
        rtts: latency
            .samples
            .iter()
            .map(|s| s.as_ref().map_or(-1.0, |rtt| rtt.as_secs_f32()))
            .collect(),
        rtt_errs: latency
            .samples
            .iter()
            .map(|s| s.as_ref().err().cloned().unwrap_or_default())
            .collect(),
        mtype: pb::LatencyMeasurementType::from(latency.kind).into(),
    }
}

/// The request reporting `punch`, with a fresh random report id.
pub fn track_hole_punch_request(
    context: &RequestContext,
    punch: &Classified,
) -> pb::TrackHolePunchRequest {
    pb::TrackHolePunchRequest {
        client_id: context.client_id.clone(),
        remote_id: context.remote_id.clone(),
        remote_multi_addresses: context
            .served_addresses
            .iter()
            .map(|a| a.to_vec())
            .collect(),
        connect_started_at: unix_nanos(punch.connect_started_at),
        connect_ended_at: unix_nanos(punch.connect_ended_at),
        hole_punch_attempts: punch.attempts.iter().map(wire_attempt).collect(),
        open_multi_addresses: punch.open_addresses.iter().map(|a| a.to_vec()).collect(),
        has_direct_conns: punch.has_direct_conns,
        error: punch.error.clone(),
        outcome: pb::HolePunchOutcome::from(punch.outcome).into(),
        ended_at: unix_nanos(punch.ended_at),
        listen_multi_addresses: context
            .listen_addresses
            .iter()
            .map(|a| a.to_vec())
            .collect(),
        // Added when the result is sent: the outbox never holds the key.
        api_key: String::new(),
        protocols: context.protocol_filter.clone(),
        latency_measurements: context
            .latencies
            .iter()
            .filter(|l| !l.samples.is_empty())
            .map(wire_latency)
            .collect(),
        network_information: None,
        nat_mappings: Vec::new(),
        report_id: Some(rand::random::<[u8; 16]>().to_vec()),
        role_strategy: Some(
            pb::RoleStrategy::from(RoleStrategy::from(context.role_strategy)).into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use libp2p::swarm::ConnectionId;
    use libp2p::PeerId;
    use punchr_dcutr::{AttemptOutcome as DcutrOutcome, Clock, Event, EventKind, Role};

    use super::*;
    use crate::classifier::{Classifier, PunchTimeouts};

    #[test]
    fn zero_durations_and_failed_pings_are_reported() {
        let relay: Multiaddr = "/ip4/198.18.0.1/tcp/4001/p2p-circuit".parse().unwrap();
        let origin = Instant::now();
        let clock = Clock::with_origin(origin, 1_764_000_000_000_000_000);
        let (remote, relayed) = (PeerId::random(), ConnectionId::new_unchecked(1));
        let timeouts = PunchTimeouts {
            connect: Duration::from_secs(5),
            stream: Duration::from_secs(5),
            attempt: Duration::from_secs(5),
            pings: Duration::ZERO,
        };
        let mut punch = Classifier::new(
            origin,
            clock,
            remote,
            vec![relay.clone()],
            relayed,
            timeouts,
        );
        punch.connection_established(origin, remote, relayed, &relay);
        // The stream opens and its exchange fails at the same instant.
        let at = origin + Duration::from_millis(100);
        for kind in [
            EventKind::StreamOpened,
            EventKind::AttemptFinished {
                outcome: DcutrOutcome::ProtocolError {
                    error: "bad message".into(),
                },
                duration: Duration::ZERO,
            },
        ] {
            punch.dcutr(&Event {
                peer_id: remote,
                relayed_connection: relayed,
                role: Role::Responder,
                attempt: 1,
                at,
                unix_nanos: clock.unix_nanos(at),
                kind,
            });
        }
        let classified = punch
            .finish(origin + Duration::from_millis(200), |_| {
                (String::new(), vec![])
            })
            .classified;
        let context = RequestContext {
            client_id: vec![1],
            remote_id: vec![2],
            served_addresses: vec![relay.clone()],
            listen_addresses: vec![],
            protocol_filter: vec![4, 6],
            role_strategy: punchr_dcutr::RoleStrategy::Adaptive,
            latencies: vec![
                Latency {
                    peer_id: vec![3],
                    agent_version: String::new(),
                    protocols: vec![],
                    address: relay.clone(),
                    kind: LatencyKind::ToRelay,
                    samples: vec![Ok(Duration::from_millis(20)), Err("timeout".into())],
                },
                Latency {
                    peer_id: vec![2],
                    agent_version: String::new(),
                    protocols: vec![],
                    address: relay,
                    kind: LatencyKind::ToRemoteThroughRelay,
                    samples: vec![],
                },
            ],
        };
        let request = track_hole_punch_request(&context, &classified);
        assert_eq!(request.outcome, pb::HolePunchOutcome::Failed as i32);
        assert_eq!(request.hole_punch_attempts[0].elapsed_time, 0.0);
        assert_eq!(request.latency_measurements.len(), 1);
        assert_eq!(request.latency_measurements[0].rtts, vec![0.02, -1.0]);
        assert_eq!(
            request.latency_measurements[0].rtt_errs,
            vec![String::new(), "timeout".to_owned()]
        );
        assert_eq!(request.report_id.as_ref().map(Vec::len), Some(16));
    }
}
