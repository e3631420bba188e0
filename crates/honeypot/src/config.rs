//! Command line and environment configuration of `punchr-honeypot`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
pub use punchr_store::parse_duration;

pub use punchr_types::bootstrap::AMINO_BOOTSTRAP_PEERS;

/// The Punchr honeypot: a DHT server that attracts NATed peers and records them.
#[derive(Debug, Parser)]
#[command(name = "punchr-honeypot", version, about)]
pub struct Cli {
    /// Honeypot settings.
    #[command(flatten)]
    pub honeypot: HoneypotConfig,
    /// Log lines on standard error: text (coloured only on a terminal) or json (one object per
    /// line).
    #[arg(long, env = "PUNCHR_HONEYPOT_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: punchr_logging::LogFormat,
}

/// Everything the honeypot needs to run.
#[derive(Debug, Clone, Args)]
pub struct HoneypotConfig {
    /// Key file holding the honeypot's identity (same format as the client's); created with a
    /// new Ed25519 key when missing. The first key is used.
    #[arg(long, env = "PUNCHR_HONEYPOT_KEY_FILE", default_value = "honeypot.key")]
    pub key_file: PathBuf,
    /// IP addresses to listen on, comma separated; TCP and QUIC on each.
    #[arg(
        long,
        env = "PUNCHR_HONEYPOT_LISTEN_IP",
        value_delimiter = ',',
        default_value = "0.0.0.0,::"
    )]
    pub listen_ip: Vec<IpAddr>,
    /// libp2p port for TCP and QUIC.
    #[arg(long, env = "PUNCHR_HONEYPOT_PORT", default_value_t = 11000)]
    pub port: u16,
    /// Addresses to announce besides the listen addresses (e.g. the public address of a host
    /// behind a cloud provider's 1:1 NAT), comma separated.
    #[arg(long, env = "PUNCHR_HONEYPOT_EXTERNAL_ADDRESS", value_delimiter = ',')]
    pub external_address: Vec<Multiaddr>,
    /// Address of the telemetry endpoint (Prometheus /metrics, /healthz, /readyz).
    #[arg(
        long,
        env = "PUNCHR_HONEYPOT_TELEMETRY_HOST",
        default_value = "127.0.0.1"
    )]
    pub telemetry_host: IpAddr,
    /// Telemetry port.
    #[arg(long, env = "PUNCHR_HONEYPOT_TELEMETRY_PORT", default_value_t = 11001)]
    pub telemetry_port: u16,
    /// Database: a SQLite file path (created if missing) or a postgres:// URL.
    #[arg(long, env = "PUNCHR_HONEYPOT_DB", default_value = "punchr.sqlite")]
    pub db: String,
    /// Peers the DHT walk starts from, comma separated multiaddresses ending in /p2p/<peer ID>;
    /// `none` for no bootstrap peers. Default: the IPFS Amino bootstrap peers.
    #[arg(long, env = "PUNCHR_HONEYPOT_BOOTSTRAP_PEERS", value_delimiter = ',', default_values_t = AMINO_BOOTSTRAP_PEERS.iter().map(|s| s.to_string()))]
    pub bootstrap_peers: Vec<String>,
    /// Kademlia protocol name; change it to walk another DHT network.
    #[arg(
        long,
        env = "PUNCHR_HONEYPOT_KAD_PROTOCOL",
        default_value = "/ipfs/kad/1.0.0"
    )]
    pub kad_protocol: String,
    /// How many peers the walk queries in parallel.
    #[arg(long, env = "PUNCHR_HONEYPOT_CRAWLER_COUNT", default_value_t = 10)]
    pub crawler_count: usize,
    /// Timeout for connecting to a peer during a walk, and for each of its answers.
    #[arg(long, env = "PUNCHR_HONEYPOT_CRAWL_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub crawl_timeout: Duration,
    /// Pause between two walks.
    #[arg(long, env = "PUNCHR_HONEYPOT_WALK_PAUSE", default_value = "10s", value_parser = parse_duration)]
    pub walk_pause: Duration,
    /// A walk that takes longer is stopped and reported as it is.
    #[arg(long, env = "PUNCHR_HONEYPOT_WALK_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub walk_timeout: Duration,
    /// Most peers one walk keeps track of (bounds its memory).
    #[arg(
        long,
        env = "PUNCHR_HONEYPOT_MAX_WALK_PEERS",
        default_value_t = 100_000
    )]
    pub max_walk_peers: usize,
    /// Also dial private addresses (10/8, 192.168/16, loopback, …) during walks. Off by default:
    /// from a data centre that looks like a port scan. Turn on for loopback tests.
    #[arg(
        long,
        env = "PUNCHR_HONEYPOT_CRAWL_PRIVATE_ADDRS",
        default_value_t = false
    )]
    pub crawl_private_addrs: bool,
    /// How long to wait for identify on an inbound connection before giving up on it.
    #[arg(long, env = "PUNCHR_HONEYPOT_IDENTIFY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub identify_timeout: Duration,
    /// Connections that are not kept open close after this idle time.
    #[arg(long, env = "PUNCHR_HONEYPOT_IDLE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Most established inbound connections.
    #[arg(long, env = "PUNCHR_HONEYPOT_MAX_INCOMING", default_value_t = 4096)]
    pub max_incoming: u32,
    /// Most established outbound connections (walks, DHT upkeep).
    #[arg(long, env = "PUNCHR_HONEYPOT_MAX_OUTGOING", default_value_t = 1024)]
    pub max_outgoing: u32,
    /// Most connections being set up, per direction.
    #[arg(long, env = "PUNCHR_HONEYPOT_MAX_PENDING", default_value_t = 256)]
    pub max_pending: u32,
    /// Most connections to one peer.
    #[arg(long, env = "PUNCHR_HONEYPOT_MAX_PER_PEER", default_value_t = 4)]
    pub max_per_peer: u32,
    /// Most recorded NATed peers' connections kept open to catch identify pushes; beyond this
    /// they close when idle.
    #[arg(long, env = "PUNCHR_HONEYPOT_MAX_KEPT", default_value_t = 2000)]
    pub max_kept: usize,
    /// Also record relay addresses whose relay hop is not a public IP (loopback, private
    /// networks). For tests on one machine only: on the internet a stranger could otherwise
    /// send the campaign's volunteers into their own home networks or at a victim.
    #[arg(
        long,
        env = "PUNCHR_HONEYPOT_RECORD_PRIVATE_RELAYS",
        default_value_t = false
    )]
    pub record_private_relays: bool,
    /// Most connection events recorded per peer ID per hour (connections and identify pushes
    /// with new relay addresses).
    #[arg(
        long,
        env = "PUNCHR_HONEYPOT_MAX_EVENTS_PER_PEER",
        default_value_t = 12
    )]
    pub max_events_per_peer: u32,
    /// Most distinct peer IDs recorded per source IP address (IPv6: per /64) per hour: fresh
    /// identities are free, so one machine could otherwise make a write per identity.
    #[arg(
        long,
        env = "PUNCHR_HONEYPOT_MAX_PEERS_PER_ADDRESS",
        default_value_t = 16
    )]
    pub max_peers_per_address: u32,
    /// Delete connection events older than this (checked at start, then hourly, or every
    /// retention when shorter); 0 keeps them all. Selection needs only the last minutes;
    /// reports of NATed peers met per hour need what they cover.
    #[arg(long, env = "PUNCHR_HONEYPOT_EVENT_RETENTION", default_value = "0s", value_parser = parse_duration)]
    pub event_retention: Duration,
    /// Refuse new connections while the process uses more memory than this, in MiB; 0 turns
    /// the check off.
    #[arg(long, env = "PUNCHR_HONEYPOT_MAX_MEMORY_MB", default_value_t = 1024)]
    pub max_memory_mb: usize,
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {reason}")]
pub struct ConfigError {
    /// The flag concerned.
    pub flag: &'static str,
    /// What is wrong and how to fix it.
    pub reason: String,
}

