//! Command line and environment configuration of `punchr-client`, after the original clients'
//! flags (`punchr-original.md` §1.2) with `PUNCHR_CLIENT_*` variables.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use multiaddr::Multiaddr;
use punchr_types::bootstrap::AMINO_BOOTSTRAP_PEERS;
pub use punchr_types::duration::parse_duration;

/// The Punchr client: hole punches NATed peers the server hands out and reports every attempt.
#[derive(Debug, Clone, Parser)]
#[command(name = "punchr-client", version, about)]
pub struct ClientConfig {
    /// API key; also read from API_KEY as the original Rust client did.
    #[arg(long, env = "PUNCHR_CLIENT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Peers to bootstrap from: comma separated multiaddresses (ending in /p2p/<peer ID>, so
    /// that each is also dialed over the transports it was not reached over), `none` for none.
    /// Each host learns its public addresses from what these peers observe. Default: the IPFS
    /// Amino bootstrap peers.
    #[arg(
        long,
        env = "PUNCHR_CLIENT_BOOTSTRAP_PEERS",
        value_delimiter = ',',
        value_parser = parse_bootstrap_peer,
        default_values = AMINO_BOOTSTRAP_PEERS.iter().copied()
    )]
    pub bootstrap_peers: Vec<BootstrapPeer>,
    /// Number of libp2p hosts (identities on their own ports) to punch from, round-robin.
    #[arg(long, env = "PUNCHR_CLIENT_HOST_COUNT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub host_count: u32,
    /// Key file: one base64 protobuf-encoded private key per line (mode 0600). Default:
    /// $XDG_CONFIG_HOME/punchr/client.keys.
    #[arg(long, env = "PUNCHR_CLIENT_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Derive identities from this seed instead of the key file (tests, the lab).
    #[arg(long, env = "PUNCHR_CLIENT_SEED", conflicts_with = "key_file")]
    pub seed: Option<String>,
    /// Server host name or address.
    #[arg(long, env = "PUNCHR_CLIENT_SERVER_HOST", default_value = "localhost")]
    pub server_host: String,
    /// Server gRPC port.
    #[arg(long, env = "PUNCHR_CLIENT_SERVER_PORT", default_value_t = 10000)]
    pub server_port: u16,
    /// Talk TLS to the server: `--server-ssl` (or `=true`) or `--server-ssl=false`. Default: TLS
    /// for every server but one on this machine (`localhost`, 127.0.0.0/8, ::1), as the original
    /// client defaulted to TLS: the API key travels in every request.
    #[arg(
        long,
        env = "PUNCHR_CLIENT_SERVER_SSL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub server_ssl: Option<bool>,
    /// Accept any server certificate (insecure; for tests).
    #[arg(
        long,
        env = "PUNCHR_CLIENT_SERVER_SSL_SKIP_VERIFY",
        default_value_t = false
    )]
    pub server_ssl_skip_verify: bool,
    /// CA certificate (PEM) that signed the server's certificate; implies --server-ssl.
    #[arg(long, env = "PUNCHR_CLIENT_PEM")]
    pub pem: Option<PathBuf>,
    /// Address of the telemetry endpoint (/metrics, /healthz).
    #[arg(
        long,
        env = "PUNCHR_CLIENT_TELEMETRY_HOST",
        default_value = "127.0.0.1"
    )]
    pub telemetry_host: IpAddr,
    /// Telemetry port; 0 disables telemetry.
    #[arg(long, env = "PUNCHR_CLIENT_TELEMETRY_PORT", default_value_t = 12001)]
    pub telemetry_port: u16,
    /// Stop after this many hole punches (default: run until stopped).
    #[arg(long, env = "PUNCHR_CLIENT_ROUNDS")]
    pub rounds: Option<u64>,
    /// Addresses to listen on (TCP and QUIC on a free port each).
    #[arg(
        long,
        env = "PUNCHR_CLIENT_LISTEN",
        value_delimiter = ',',
        default_value = "0.0.0.0,::"
    )]
    pub listen: Vec<IpAddr>,
    /// How long to wait for the remote to open each /libp2p/dcutr stream.
    #[arg(long, env = "PUNCHR_CLIENT_STREAM_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub stream_timeout: Duration,
    /// How long to wait for the next event of a running attempt.
    #[arg(long, env = "PUNCHR_CLIENT_ATTEMPT_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub attempt_timeout: Duration,
    /// Deadline of the relayed connection to the remote.
    #[arg(long, env = "PUNCHR_CLIENT_CONNECT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Wait before asking again when the server has no peer.
    #[arg(long, env = "PUNCHR_CLIENT_NO_PEER_WAIT", default_value = "10s", value_parser = parse_duration)]
    pub no_peer_wait: Duration,
    /// How long bootstrapping may take to find the hosts' public addresses.
    #[arg(long, env = "PUNCHR_CLIENT_BOOTSTRAP_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub bootstrap_timeout: Duration,
    /// Directory of results not yet confirmed by the server. Default:
    /// $XDG_STATE_HOME/punchr/outbox.
    #[arg(long, env = "PUNCHR_CLIENT_OUTBOX")]
    pub outbox: Option<PathBuf>,
    /// Distinct peers that must observe an address before the client takes it as its public one.
    #[arg(long, env = "PUNCHR_CLIENT_MIN_OBSERVATIONS", default_value_t = 2)]
    pub min_observations: usize,
    /// Take the hosts' listen addresses as public without waiting for observations, and dial
    /// the non-public addresses a remote's CONNECT lists (private testbeds and loopback tests,
    /// where no address is public; never on a volunteer's machine).
    #[arg(long, env = "PUNCHR_CLIENT_ASSUME_PUBLIC", default_value_t = false)]
    pub assume_public: bool,
    /// Also dial relay addresses the server hands out whose relay hop is not a public IP
    /// (loopback tests and private testbeds only). Off, such addresses are refused before
    /// dialing: a stranger who reached the honeypot must not send this machine into its own
    /// network or at a victim.
    #[arg(
        long,
        env = "PUNCHR_CLIENT_DIAL_PRIVATE_RELAYS",
        default_value_t = false
    )]
    pub dial_private_relays: bool,
    /// How hole-punch dials choose their side of the direct connection's handshakes: `spec`
    /// (always the client, as stock rust-libp2p) or `adaptive` (from the remote's agent
    /// version, else client on attempts 1–2 and server on attempt 3, which also punches
    /// go-libp2p peers older than v0.48). Recorded with every result.
    #[arg(long, env = "PUNCHR_CLIENT_ROLE_STRATEGY", default_value = "adaptive")]
    pub role_strategy: punchr_dcutr::RoleStrategy,
    /// Skip the latency measurements (pings).
    #[arg(long, env = "PUNCHR_CLIENT_NO_PINGS", default_value_t = false)]
    pub no_pings: bool,
    /// Log lines on standard error: text (coloured only on a terminal) or json (one object per
    /// line).
    #[arg(long, env = "PUNCHR_CLIENT_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: punchr_logging::LogFormat,
}

