//! Helpers shared by the server's integration tests: start a real server in-process on the test
//! database, talk to it over real gRPC, seed what the honeypot would have seen, and build
//! realistic requests.
//!
//! Each test binary uses a different subset, hence `dead_code` is allowed here.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod wire;

use std::fmt::Debug;

use libp2p_identity::PeerId;
use multiaddr::{Multiaddr, Protocol};
use punchr_proto as pb;
use punchr_proto::punchr_service_client::PunchrServiceClient;
use punchr_server::{RunningServer, ServerConfig};
use punchr_store::{now_unix_nanos, ConnectionEventRecord, PeerInfo, Store};
use punchr_testutil::fixtures::{peer_id, relay_address};
use punchr_testutil::TestDb;
use sqlx::Row;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// The generated client over a plain channel.
pub type Client = PunchrServiceClient<Channel>;

/// One second and one minute in nanoseconds.
pub const SECOND_NS: i64 = 1_000_000_000;
pub const MINUTE_NS: i64 = 60 * SECOND_NS;

pub const CLIENT_AGENT: &str = "punchr-rs/client/0.1.0";
pub const REMOTE_AGENT: &str = "kubo/0.25.0/";
pub const DCUTR: &str = "/libp2p/dcutr";

// ---------------------------------------------------------------------------------------------
// Servers and clients
// ---------------------------------------------------------------------------------------------

/// The server configuration of `punchr-server --db <db> --port 0 …` plus `extra` flags
/// (`punchr_testutil::server`), so every other setting is the real default.
pub fn config(db: &TestDb, extra: &[&str]) -> ServerConfig {
    punchr_testutil::server::config(&db.location, extra)
}

/// Starts a server on the test database with `extra` flags.
pub async fn start_server(db: &TestDb, extra: &[&str]) -> RunningServer {
    punchr_testutil::server::start(&db.location, extra).await
}

/// A gRPC client connected to `server` over plain HTTP/2.
pub async fn connect(server: &RunningServer) -> Client {
    PunchrServiceClient::connect(format!("http://{}", server.grpc_addr()))
        .await
        .expect("connect to the server")
}

/// Starts a server with `extra` flags and connects a client to it.
pub async fn serve(db: &TestDb, extra: &[&str]) -> (RunningServer, Client) {
    let server = start_server(db, extra).await;
    let client = connect(&server).await;
    (server, client)
}

// ---------------------------------------------------------------------------------------------
// API keys and client hosts
// ---------------------------------------------------------------------------------------------

/// Creates a named API key and returns the key itself, as a client would hold it.
pub async fn new_api_key(store: &Store, name: &str) -> String {
    let (_, secret) = store.create_api_key(name).await.expect("create an API key");
    secret.expose().to_owned()
}

/// The database id of a key.
pub async fn api_key_id(store: &Store, key: &str) -> i64 {
    store
        .authenticate(&punchr_store::ApiKeySecret::new(key))
        .await
        .expect("look up the key")
        .expect("the key exists")
        .id
}

pub fn client_protocols() -> Vec<String> {
    ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", DCUTR]
        .map(String::from)
        .to_vec()
}

pub fn register_request(api_key: &str, host: &PeerId) -> pb::RegisterRequest {
    pb::RegisterRequest {
        client_id: host.to_bytes(),
        agent_version: CLIENT_AGENT.into(),
        protocols: client_protocols(),
        api_key: api_key.into(),
    }
}

/// Registers a fresh host with `api_key`; returns the host's peer ID.
pub async fn register_host(client: &mut Client, api_key: &str) -> PeerId {
    let host = peer_id();
    client
        .register(register_request(api_key, &host))
        .await
        .expect("register a host");
    host
}

/// A new API key named `name` with one registered host.
pub async fn new_client(store: &Store, client: &mut Client, name: &str) -> (String, PeerId) {
    let key = new_api_key(store, name).await;
    let host = register_host(client, &key).await;
    (key, host)
}

pub fn get_addr_info_request(
    api_key: &str,
    host: &PeerId,
    all_hosts: &[PeerId],
) -> pb::GetAddrInfoRequest {
    pb::GetAddrInfoRequest {
        host_id: host.to_bytes(),
        all_host_ids: all_hosts.iter().map(|host| host.to_bytes()).collect(),
        api_key: api_key.into(),
    }
}

/// GetAddrInfo for a client with the single host `host`.
pub async fn ask(
    client: &mut Client,
    api_key: &str,
    host: &PeerId,
) -> Result<pb::GetAddrInfoResponse, Status> {
    client
        .get_addr_info(get_addr_info_request(api_key, host, &[*host]))
        .await
        .map(tonic::Response::into_inner)
}

// ---------------------------------------------------------------------------------------------
// What the honeypot saw
// ---------------------------------------------------------------------------------------------

