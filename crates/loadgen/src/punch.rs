//! The TrackHolePunch request a real client sends after punching the peer GetAddrInfo handed
//! out, with an outcome drawn from a campaign's mix and the attempts, timings, addresses and
//! latency measurements that outcome comes with (`punchr-original.md` §7.3–7.4).

use libp2p_identity::PeerId;
use multiaddr::{Multiaddr, Protocol};
use punchr_proto as pb;
use rand::Rng;

use pb::HolePunchAttemptOutcome as AttemptOutcome;
use pb::HolePunchOutcome as Outcome;

/// The outcome mix, in per mille. The original campaign published a success rate
/// SUCCESS / (SUCCESS + FAILED) of about 70 % with nearly all successes in the first attempt;
/// the shares of the outcomes that never reach a hole punch are estimates of the same order as
/// its dashboards showed (NO_STREAM and NO_CONNECTION the common ones).
pub const OUTCOME_MIX: [(Outcome, u32); 7] = [
    (Outcome::Success, 450),
    (Outcome::Failed, 190),
    (Outcome::NoStream, 160),
    (Outcome::NoConnection, 120),
    (Outcome::ConnectionReversed, 60),
    (Outcome::Cancelled, 10),
    (Outcome::Unknown, 10),
];

/// Share of successes that needed a second or third attempt, per mille.
const RETRIED_SUCCESS: u32 = 30;

const MS: u64 = 1_000_000;

/// Draws an outcome from [`OUTCOME_MIX`].
pub fn draw_outcome(rng: &mut impl Rng) -> Outcome {
    let total: u32 = OUTCOME_MIX.iter().map(|(_, weight)| weight).sum();
    let mut pick = rng.gen_range(0..total);
    for (outcome, weight) in OUTCOME_MIX {
        if pick < weight {
            return outcome;
        }
        pick -= weight;
    }
    unreachable!("the pick is below the total weight")
}

/// What the simulated host knows about itself when it reports.
#[derive(Debug, Clone)]
pub struct Reporter<'a> {
    /// The API key.
    pub api_key: &'a str,
    /// The host that punched.
    pub host: &'a PeerId,
    /// Its listen and observed addresses.
    pub listen_addresses: &'a [Multiaddr],
    /// Its NAT's port mappings (UPnP), if the router grants any.
    pub nat_mappings: &'a [pb::NatMapping],
    /// Whether network information goes with this report (the client sends it when its
    /// addresses changed, so on its first report).
    pub with_network_information: bool,
}

/// The request reporting a hole punch with `handout.remote_id` that ended at `now` (Unix ns)
/// with `outcome`.
pub fn track_request(
    reporter: &Reporter<'_>,
    handout: &pb::GetAddrInfoResponse,
    outcome: Outcome,
    now: u64,
    rng: &mut impl Rng,
) -> pb::TrackHolePunchRequest {
    let served = decode_addresses(&handout.multi_addresses);
    let remote = PeerId::from_bytes(&handout.remote_id).ok();
    let direct = remote.as_ref().map(direct_addresses).unwrap_or_default();
    let relay_rtt = rng.gen_range(0.02..0.25_f32);
    let timeline = Timeline::draw(outcome, relay_rtt, rng);
    let start = now - timeline.total_ms * MS;
    let connect_ended_at = start + timeline.connect_ms * MS;
    let attempts = attempts(outcome, &direct, connect_ended_at, relay_rtt, rng);
    let has_direct_conns = matches!(outcome, Outcome::Success | Outcome::ConnectionReversed);
    let mut open = Vec::new();
    if has_direct_conns {
        open.extend(direct.first().cloned());
    }
    if outcome != Outcome::NoConnection {
        open.extend(served.first().cloned());
    }
    pb::TrackHolePunchRequest {
        client_id: reporter.host.to_bytes(),
        remote_id: handout.remote_id.clone(),
        remote_multi_addresses: handout.multi_addresses.clone(),
        connect_started_at: start,
        connect_ended_at,
        hole_punch_attempts: attempts,
        open_multi_addresses: open.iter().map(Multiaddr::to_vec).collect(),
        has_direct_conns,
        error: error_text(outcome).map(str::to_owned),
        outcome: outcome.into(),
        ended_at: now,
        listen_multi_addresses: reporter
            .listen_addresses
            .iter()
            .map(Multiaddr::to_vec)
            .collect(),
        api_key: reporter.api_key.to_owned(),
        protocols: handout.protocols.clone(),
        latency_measurements: latencies(outcome, &served, remote.as_ref(), &direct, relay_rtt),
        network_information: reporter.with_network_information.then(network_information),
        nat_mappings: reporter.nat_mappings.to_vec(),
        report_id: Some(rng.gen::<[u8; 16]>().to_vec()),
        role_strategy: Some(pb::RoleStrategy::Adaptive.into()),
    }
}