impl ClientConfig {
    /// The API key from --api-key, PUNCHR_CLIENT_API_KEY or API_KEY.
    pub fn resolved_api_key(&self) -> Option<String> {
        self.api_key
            .clone()
            .or_else(|| std::env::var("API_KEY").ok())
            .filter(|key| !key.trim().is_empty())
    }

    /// Whether gRPC uses TLS; refuses `--server-ssl=false` together with a TLS setting.
    pub fn uses_tls(&self) -> Result<bool, String> {
        let tls_setting = self.pem.is_some() || self.server_ssl_skip_verify;
        match self.server_ssl {
            Some(false) if tls_setting => Err(
                "--server-ssl=false contradicts --pem and --server-ssl-skip-verify, which need TLS"
                    .into(),
            ),
            Some(on) => Ok(on),
            None => Ok(tls_setting || !is_this_machine(&self.server_host)),
        }
    }

    /// The key file to use when no seed is given.
    pub fn key_file_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| config_home().join("punchr").join("client.keys"))
    }

    /// The outbox directory.
    pub fn outbox_path(&self) -> PathBuf {
        self.outbox
            .clone()
            .unwrap_or_else(|| state_home().join("punchr").join("outbox"))
    }

    /// The server's URL.
    pub fn server_url(&self) -> Result<String, String> {
        let scheme = if self.uses_tls()? { "https" } else { "http" };
        Ok(format!(
            "{scheme}://{}:{}",
            self.server_host, self.server_port
        ))
    }
}

/// Whether a server host name or address is this machine, where plaintext gRPC exposes the key
/// to no network.
fn is_this_machine(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn config_home() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".config"))
}

fn state_home() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".local").join("state"))
}

/// One `--bootstrap-peers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapPeer {
    /// `none`: no bootstrap peer (tests, or a client told its addresses by `--assume-public`).
    None,
    /// A peer's address, ending in its `/p2p/` ID.
    Address(Multiaddr),
}