/// A NATed peer seeded as if it had connected to the honeypot.
#[derive(Debug, Clone)]
pub struct Remote {
    pub peer: PeerId,
    /// Its relay (`/p2p-circuit`) addresses: the only ones GetAddrInfo may serve.
    pub relay_addresses: Vec<Multiaddr>,
    /// Every address it advertised, relay and direct.
    pub advertised: Vec<Multiaddr>,
}

/// How to seed a remote.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Relay numbers of its relay addresses.
    pub relays: Vec<u8>,
    /// Whether it speaks `/libp2p/dcutr`.
    pub dcutr: bool,
    /// How long ago it connected to the honeypot, ns.
    pub seen_ago_ns: i64,
}

impl Default for Seed {
    fn default() -> Self {
        Seed {
            relays: vec![1, 2],
            dcutr: true,
            seen_ago_ns: 30 * SECOND_NS,
        }
    }
}

pub fn remote_protocols(dcutr: bool) -> Vec<String> {
    let mut protocols: Vec<String> = [
        "/ipfs/id/1.0.0",
        "/ipfs/kad/1.0.0",
        "/ipfs/ping/1.0.0",
        "/libp2p/circuit/relay/0.2.0/stop",
    ]
    .map(String::from)
    .to_vec();
    if dcutr {
        protocols.push(DCUTR.into());
    }
    protocols
}

/// Records a connection event of a new remote at the honeypot, advertising relay addresses
/// besides private, loopback and public direct ones.
pub async fn seed_remote_with(store: &Store, seed: Seed) -> Remote {
    seed_connection(store, peer_id(), seed).await
}

/// Records a connection event of `peer` at the honeypot (a new or a known remote).
pub async fn seed_connection(store: &Store, peer: PeerId, seed: Seed) -> Remote {
    let relay_addresses: Vec<Multiaddr> = seed
        .relays
        .iter()
        .map(|&relay| relay_address(relay, &peer))
        .collect();
    let mut advertised = relay_addresses.clone();
    advertised.extend(
        [
            "/ip4/192.168.178.23/tcp/4001",
            "/ip4/192.168.178.23/udp/4001/quic-v1",
            "/ip4/127.0.0.1/tcp/4001",
            "/ip6/::1/tcp/4001",
            "/ip4/198.18.7.9/tcp/4001",
        ]
        .iter()
        .map(|text| text.parse::<Multiaddr>().expect("valid address")),
    );
    let event = ConnectionEventRecord {
        local: PeerInfo {
            peer_id: honeypot().to_base58(),
            agent_version: Some("punchr/honeypot/0.1.0".into()),
            protocols: vec!["/ipfs/id/1.0.0".into(), "/ipfs/kad/1.0.0".into()],
        },
        remote: PeerInfo {
            peer_id: peer.to_base58(),
            agent_version: Some(REMOTE_AGENT.into()),
            protocols: remote_protocols(seed.dcutr),
        },
        connection_address: relay_addresses
            .first()
            .cloned()
            .unwrap_or_else(|| "/ip4/198.18.7.9/tcp/4001".parse().expect("valid")),
        advertised_addresses: advertised.clone(),
        opened_at: now_unix_nanos() - seed.seen_ago_ns,
    };
    store
        .record_connection_event(&event)
        .await
        .expect("record a connection event");
    Remote {
        peer,
        relay_addresses,
        advertised,
    }
}

/// A DCUtR-capable remote seen 30 s ago with two relay addresses.
pub async fn seed_remote(store: &Store) -> Remote {
    seed_remote_with(store, Seed::default()).await
}

/// The honeypot's peer ID, the same for every event of a test run.
pub fn honeypot() -> PeerId {
    static HONEYPOT: std::sync::OnceLock<PeerId> = std::sync::OnceLock::new();
    *HONEYPOT.get_or_init(peer_id)
}

pub fn decode_peer(bytes: &[u8]) -> PeerId {
    PeerId::from_bytes(bytes).expect("a peer ID")
}

pub fn decode_addresses(list: &[Vec<u8>]) -> Vec<Multiaddr> {
    list.iter()
        .map(|bytes| Multiaddr::try_from(bytes.clone()).expect("a multiaddress"))
        .collect()
}

/// The relay's peer ID in a relay address (the first `/p2p` component).
pub fn relay_of(address: &Multiaddr) -> PeerId {
    address
        .iter()
        .find_map(|protocol| match protocol {
            Protocol::P2p(peer) => Some(peer),
            _ => None,
        })
        .expect("a relay address names its relay")
}

// ---------------------------------------------------------------------------------------------
// Hole punch results
// ---------------------------------------------------------------------------------------------

/// The current time in Unix nanoseconds, as the wire carries it.
pub fn now() -> u64 {
    u64::try_from(now_unix_nanos()).expect("after 1970")
}

