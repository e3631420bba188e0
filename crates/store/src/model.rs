//! What callers hand the store: validated values, no wire types. The server converts requests
//! into these after validating them; the store only writes them.

use multiaddr::Multiaddr;
use punchr_types::{AttemptOutcome, HandshakeRole, LatencyKind, Outcome, RoleStrategy};

/// A libp2p peer as identify describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Base58 peer ID.
    pub peer_id: String,
    /// Identify agent version, if known.
    pub agent_version: Option<String>,
    /// Protocol IDs the peer speaks (any order; stored sorted).
    pub protocols: Vec<String>,
}

impl PeerInfo {
    /// A peer of which only the ID is known.
    pub fn bare(peer_id: impl Into<String>) -> PeerInfo {
        PeerInfo {
            peer_id: peer_id.into(),
            agent_version: None,
            protocols: Vec::new(),
        }
    }
}

/// A NATed peer that connected to the honeypot.
#[derive(Debug, Clone)]
pub struct ConnectionEventRecord {
    /// The honeypot itself.
    pub local: PeerInfo,
    /// The peer that connected.
    pub remote: PeerInfo,
    /// The remote address of the connection.
    pub connection_address: Multiaddr,
    /// The addresses the remote advertised.
    pub advertised_addresses: Vec<Multiaddr>,
    /// When the connection opened (Unix ns).
    pub opened_at: i64,
}

/// One DCUtR attempt of a hole punch.
#[derive(Debug, Clone, PartialEq)]
pub struct HolePunchAttemptRecord {
    /// When the remote's `/libp2p/dcutr` stream was seen (Unix ns).
    pub opened_at: i64,
    /// When the hole punch started (Unix ns).
    pub started_at: Option<i64>,
    /// When the attempt ended (Unix ns).
    pub ended_at: i64,
    /// Round trip time measured by the DCUtR exchange, seconds.
    pub start_rtt_seconds: Option<f64>,
    /// Duration of the attempt, seconds.
    pub elapsed_seconds: f64,
    /// The elapsed time as the client sent it, when the server normalised it (the original
    /// Rust client sends microseconds); `None` when `elapsed_seconds` is the value sent.
    pub elapsed_time_raw: Option<f64>,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Why it failed.
    pub error: Option<String>,
    /// Why a direct dial failed.
    pub direct_dial_error: Option<String>,
    /// Remote addresses used for the hole punch.
    pub addresses: Vec<Multiaddr>,
    /// Our handshake role in this attempt's dial, if the client says.
    pub handshake_role: Option<HandshakeRole>,
}

/// Pings to one peer around a hole punch.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRecord {
    /// The peer that was pinged.
    pub peer: PeerInfo,
    /// The address of the connection the pings went over.
    pub address: Multiaddr,
    /// What was measured.
    pub kind: LatencyKind,
    /// Samples in seconds; a negative value marks a failed sample.
    pub rtts: Vec<f64>,
    /// Errors parallel to `rtts` (empty string: no error).
    pub rtt_errors: Vec<String>,
}

/// What the client learned about its network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkInformation {
    /// Whether the client's network has IPv6.
    pub supports_ipv6: Option<bool>,
    /// Why the IPv6 check failed.
    pub supports_ipv6_error: Option<String>,
    /// The router's login page.
    pub router_login_html: Option<String>,
    /// Why fetching it failed.
    pub router_login_html_error: Option<String>,
}

/// A port mapping (UPnP / NAT-PMP) the client held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatMapping {
    /// Port on the client.
    pub internal_port: i32,
    /// Port on the router.
    pub external_port: i32,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// External address.
    pub addr: String,
    /// Network of the external address (`ip4`, `ip6`).
    pub addr_network: String,
}

/// One hole punch result with all its parts, validated, ready to be written in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct HolePunchRecord {
    /// The API key the result was reported with.
    pub api_key_id: i64,
    /// The client's id for this result; a second result with the same id is not stored again.
    pub report_id: Option<Vec<u8>>,
    /// The client host that punched.
    pub client_peer_id: String,
    /// The peer that was punched.
    pub remote_peer_id: String,
    /// Addresses GetAddrInfo served (stored as INITIAL).
    pub remote_addresses: Vec<Multiaddr>,
    /// Remote addresses of the connections open afterwards (stored as FINAL).
    pub open_addresses: Vec<Multiaddr>,
    /// The client host's listen addresses.
    pub listen_addresses: Vec<Multiaddr>,
    /// Start of the relayed connection (Unix ns).
    pub connect_started_at: i64,
    /// End of the relayed connection attempt (Unix ns).
    pub connect_ended_at: i64,
    /// End of the whole hole punch (Unix ns).
    pub ended_at: i64,
    /// Whether a direct connection existed afterwards.
    pub has_direct_conns: bool,
    /// Overall outcome.
    pub outcome: Outcome,
    /// Why it failed.
    pub error: Option<String>,
    /// Multiaddr protocol codes the client preferred.
    pub protocol_filters: Vec<i32>,
    /// The attempts in order.
    pub attempts: Vec<HolePunchAttemptRecord>,
    /// Latency measurements.
    pub latency_measurements: Vec<LatencyRecord>,
    /// Network information, if the client sent any.
    pub network_information: Option<NetworkInformation>,
    /// Port mappings.
    pub nat_mappings: Vec<NatMapping>,
    /// The client's role strategy, if it says (original clients do not).
    pub role_strategy: Option<RoleStrategy>,
}