fn config_error(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        reason: reason.into(),
    }
}

/// A bootstrap peer with every address given for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapPeer {
    /// The peer.
    pub peer_id: PeerId,
    /// Its addresses, without the `/p2p/` suffix.
    pub addrs: Vec<Multiaddr>,
}

impl HoneypotConfig {
    /// The configuration the binary gets without flags: defaults, unless `PUNCHR_HONEYPOT_*`
    /// variables are set.
    pub fn defaults() -> HoneypotConfig {
        Cli::parse_from(["punchr-honeypot"]).honeypot
    }

    /// The Kademlia protocol as a stream protocol name.
    pub fn kad_protocol(&self) -> Result<StreamProtocol, ConfigError> {
        StreamProtocol::try_from_owned(self.kad_protocol.clone()).map_err(|e| {
            config_error(
                "--kad-protocol",
                format!("{e}; protocol names start with '/', e.g. /ipfs/kad/1.0.0"),
            )
        })
    }

    /// The bootstrap peers, grouped by peer.
    pub fn bootstrap_peers(&self) -> Result<Vec<BootstrapPeer>, ConfigError> {
        let mut peers: BTreeMap<PeerId, Vec<Multiaddr>> = BTreeMap::new();
        for text in self.bootstrap_peers.iter().map(|s| s.trim()) {
            if text.is_empty() || text == "none" {
                continue;
            }
            let mut addr: Multiaddr = text.parse().map_err(|e| {
                config_error(
                    "--bootstrap-peers",
                    format!("{text:?} is not a multiaddress: {e}"),
                )
            })?;
            let Some(Protocol::P2p(peer_id)) = addr.pop() else {
                return Err(config_error(
                    "--bootstrap-peers",
                    format!("{text:?} must end in /p2p/<peer ID>"),
                ));
            };
            peers.entry(peer_id).or_default().push(addr);
        }
        Ok(peers
            .into_iter()
            .map(|(peer_id, addrs)| BootstrapPeer { peer_id, addrs })
            .collect())
    }