/// Direct addresses of a remote, as the hole punch dials them.
pub fn direct_addresses() -> Vec<Multiaddr> {
    [
        "/ip4/198.18.7.9/tcp/4001",
        "/ip4/198.18.7.9/udp/4001/quic-v1",
        "/ip6/2001:67c:2b0::9/tcp/4001",
        "/ip6/2001:67c:2b0::9/udp/4001/quic-v1",
    ]
    .iter()
    .map(|text| text.parse().expect("valid address"))
    .collect()
}

pub fn listen_addresses() -> Vec<Multiaddr> {
    [
        "/ip4/192.168.1.10/tcp/12000",
        "/ip4/192.168.1.10/udp/12000/quic-v1",
    ]
    .iter()
    .map(|text| text.parse().expect("valid address"))
    .collect()
}

fn bytes_of(addresses: &[Multiaddr]) -> Vec<Vec<u8>> {
    addresses.iter().map(Multiaddr::to_vec).collect()
}

/// A valid, complete result of a successful hole punch by `client` with `remote` that ended a
/// moment ago: three attempts (two failures, then success), latency measurements to the relay
/// and to the remote, a NAT mapping and network information.
pub fn track_request(api_key: &str, client: &PeerId, remote: &PeerId) -> pb::TrackHolePunchRequest {
    const MS: u64 = 1_000_000;
    let start = now() - 10_000 * MS;
    let relayed = vec![relay_address(1, remote), relay_address(2, remote)];
    let direct = direct_addresses();
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
        multi_addresses: bytes_of(&direct),
        handshake_role: None,
    };
    pb::TrackHolePunchRequest {
        client_id: client.to_bytes(),
        remote_id: remote.to_bytes(),
        remote_multi_addresses: bytes_of(&relayed),
        connect_started_at: start,
        connect_ended_at: start + 150 * MS,
        hole_punch_attempts: vec![
            attempt(0, pb::HolePunchAttemptOutcome::Failed),
            attempt(1, pb::HolePunchAttemptOutcome::Failed),
            attempt(2, pb::HolePunchAttemptOutcome::Success),
        ],
        open_multi_addresses: bytes_of(&[direct[0].clone(), relayed[0].clone()]),
        has_direct_conns: true,
        error: None,
        outcome: pb::HolePunchOutcome::Success.into(),
        ended_at: start + 3_500 * MS,
        listen_multi_addresses: bytes_of(&listen_addresses()),
        api_key: api_key.into(),
        protocols: vec![4, 6],
        latency_measurements: vec![
            pb::LatencyMeasurement {
                remote_id: relay_of(&relayed[0]).to_bytes(),
                agent_version: "go-ipfs/0.18.1".into(),
                protocols: vec![
                    "/ipfs/ping/1.0.0".into(),
                    "/libp2p/circuit/relay/0.2.0/hop".into(),
                ],
                multi_address: relayed[0].to_vec(),
                rtts: vec![0.03125, 0.0390625, -1.0],
                rtt_errs: vec![String::new(), String::new(), "stream reset".into()],
                mtype: pb::LatencyMeasurementType::ToRelay.into(),
            },
            pb::LatencyMeasurement {
                remote_id: remote.to_bytes(),
                agent_version: REMOTE_AGENT.into(),
                protocols: remote_protocols(true),
                multi_address: direct[0].to_vec(),
                rtts: vec![0.015625, 0.0234375],
                rtt_errs: vec![],
                mtype: pb::LatencyMeasurementType::ToRemoteAfterHolePunch.into(),
            },
        ],
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
        // Fields this project added (numbered 100 and up) stay unset, like an original client's.
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Database and status checks
// ---------------------------------------------------------------------------------------------

/// Rows in `table`.
pub async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(store.pool())
        .await
        .expect("count rows")
        .try_get(0)
        .expect("a count")
}

/// Ids of the stored hole punch results, oldest first.
pub async fn result_ids(store: &Store) -> Vec<i64> {
    sqlx::query("SELECT id FROM hole_punch_results ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("list results")
        .iter()
        .map(|row| row.try_get(0).expect("an id"))
        .collect()
}

/// Asserts that `result` failed with `code` and a message containing `message`.
#[track_caller]
pub fn assert_status<T: Debug>(result: Result<T, Status>, code: Code, message: &str) {
    match result {
        Ok(value) => panic!("expected {code:?} containing {message:?}, got Ok({value:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            assert!(
                status.message().contains(message),
                "message {:?} does not contain {message:?}",
                status.message()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

pub use punchr_testutil::http::{http_get, metric_sample};

/// The current value of the server's counter or gauge `series`, 0 before its first sample.
pub async fn server_metric(server: &RunningServer, series: &str) -> f64 {
    let (status, metrics) = http_get(server.telemetry_addr(), "/metrics").await;
    assert_eq!(status, 200, "{metrics}");
    metric_sample(&metrics, series).unwrap_or(0.0)
}