impl ClientConfig {
    /// The bootstrap peers' addresses, without the `none` entries.
    pub fn bootstrap_addresses(&self) -> Vec<Multiaddr> {
        self.bootstrap_peers
            .iter()
            .filter_map(|peer| match peer {
                BootstrapPeer::Address(address) => Some(address.clone()),
                BootstrapPeer::None => None,
            })
            .collect()
    }
}

/// Parses a `--bootstrap-peers` entry: `none`, or a multiaddress. An address without its
/// `/p2p/` ID is dialed all the same, but its peer is not asked to observe us over the other
/// transports.
pub fn parse_bootstrap_peer(text: &str) -> Result<BootstrapPeer, String> {
    let text = text.trim();
    if text == "none" {
        return Ok(BootstrapPeer::None);
    }
    text.parse()
        .map(BootstrapPeer::Address)
        .map_err(|e| format!("{text:?} is not a multiaddress: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_original() {
        let config = ClientConfig::parse_from(["punchr-client"]);
        assert_eq!(config.host_count, 10);
        assert_eq!(config.telemetry_port, 12001);
        assert_eq!(config.stream_timeout, Duration::from_secs(15));
        assert_eq!(config.no_peer_wait, Duration::from_secs(10));
        assert_eq!(config.server_url().unwrap(), "http://localhost:10000");
    }

    fn url_of(args: &[&str]) -> Result<String, String> {
        let config = ClientConfig::try_parse_from(["punchr-client"].iter().chain(args))
            .map_err(|e| e.to_string())?;
        config.server_url()
    }

    #[test]
    fn tls_is_the_default_for_every_server_off_this_machine() {
        assert_eq!(
            url_of(&["--server-host", "punchr.example.org"]).unwrap(),
            "https://punchr.example.org:10000"
        );
        assert_eq!(
            url_of(&["--server-host", "11.0.0.5"]).unwrap(),
            "https://11.0.0.5:10000"
        );
        for local in [
            "localhost",
            "127.0.0.1",
            "127.3.2.1",
            "::1",
            "[::1]",
            "LOCALHOST.",
        ] {
            assert!(
                url_of(&["--server-host", local])
                    .unwrap()
                    .starts_with("http://"),
                "{local}"
            );
        }
        assert_eq!(
            url_of(&["--server-host", "11.0.0.5", "--server-ssl=false"]).unwrap(),
            "http://11.0.0.5:10000"
        );
        assert_eq!(
            url_of(&["--server-ssl"]).unwrap(),
            "https://localhost:10000"
        );
        let err = url_of(&["--server-ssl=false", "--server-ssl-skip-verify"]).unwrap_err();
        assert!(err.contains("contradicts"), "{err}");
        let err = url_of(&["--server-ssl=maybe"]).unwrap_err();
        assert!(err.contains("maybe"), "{err}");
    }

    #[test]
    fn a_ca_file_implies_tls() {
        let config = ClientConfig::parse_from([
            "punchr-client",
            "--pem",
            "ca.pem",
            "--server-host",
            "punchr.example",
        ]);
        assert_eq!(config.server_url().unwrap(), "https://punchr.example:10000");
    }

    #[test]
    fn bad_values_are_refused_with_a_hint() {
        let err = ClientConfig::try_parse_from(["punchr-client", "--host-count", "0"]).unwrap_err();
        assert!(err.to_string().contains("host-count"), "{err}");
        let err = ClientConfig::try_parse_from(["punchr-client", "--stream-timeout", "soon"])
            .unwrap_err();
        assert!(err.to_string().contains("not a duration"), "{err}");
        let err = ClientConfig::try_parse_from([
            "punchr-client",
            "--bootstrap-peers",
            "/ip4/1.2.3.4/tcpx/1",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("bootstrap-peers"), "{err}");
    }

    #[test]
    fn bootstrap_peers_default_to_the_amino_dht_and_none_turns_them_off() {
        let config = ClientConfig::parse_from(["punchr-client"]);
        assert_eq!(
            config.bootstrap_addresses().len(),
            AMINO_BOOTSTRAP_PEERS.len()
        );
        let config = ClientConfig::parse_from(["punchr-client", "--bootstrap-peers", "none"]);
        assert!(config.bootstrap_addresses().is_empty());
        let boot = "/ip4/198.18.0.11/udp/4001/quic-v1/p2p/12D3KooWCeUxtoQpxqvQhBSRjoRws2nt2kLYT7zu8ec7DfBdE14h";
        let config = ClientConfig::parse_from(["punchr-client", "--bootstrap-peers", boot]);
        assert_eq!(config.bootstrap_addresses(), vec![boot.parse().unwrap()]);
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