/// How long the parts of one hole punch took, in ms.
struct Timeline {
    connect_ms: u64,
    total_ms: u64,
}

impl Timeline {
    fn draw(outcome: Outcome, relay_rtt: f32, rng: &mut impl Rng) -> Timeline {
        // Connecting through a relay takes a few relay round trips; a failed connect runs into
        // the dial timeouts.
        let rtt_ms = (relay_rtt * 1000.0) as u64;
        let connect_ms = match outcome {
            Outcome::NoConnection => rng.gen_range(5_000..20_000),
            _ => 4 * rtt_ms + rng.gen_range(50..400),
        };
        // After the connection: up to three attempts, the stream wait (30 s for NO_STREAM and
        // CONNECTION_REVERSED), then up to 10 s of pings.
        let after_ms = match outcome {
            Outcome::NoConnection => 0,
            Outcome::NoStream | Outcome::ConnectionReversed => 30_000 + rng.gen_range(0..10_000),
            Outcome::Cancelled => rng.gen_range(1_500..5_000),
            _ => 4_000 + rng.gen_range(0..10_000),
        };
        Timeline {
            connect_ms,
            total_ms: connect_ms + after_ms + rng.gen_range(1..50),
        }
    }
}

/// The attempts an outcome comes with, each on a new DCUtR stream one second after the last.
fn attempts(
    outcome: Outcome,
    direct: &[Multiaddr],
    connected_at: u64,
    relay_rtt: f32,
    rng: &mut impl Rng,
) -> Vec<pb::HolePunchAttempt> {
    let outcomes: Vec<AttemptOutcome> = match outcome {
        Outcome::Success if rng.gen_range(0..1000) < RETRIED_SUCCESS => {
            let failures = rng.gen_range(1..=2);
            let mut list = vec![AttemptOutcome::Failed; failures];
            list.push(AttemptOutcome::Success);
            list
        }
        Outcome::Success => vec![AttemptOutcome::Success],
        Outcome::Failed => match rng.gen_range(0..10) {
            0 => vec![AttemptOutcome::ProtocolError],
            1 => vec![AttemptOutcome::Timeout],
            _ => vec![AttemptOutcome::Failed; 3],
        },
        // The quirk of §7.3: one or two failed attempts, then no next stream.
        Outcome::NoStream if rng.gen_bool(0.1) => {
            vec![AttemptOutcome::Failed; rng.gen_range(1..=2)]
        }
        Outcome::Cancelled => vec![AttemptOutcome::Cancelled],
        Outcome::Unknown => vec![AttemptOutcome::Unknown],
        Outcome::NoStream | Outcome::NoConnection | Outcome::ConnectionReversed => Vec::new(),
    };
    outcomes
        .into_iter()
        .enumerate()
        .map(|(n, attempt_outcome)| {
            let opened_at = connected_at + 200 * MS + n as u64 * 1_000 * MS;
            let rtt_ms = (relay_rtt * 1000.0) as u64;
            let started_at = opened_at + 2 * rtt_ms * MS;
            let elapsed_ms = rtt_ms / 2 + rng.gen_range(20..600);
            pb::HolePunchAttempt {
                opened_at,
                started_at: Some(started_at),
                ended_at: started_at + elapsed_ms * MS,
                start_rtt: Some(relay_rtt),
                elapsed_time: elapsed_ms as f32 / 1000.0,
                outcome: attempt_outcome.into(),
                error: attempt_error(attempt_outcome).map(str::to_owned),
                direct_dial_error: None,
                multi_addresses: direct.iter().map(Multiaddr::to_vec).collect(),
                handshake_role: Some(pb::HandshakeRole::Client.into()),
            }
        })
        .collect()
}

