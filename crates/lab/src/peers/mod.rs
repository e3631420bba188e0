//! Stock rust-libp2p 0.57.1 programs for the lab's other peers: a circuit relay v2 server
//! (`punchr-lab relay`), Kademlia bootstrap servers (`punchr-lab bootstrap`) and NATed remote
//! peers (`punchr-lab remote-peer`) that behave like real IPFS nodes behind NAT: a relay
//! reservation, `/p2p-circuit` listen addresses, the stock `libp2p-dcutr` 0.15 behaviour,
//! identify, and a Kademlia *client* doing periodic random lookups, which makes it connect to DHT
//! servers, the honeypot among them.
//!
//! Identities are derived from `--seed` with [`punchr_keyfile::from_seed`] (index 0), the same
//! derivation as the lab's `{peer_id:NAME}` placeholder, so scenarios can name each other's peer
//! IDs. Any other implementation can replace these programs in a scenario's command template.

mod bootstrap;
mod relay;
mod remote;

use std::net::Ipv4Addr;
use std::time::Duration;

use clap::Args;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{identify, Multiaddr, PeerId};

use crate::error::{LabError, Result};
use crate::scenario::parse_duration;

pub use bootstrap::run as run_bootstrap;
pub use relay::run as run_relay;
pub use remote::run as run_remote;

/// The identify protocol version all lab peers announce (the IPFS one).
pub const IDENTIFY_PROTOCOL: &str = "/ipfs/id/1.0.0";

/// `punchr-lab relay`.
#[derive(Debug, Clone, Args)]
pub struct RelayArgs {
    /// Address to listen on (TCP and QUIC) and to announce.
    #[arg(long, env = "PUNCHR_LAB_RELAY_LISTEN_IP")]
    pub listen_ip: Ipv4Addr,
    /// Port for TCP and for QUIC.
    #[arg(long, env = "PUNCHR_LAB_RELAY_PORT", default_value_t = 4001)]
    pub port: u16,
    /// Identity seed.
    #[arg(long, env = "PUNCHR_LAB_RELAY_SEED")]
    pub seed: String,
}

/// `punchr-lab bootstrap`.
#[derive(Debug, Clone, Args)]
pub struct BootstrapArgs {
    /// Address to listen on (TCP and QUIC) and to announce.
    #[arg(long, env = "PUNCHR_LAB_BOOTSTRAP_LISTEN_IP")]
    pub listen_ip: Ipv4Addr,
    /// Port for TCP and for QUIC.
    #[arg(long, env = "PUNCHR_LAB_BOOTSTRAP_PORT", default_value_t = 4001)]
    pub port: u16,
    /// Identity seed.
    #[arg(long, env = "PUNCHR_LAB_BOOTSTRAP_SEED")]
    pub seed: String,
    /// Other DHT servers (multiaddresses ending in /p2p/ID), comma-separated.
    #[arg(long, env = "PUNCHR_LAB_BOOTSTRAP_BOOTSTRAP", value_delimiter = ',')]
    pub bootstrap: Vec<Multiaddr>,
    /// How often to refresh the routing table.
    #[arg(long, env = "PUNCHR_LAB_BOOTSTRAP_REFRESH", default_value = "30s", value_parser = parse_duration)]
    pub refresh: Duration,
}

/// `punchr-lab remote-peer`.
#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    /// Identity seed.
    #[arg(long, env = "PUNCHR_LAB_REMOTE_SEED")]
    pub seed: String,
    /// Port to listen on (TCP and QUIC, all addresses); dials reuse it, as libp2p does.
    #[arg(long, env = "PUNCHR_LAB_REMOTE_PORT", default_value_t = 4001)]
    pub port: u16,
    /// Relays to hold reservations on (multiaddresses ending in /p2p/ID), comma-separated.
    #[arg(
        long,
        env = "PUNCHR_LAB_REMOTE_RELAY",
        value_delimiter = ',',
        required = true
    )]
    pub relay: Vec<Multiaddr>,
    /// DHT servers to bootstrap from (multiaddresses ending in /p2p/ID), comma-separated.
    #[arg(long, env = "PUNCHR_LAB_REMOTE_BOOTSTRAP", value_delimiter = ',')]
    pub bootstrap: Vec<Multiaddr>,
    /// Time between random DHT lookups.
    #[arg(long, env = "PUNCHR_LAB_REMOTE_LOOKUP_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub lookup_interval: Duration,
    /// Instead of waiting to be punched, dial this relayed address
    /// (`<relay>/p2p/RELAY/p2p-circuit/p2p/TARGET`) as DCUtR side A once identify with the relay
    /// has told us our observed address; print one JSON line saying whether a direct connection
    /// appeared, and exit.
    #[arg(long, env = "PUNCHR_LAB_REMOTE_DIAL")]
    pub dial: Option<Multiaddr>,
    /// How long `--dial` waits for a direct connection.
    #[arg(long, env = "PUNCHR_LAB_REMOTE_DIAL_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub dial_timeout: Duration,
}

/// The identity for a seed (index 0, as `{peer_id:NAME}` computes it).
pub fn identity(seed: &str) -> Keypair {
    punchr_keyfile::from_seed(seed.as_bytes(), 0)
}

/// Identify, announcing `agent`.
fn identify(key: &Keypair, agent: &str) -> identify::Behaviour {
    identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public()).with_agent_version(
            format!("{agent}/{} (rust-libp2p 0.57.1)", env!("CARGO_PKG_VERSION")),
        ),
    )
}

/// The peer ID at the end of a multiaddress, and the address without it.
fn split_peer(addr: &Multiaddr) -> Result<(PeerId, Multiaddr)> {
    let mut transport = addr.clone();
    match transport.pop() {
        Some(Protocol::P2p(peer)) => Ok((peer, transport)),
        _ => Err(peer_error(format!("{addr} does not end in /p2p/<peer id>"))),
    }
}

/// The TCP and QUIC addresses for `ip:port`.
fn listen_addrs(ip: Ipv4Addr, port: u16) -> [Multiaddr; 2] {
    [
        Multiaddr::empty()
            .with(Protocol::Ip4(ip))
            .with(Protocol::Tcp(port)),
        Multiaddr::empty()
            .with(Protocol::Ip4(ip))
            .with(Protocol::Udp(port))
            .with(Protocol::QuicV1),
    ]
}

fn peer_error(message: impl Into<String>) -> LabError {
    LabError::Peer(message.into())
}

/// Runs `future` on a single-threaded runtime (the lab runs many peers on few cores) until it
/// ends or SIGINT/SIGTERM arrives.
pub fn block_on(future: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LabError::io("starting the async runtime", e))?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| LabError::io("installing signal handlers", e))?;
        tokio::select! {
            result = future => result,
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = term.recv() => Ok(()),
        }
    })
}