    /// Checks every value that clap cannot check by itself.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.kad_protocol()?;
        self.bootstrap_peers()?;
        if self.listen_ip.is_empty() {
            return Err(config_error(
                "--listen-ip",
                "give at least one address, e.g. 0.0.0.0",
            ));
        }
        if self.crawler_count == 0 {
            return Err(config_error("--crawler-count", "must be at least 1"));
        }
        for (flag, value) in [
            ("--crawl-timeout", self.crawl_timeout),
            ("--identify-timeout", self.identify_timeout),
            ("--walk-timeout", self.walk_timeout),
        ] {
            if value.is_zero() {
                return Err(config_error(flag, "must be longer than 0s"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original_honeypot() {
        let config = HoneypotConfig::defaults();
        assert_eq!(config.port, 11000);
        assert_eq!(config.telemetry_port, 11001);
        assert_eq!(config.crawler_count, 10);
        assert_eq!(config.crawl_timeout, Duration::from_secs(5));
        assert_eq!(config.walk_timeout, Duration::from_secs(600));
        assert_eq!(config.key_file, PathBuf::from("honeypot.key"));
        assert_eq!(config.db, "punchr.sqlite");
        assert_eq!(config.kad_protocol().unwrap().as_ref(), "/ipfs/kad/1.0.0");
        assert_eq!(config.listen_ip.len(), 2);
        config.validate().unwrap();
    }

    #[test]
    fn the_amino_bootstrap_peers_parse_and_group() {
        let peers = HoneypotConfig::defaults().bootstrap_peers().unwrap();
        assert_eq!(peers.len(), 6, "mars has a TCP and a QUIC address");
        let mars = peers.iter().find(|p| p.addrs.len() == 2).unwrap();
        assert_eq!(
            mars.peer_id.to_base58(),
            "QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ"
        );
    }

    #[test]
    fn bootstrap_peers_need_a_peer_id() {
        let mut config = HoneypotConfig::defaults();
        config.bootstrap_peers = vec!["/ip4/1.2.3.4/tcp/4001".into()];
        let err = config.bootstrap_peers().unwrap_err();
        assert!(err.to_string().contains("/p2p/<peer ID>"), "{err}");
        config.bootstrap_peers = vec!["none".into()];
        assert!(config.bootstrap_peers().unwrap().is_empty());
    }

    #[test]
    fn bad_values_name_their_flag() {
        let mut config = HoneypotConfig::defaults();
        config.kad_protocol = "ipfs/kad".into();
        assert_eq!(config.validate().unwrap_err().flag, "--kad-protocol");
        let mut config = HoneypotConfig::defaults();
        config.crawler_count = 0;
        assert_eq!(config.validate().unwrap_err().flag, "--crawler-count");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("not a duration"));
    }

    #[test]
    fn huge_durations_are_refused_not_overflowed() {
        // Found while writing the config fuzz target: `value * 3600` overflowed (a panic in
        // debug builds, a wrapped, wrong duration in release builds).
        assert!(parse_duration("18446744073709551615h")
            .unwrap_err()
            .contains("too long"));
        assert!(parse_duration("307445734561825861m")
            .unwrap_err()
            .contains("too long"));
    }
}