fn attempt_error(outcome: AttemptOutcome) -> Option<&'static str> {
    match outcome {
        AttemptOutcome::Success | AttemptOutcome::DirectDial => None,
        AttemptOutcome::Failed => Some("all dials failed"),
        AttemptOutcome::ProtocolError => Some("failed to read CONNECT message: stream reset"),
        AttemptOutcome::Timeout => Some("no hole punch event after 30s"),
        AttemptOutcome::Cancelled => Some("context canceled"),
        AttemptOutcome::Unknown => Some("unknown hole punch attempt outcome"),
    }
}

fn error_text(outcome: Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Success | Outcome::ConnectionReversed => None,
        Outcome::Failed => Some("none of the 3 attempts succeeded"),
        Outcome::NoStream => Some("/libp2p/dcutr stream was not opened after 30s"),
        Outcome::NoConnection => {
            Some("failed to dial: all dials failed: context deadline exceeded")
        }
        Outcome::Cancelled => Some("context canceled"),
        Outcome::Unknown => Some("unknown hole punch attempt outcome"),
    }
}

/// Pings to the first relay always; through the relay once connected; to the remote directly
/// after a hole punch that left a direct connection.
fn latencies(
    outcome: Outcome,
    served: &[Multiaddr],
    remote: Option<&PeerId>,
    direct: &[Multiaddr],
    relay_rtt: f32,
) -> Vec<pb::LatencyMeasurement> {
    let mut measurements = Vec::new();
    let Some(relayed) = served.first() else {
        return measurements;
    };
    if let Some(relay) = relay_of(relayed) {
        measurements.push(pb::LatencyMeasurement {
            remote_id: relay.to_bytes(),
            agent_version: "go-ipfs/0.18.1/".into(),
            protocols: vec![
                "/ipfs/ping/1.0.0".into(),
                "/libp2p/circuit/relay/0.2.0/hop".into(),
            ],
            multi_address: relayed.to_vec(),
            rtts: vec![relay_rtt / 2.0; 3],
            rtt_errs: vec![String::new(); 3],
            mtype: pb::LatencyMeasurementType::ToRelay.into(),
        });
    }
    let Some(remote) = remote else {
        return measurements;
    };
    if outcome != Outcome::NoConnection {
        measurements.push(remote_pings(
            remote,
            relayed,
            relay_rtt,
            pb::LatencyMeasurementType::ToRemoteThroughRelay,
        ));
    }
    if let (true, Some(address)) = (
        matches!(outcome, Outcome::Success | Outcome::ConnectionReversed),
        direct.first(),
    ) {
        measurements.push(remote_pings(
            remote,
            address,
            relay_rtt / 3.0,
            pb::LatencyMeasurementType::ToRemoteAfterHolePunch,
        ));
    }
    measurements
}

fn remote_pings(
    remote: &PeerId,
    address: &Multiaddr,
    rtt: f32,
    kind: pb::LatencyMeasurementType,
) -> pb::LatencyMeasurement {
    pb::LatencyMeasurement {
        remote_id: remote.to_bytes(),
        agent_version: "kubo/0.25.0/".into(),
        protocols: vec!["/ipfs/ping/1.0.0".into(), "/libp2p/dcutr".into()],
        multi_address: address.to_vec(),
        rtts: vec![rtt, rtt * 1.1, -1.0, rtt * 0.9],
        rtt_errs: vec![
            String::new(),
            String::new(),
            "stream reset".into(),
            String::new(),
        ],
        mtype: kind.into(),
    }
}

