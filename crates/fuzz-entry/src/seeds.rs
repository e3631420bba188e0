//! The starting corpus: real, valid inputs of every target, made with the functions that make
//! them in the field (the outbox writes the outbox file, the key file module the key file).

use libp2p_identity::{Keypair, PeerId};
use multiaddr::Multiaddr;
use prost::Message;
use punchr_proto as pb;
use punchr_server::validate::Rpc;

/// One starting input of a target.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The fuzz target.
    pub target: &'static str,
    /// A file name for it.
    pub name: &'static str,
    /// The input.
    pub data: Vec<u8>,
}

/// Every seed of every target. Each one is valid: its entry function accepts it.
pub fn seeds() -> Vec<Seed> {
    let mut all = grpc_seeds();
    all.extend(multiaddr_seeds());
    all.extend(peer_id_seeds());
    all.extend(key_file_seeds());
    all.push(outbox_seed());
    all.extend(config_seeds());
    all
}

fn peer(index: u32) -> PeerId {
    punchr_keyfile::from_seed(b"punchr fuzz seeds", index)
        .public()
        .to_peer_id()
}

fn address(text: &str) -> Multiaddr {
    text.parse()
        .unwrap_or_else(|e| panic!("seed address {text}: {e}"))
}

/// A circuit address through a public relay, as the honeypot records and GetAddrInfo hands out.
fn relay_address(relay: &PeerId, remote: &PeerId) -> Multiaddr {
    address(&format!(
        "/ip4/198.18.1.1/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{remote}"
    ))
}

fn tagged(rpc: Rpc, message: &impl Message) -> Vec<u8> {
    let tag = Rpc::ALL
        .iter()
        .position(|r| *r == rpc)
        .expect("a known RPC");
    let mut data = vec![u8::try_from(tag).expect("three RPCs")];
    data.extend(message.encode_to_vec());
    data
}

/// A complete, valid result of a successful hole punch that ended a moment ago.
fn track_hole_punch_request() -> pb::TrackHolePunchRequest {
    const MS: u64 = 1_000_000;
    let now = u64::try_from(punchr_store::now_unix_nanos()).expect("after 1970");
    let start = now - 10_000 * MS;
    let (client, remote, relay) = (peer(0), peer(1), peer(2));
    let relayed = relay_address(&relay, &remote);
    let direct = [
        address("/ip4/198.18.7.9/tcp/4001"),
        address("/ip6/2001:67c:2b0::9/udp/4001/quic-v1"),
    ];
    let attempt = |n: u64, outcome: pb::HolePunchAttemptOutcome| pb::HolePunchAttempt {
        opened_at: start + 200 * MS + n * 1_000 * MS,
        started_at: Some(start + 260 * MS + n * 1_000 * MS),
        ended_at: start + 900 * MS + n * 1_000 * MS,
        start_rtt: Some(0.0625),
        elapsed_time: 0.640625,
        outcome: outcome.into(),
        error: (outcome != pb::HolePunchAttemptOutcome::Success)
            .then(|| "all dials failed".to_owned()),
        direct_dial_error: None,
        multi_addresses: direct.iter().map(Multiaddr::to_vec).collect(),
        handshake_role: Some(pb::HandshakeRole::Client.into()),
    };
    pb::TrackHolePunchRequest {
        client_id: client.to_bytes(),
        remote_id: remote.to_bytes(),
        remote_multi_addresses: vec![relayed.to_vec()],
        connect_started_at: start,
        connect_ended_at: start + 150 * MS,
        hole_punch_attempts: vec![
            attempt(0, pb::HolePunchAttemptOutcome::Failed),
            attempt(1, pb::HolePunchAttemptOutcome::Success),
        ],
        open_multi_addresses: vec![direct[0].to_vec(), relayed.to_vec()],
        has_direct_conns: true,
        error: None,
        outcome: pb::HolePunchOutcome::Success.into(),
        ended_at: start + 3_500 * MS,
        listen_multi_addresses: vec![address("/ip4/192.168.1.10/udp/12000/quic-v1").to_vec()],
        api_key: "4c3f0a5e-55b6-4d5c-9a65-2b6f0e7d3c21".into(),
        protocols: vec![4, 6],
        latency_measurements: vec![pb::LatencyMeasurement {
            remote_id: relay.to_bytes(),
            agent_version: "go-ipfs/0.18.1".into(),
            protocols: vec!["/libp2p/circuit/relay/0.2.0/hop".into()],
            multi_address: relayed.to_vec(),
            rtts: vec![0.03125, -1.0],
            rtt_errs: vec![String::new(), "stream reset".into()],
            mtype: pb::LatencyMeasurementType::ToRelay.into(),
        }],
        network_information: Some(pb::NetworkInformation {
            router_login_html: Some("<html><title>FRITZ!Box</title></html>".into()),
            router_login_html_error: None,
            supports_ipv6: Some(true),
            supports_ipv6_error: None,
        }),
        nat_mappings: vec![pb::NatMapping {
            internal_port: 12000,
            external_port: 41000,
            protocol: "tcp".into(),
            addr: "198.51.100.7".into(),
            addr_network: "ip4".into(),
        }],
        report_id: Some(vec![7; 16]),
        role_strategy: Some(pb::RoleStrategy::Adaptive.into()),
    }
}

