//! Realistic values for tests and benchmarks.

use libp2p_identity::{Keypair, PeerId};
use multiaddr::Multiaddr;
use punchr_store::{
    AttemptOutcome, ConnectionEventRecord, HolePunchAttemptRecord, HolePunchRecord, LatencyKind,
    LatencyRecord, NatMapping, NetworkInformation, Outcome, PeerInfo, Store,
};

/// A fresh random peer ID.
pub fn peer_id() -> PeerId {
    Keypair::generate_ed25519().public().to_peer_id()
}

/// A relay circuit address through relay number `relay` for `peer`. The relay hop is public
/// (11.0.0.0/8, the NAT lab's internet), as selection serves no other.
pub fn relay_address(relay: u8, peer: &PeerId) -> Multiaddr {
    let relay_peer = relay_peer_ids()[usize::from(relay) % RELAYS];
    format!("/ip4/11.1.1.{relay}/tcp/4001/p2p/{relay_peer}/p2p-circuit/p2p/{peer}")
        .parse()
        .expect("valid relay address")
}

/// A QUIC relay circuit address through relay number `relay` for `peer` (same relays as
/// [`relay_address`]).
pub fn quic_relay_address(relay: u8, peer: &PeerId) -> Multiaddr {
    let relay_peer = relay_peer_ids()[usize::from(relay) % RELAYS];
    format!("/ip4/11.1.1.{relay}/udp/4001/quic-v1/p2p/{relay_peer}/p2p-circuit/p2p/{peer}")
        .parse()
        .expect("valid relay address")
}

const RELAYS: usize = 8;

/// Records what the honeypot would have seen of the DCUtR peer `peer` with the relay address
/// `address`, now: the server then hands it out.
pub async fn record_sighting(store: &Store, peer: &PeerId, address: &Multiaddr) {
    store
        .record_connection_event(&ConnectionEventRecord {
            local: PeerInfo::bare(peer_id().to_string()),
            remote: PeerInfo {
                peer_id: peer.to_string(),
                agent_version: Some("nated-remote/test".into()),
                protocols: vec!["/libp2p/dcutr".into(), "/ipfs/id/1.0.0".into()],
            },
            connection_address: "/ip4/198.18.9.9/tcp/4001".parse().expect("valid"),
            advertised_addresses: vec![address.clone()],
            opened_at: punchr_store::now_unix_nanos(),
        })
        .await
        .expect("record the honeypot's sighting");
}

/// Stable relay peer IDs, so relay addresses repeat across results as they do in the field.
fn relay_peer_ids() -> &'static [PeerId; RELAYS] {
    static IDS: std::sync::OnceLock<[PeerId; RELAYS]> = std::sync::OnceLock::new();
    IDS.get_or_init(|| std::array::from_fn(|_| peer_id()))
}

/// A result shaped like the field's: 3 attempts (two failures, then success), 4 addresses per
/// attempt, 2 latency measurements, one NAT mapping, network information.
pub fn hole_punch_result(
    api_key_id: i64,
    client: &PeerId,
    remote: &PeerId,
    seq: u32,
) -> HolePunchRecord {
    let start: i64 = 1_764_000_000_000_000_000 + i64::from(seq) * 1_000_000_000;
    let port = 4000 + (seq % 20_000) as u16;
    let remote_direct: Vec<Multiaddr> = [
        format!("/ip4/203.0.113.{}/tcp/{port}", seq % 250),
        format!("/ip4/203.0.113.{}/udp/{port}/quic-v1", seq % 250),
        format!("/ip6/2001:db8::{:x}/tcp/{port}", seq % 0xffff),
        format!("/ip6/2001:db8::{:x}/udp/{port}/quic-v1", seq % 0xffff),
    ]
    .iter()
    .map(|s| s.parse().expect("valid address"))
    .collect();
    let relayed = vec![
        relay_address((seq % 4) as u8, remote),
        relay_address((seq % 4 + 1) as u8, remote),
    ];
    let attempt = |n: i64, outcome: AttemptOutcome| HolePunchAttemptRecord {
        opened_at: start + 200_000_000 + n * 1_000_000_000,
        started_at: Some(start + 260_000_000 + n * 1_000_000_000),
        ended_at: start + 900_000_000 + n * 1_000_000_000,
        start_rtt_seconds: Some(0.0625),
        elapsed_seconds: 0.640625,
        elapsed_time_raw: None,
        outcome,
        error: (outcome != AttemptOutcome::Success).then(|| "all dials failed".to_owned()),
        direct_dial_error: None,
        addresses: remote_direct.clone(),
        // The original clients' shape: they do not say (fields 100 and up are ours).
        handshake_role: None,
    };
    let relay = relayed[0].clone();
    HolePunchRecord {
        api_key_id,
        report_id: Some(format!("report-{client}-{seq}").into_bytes()),
        client_peer_id: client.to_string(),
        remote_peer_id: remote.to_string(),
        remote_addresses: relayed.clone(),
        open_addresses: vec![remote_direct[0].clone(), relayed[0].clone()],
        listen_addresses: vec![
            "/ip4/192.168.1.10/tcp/12000".parse().expect("valid"),
            format!("/ip4/198.51.100.7/tcp/{}", 12000 + seq % 10)
                .parse()
                .expect("valid"),
        ],
        connect_started_at: start,
        connect_ended_at: start + 150_000_000,
        ended_at: start + 3_500_000_000,
        has_direct_conns: true,
        outcome: Outcome::Success,
        error: None,
        protocol_filters: vec![4, 6],
        role_strategy: None,
        attempts: vec![
            attempt(0, AttemptOutcome::Failed),
            attempt(1, AttemptOutcome::Failed),
            attempt(2, AttemptOutcome::Success),
        ],
        latency_measurements: vec![
            LatencyRecord {
                peer: PeerInfo {
                    peer_id: relay_peer_ids()[(seq % 4) as usize].to_string(),
                    agent_version: Some("go-ipfs/0.18.1".into()),
                    protocols: vec![
                        "/libp2p/circuit/relay/0.2.0/hop".into(),
                        "/ipfs/ping/1.0.0".into(),
                    ],
                },
                address: relay.clone(),
                kind: LatencyKind::ToRelay,
                rtts: vec![0.03125, 0.0390625, -1.0],
                rtt_errors: vec![String::new(), String::new(), "stream reset".into()],
            },
            LatencyRecord {
                peer: PeerInfo {
                    peer_id: remote.to_string(),
                    agent_version: Some("kubo/0.25.0".into()),
                    protocols: vec!["/libp2p/dcutr".into(), "/ipfs/ping/1.0.0".into()],
                },
                address: remote_direct[0].clone(),
                kind: LatencyKind::ToRemoteAfterHolePunch,
                rtts: vec![0.015625, 0.0234375],
                rtt_errors: vec![String::new(), String::new()],
            },
        ],
        network_information: Some(NetworkInformation {
            supports_ipv6: Some(true),
            ..NetworkInformation::default()
        }),
        nat_mappings: vec![NatMapping {
            internal_port: 12000,
            external_port: 12000,
            protocol: "tcp".into(),
            addr: "198.51.100.7".into(),
            addr_network: "ip4".into(),
        }],
    }
}