fn network_information() -> pb::NetworkInformation {
    pb::NetworkInformation {
        router_login_html: Some(
            "<!DOCTYPE html><html><head><title>FRITZ!Box</title></head><body></body></html>".into(),
        ),
        router_login_html_error: None,
        supports_ipv6: Some(true),
        supports_ipv6_error: None,
    }
}

/// The public addresses a remote's NAT maps it to, derived from its peer ID so they stay the
/// same across its results (documentation ranges, never routed).
pub fn direct_addresses(remote: &PeerId) -> Vec<Multiaddr> {
    let bytes = remote.to_bytes();
    let tail = |i: usize| bytes[bytes.len() - 1 - i];
    let port = 1024 + u16::from_be_bytes([tail(2), tail(3)]) % 60_000;
    [
        format!("/ip4/203.0.113.{}/tcp/{port}", tail(0)),
        format!("/ip4/203.0.113.{}/udp/{port}/quic-v1", tail(0)),
        format!("/ip6/2001:db8::{:x}:{:x}/tcp/{port}", tail(1), tail(0)),
        format!(
            "/ip6/2001:db8::{:x}:{:x}/udp/{port}/quic-v1",
            tail(1),
            tail(0)
        ),
    ]
    .iter()
    .map(|text| text.parse().expect("valid address"))
    .collect()
}

fn decode_addresses(list: &[Vec<u8>]) -> Vec<Multiaddr> {
    list.iter()
        .filter_map(|bytes| Multiaddr::try_from(bytes.clone()).ok())
        .collect()
}

/// The relay's peer ID in a relay address (its first `/p2p` component).
fn relay_of(address: &Multiaddr) -> Option<PeerId> {
    address.iter().find_map(|protocol| match protocol {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use punchr_testutil::fixtures::{peer_id, relay_address};
    use rand::SeedableRng;

    fn handout(remote: &PeerId) -> pb::GetAddrInfoResponse {
        pb::GetAddrInfoResponse {
            remote_id: remote.to_bytes(),
            multi_addresses: vec![relay_address(1, remote).to_vec()],
            protocols: vec![4, 6],
        }
    }

    #[test]
    fn the_mix_is_drawn_in_its_proportions() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let draws = 20_000;
        let successes = (0..draws)
            .filter(|_| draw_outcome(&mut rng) == Outcome::Success)
            .count();
        let share = successes as f64 / f64::from(draws);
        assert!((0.43..0.47).contains(&share), "success share {share}");
    }

    #[test]
    fn requests_carry_what_each_outcome_implies() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (host, remote) = (peer_id(), peer_id());
        let listen: Vec<Multiaddr> = vec!["/ip4/192.168.1.10/tcp/4001".parse().unwrap()];
        let reporter = Reporter {
            api_key: "key",
            host: &host,
            listen_addresses: &listen,
            nat_mappings: &[],
            with_network_information: true,
        };
        let now = 1_764_000_000_000_000_000;
        for (outcome, _) in OUTCOME_MIX {
            let request = track_request(&reporter, &handout(&remote), outcome, now, &mut rng);
            assert_eq!(request.outcome(), outcome);
            assert!(request.connect_started_at <= request.connect_ended_at);
            assert!(request.connect_ended_at <= request.ended_at);
            assert_eq!(request.ended_at, now);
            assert_eq!(
                request.has_direct_conns,
                matches!(outcome, Outcome::Success | Outcome::ConnectionReversed)
            );
            let attempts = &request.hole_punch_attempts;
            match outcome {
                Outcome::Success => {
                    assert_eq!(attempts.last().unwrap().outcome(), AttemptOutcome::Success)
                }
                Outcome::NoConnection | Outcome::ConnectionReversed => assert!(attempts.is_empty()),
                _ => {}
            }
            for attempt in attempts {
                assert!(attempt.opened_at >= request.connect_ended_at);
                assert!(attempt.ended_at <= request.ended_at);
            }
            assert_eq!(request.report_id.as_ref().map(Vec::len), Some(16));
        }
    }
}