fn grpc_seeds() -> Vec<Seed> {
    let register = pb::RegisterRequest {
        client_id: peer(0).to_bytes(),
        agent_version: "punchr-rs/client/0.1.0".into(),
        protocols: vec!["/ipfs/id/1.0.0".into(), "/libp2p/dcutr".into()],
        api_key: "4c3f0a5e-55b6-4d5c-9a65-2b6f0e7d3c21".into(),
    };
    let get_addr_info = pb::GetAddrInfoRequest {
        host_id: peer(0).to_bytes(),
        all_host_ids: vec![peer(0).to_bytes(), peer(3).to_bytes()],
        api_key: "4c3f0a5e-55b6-4d5c-9a65-2b6f0e7d3c21".into(),
    };
    let failed = pb::TrackHolePunchRequest {
        outcome: pb::HolePunchOutcome::NoConnection.into(),
        error: Some("failed to open relayed connection".into()),
        hole_punch_attempts: vec![],
        latency_measurements: vec![],
        network_information: None,
        nat_mappings: vec![],
        open_multi_addresses: vec![],
        has_direct_conns: false,
        report_id: None,
        ..track_hole_punch_request()
    };
    vec![
        Seed {
            target: "grpc_request",
            name: "seed-register",
            data: tagged(Rpc::Register, &register),
        },
        Seed {
            target: "grpc_request",
            name: "seed-get-addr-info",
            data: tagged(Rpc::GetAddrInfo, &get_addr_info),
        },
        Seed {
            target: "grpc_request",
            name: "seed-track-hole-punch-success",
            data: tagged(Rpc::TrackHolePunch, &track_hole_punch_request()),
        },
        Seed {
            target: "grpc_request",
            name: "seed-track-hole-punch-no-connection",
            data: tagged(Rpc::TrackHolePunch, &failed),
        },
    ]
}

fn multiaddr_seeds() -> Vec<Seed> {
    let relayed = relay_address(&peer(2), &peer(1));
    let binary = |name, text: &str| Seed {
        target: "multiaddr",
        name,
        data: address(text).to_vec(),
    };
    vec![
        Seed {
            target: "multiaddr",
            name: "seed-relay-circuit",
            data: relayed.to_vec(),
        },
        Seed {
            target: "multiaddr",
            name: "seed-relay-circuit-text",
            data: relayed.to_string().into_bytes(),
        },
        binary("seed-ip4-tcp", "/ip4/198.18.7.9/tcp/4001"),
        binary("seed-ip6-quic-v1", "/ip6/2001:67c:2b0::9/udp/4001/quic-v1"),
        binary("seed-dns4-wss", "/dns4/relay.example.org/tcp/443/wss"),
        binary(
            "seed-webtransport-certhash",
            "/ip4/198.18.7.9/udp/4001/quic-v1/webtransport/certhash/uEiAkH5a4DPGKUuOBjYw0CgwjvcJCJMD2K_1aluKR_tpevQ",
        ),
        binary(
            "seed-ip6-relay-quic",
            &format!(
                "/ip6/2a01:4f8::1/udp/4001/quic-v1/p2p/{}/p2p-circuit",
                peer(4)
            ),
        ),
    ]
}

fn peer_id_seeds() -> Vec<Seed> {
    let rsa_style: PeerId = "QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ"
        .parse()
        .expect("a peer ID");
    vec![
        Seed {
            target: "peer_id",
            name: "seed-ed25519",
            data: peer(0).to_bytes(),
        },
        Seed {
            target: "peer_id",
            name: "seed-sha256",
            data: rsa_style.to_bytes(),
        },
        Seed {
            target: "peer_id",
            name: "seed-secp256k1",
            data: Keypair::generate_secp256k1()
                .public()
                .to_peer_id()
                .to_bytes(),
        },
    ]
}

fn key_line(keypair: &Keypair) -> String {
    punchr_keyfile::encode(keypair).expect("encode a key")
}

fn key_file_seeds() -> Vec<Seed> {
    let ed25519 = format!(
        "{}\n{}\n",
        key_line(&punchr_keyfile::from_seed(b"punchr fuzz seeds", 10)),
        key_line(&punchr_keyfile::from_seed(b"punchr fuzz seeds", 11)),
    );
    let mixed = format!(
        "{}\n\n{}\n{}",
        key_line(&punchr_keyfile::from_seed(b"punchr fuzz seeds", 12)),
        key_line(&Keypair::generate_secp256k1()),
        key_line(&Keypair::generate_ecdsa()),
    );
    vec![
        Seed {
            target: "key_file",
            name: "seed-two-ed25519-keys",
            data: ed25519.into_bytes(),
        },
        Seed {
            target: "key_file",
            name: "seed-ed25519-secp256k1-ecdsa",
            data: mixed.into_bytes(),
        },
    ]
}

/// The file the client's outbox writes for a result.
fn outbox_seed() -> Seed {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let outbox = punchr_client::outbox::Outbox::open(dir.path()).expect("open an outbox");
    let entry = outbox
        .push(&track_hole_punch_request())
        .expect("push a result");
    Seed {
        target: "outbox_file",
        name: "seed-track-hole-punch",
        data: std::fs::read(entry.path()).expect("read the entry"),
    }
}

fn command_line(binary: u8, args: &[&str]) -> Vec<u8> {
    let mut data = vec![binary];
    data.extend(args.join("\0").into_bytes());
    data
}

fn config_seeds() -> Vec<Seed> {
    let bootstrap = format!("/ip4/198.18.0.1/tcp/4001/p2p/{}", peer(5));
    vec![
        Seed {
            target: "config",
            name: "seed-server",
            data: command_line(
                0,
                &[
                    "--db",
                    "/var/lib/punchr/punchr.sqlite",
                    "--fresh-window",
                    "10m",
                    "--repeat-window",
                    "90s",
                    "--protocol-filters",
                    "ip4/tcp,ip4/quic",
                    "--rate-limit",
                    "5",
                    "--host",
                    "::",
                ],
            ),
        },
        Seed {
            target: "config",
            name: "seed-server-keys-add",
            data: command_line(0, &["keys", "add", "--name", "alice"]),
        },
        Seed {
            target: "config",
            name: "seed-client",
            data: command_line(
                1,
                &[
                    "--api-key",
                    "4c3f0a5e-55b6-4d5c-9a65-2b6f0e7d3c21",
                    "--bootstrap-peers",
                    &bootstrap,
                    "--host-count",
                    "3",
                    "--stream-timeout",
                    "500ms",
                    "--listen",
                    "0.0.0.0,::",
                    "--server-ssl",
                ],
            ),
        },
        Seed {
            target: "config",
            name: "seed-honeypot",
            data: command_line(
                2,
                &[
                    "--bootstrap-peers",
                    &bootstrap,
                    "--kad-protocol",
                    "/ipfs/kad/1.0.0",
                    "--crawl-timeout",
                    "5s",
                    "--walk-timeout",
                    "1h",
                    "--external-address",
                    "/ip4/198.18.0.2/tcp/11000",
                ],
            ),
        },
    ]
}
