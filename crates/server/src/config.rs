//! Command line and environment configuration of `punchr-server`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
pub use punchr_store::parse_duration;
use punchr_store::SelectionRules;

use crate::connections::ConnectionLimits;
use crate::filter::{FilterDraw, ProtocolFilter};
use crate::validate::{max_track_hole_punch_request_bytes, Limits};

/// The Punchr server: hands NATed peers to clients and stores their hole punch results.
#[derive(Debug, Parser)]
#[command(name = "punchr-server", version, about)]
pub struct Cli {
    /// What to do; without a command the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log lines on standard error: text (coloured only on a terminal) or json (one object per
    /// line).
    #[arg(
        long,
        env = "PUNCHR_SERVER_LOG_FORMAT",
        value_enum,
        default_value_t,
        global = true
    )]
    pub log_format: punchr_logging::LogFormat,
    /// Server settings.
    #[command(flatten)]
    pub server: ServerConfig,
}

/// Commands besides serving.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print what the campaign measured (success rates, splits, timings, failure reasons).
    Report(punchr_report::cli::ReportArgs),
}

/// API key management.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once (only its hash is stored).
    Add {
        /// Who the key belongs to.
        #[arg(long)]
        name: String,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke the active key with this name, or the key with this id (anonymous keys all share
    /// the name "anonymous"; `keys list` shows their ids).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["name", "id"])))]
    Revoke {
        /// The key's name.
        #[arg(long)]
        name: Option<String>,
        /// The key's id.
        #[arg(long)]
        id: Option<i64>,
    },
}

/// Everything the server needs to run.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address to listen on for gRPC.
    #[arg(long, env = "PUNCHR_SERVER_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// gRPC port.
    #[arg(long, env = "PUNCHR_SERVER_PORT", default_value_t = 10000)]
    pub port: u16,
    /// Address of the telemetry endpoint (Prometheus /metrics).
    #[arg(
        long,
        env = "PUNCHR_SERVER_TELEMETRY_HOST",
        default_value = "127.0.0.1"
    )]
    pub telemetry_host: IpAddr,
    /// Telemetry port.
    #[arg(long, env = "PUNCHR_SERVER_TELEMETRY_PORT", default_value_t = 10001)]
    pub telemetry_port: u16,
    /// Address of the web dashboard (health, performance, personal results).
    #[arg(
        long,
        env = "PUNCHR_SERVER_DASHBOARD_HOST",
        default_value = "127.0.0.1"
    )]
    pub dashboard_host: IpAddr,
    /// Dashboard port. The dashboard is read-only: when its port is taken the server warns and
    /// runs without it rather than stop collecting results.
    #[arg(long, env = "PUNCHR_SERVER_DASHBOARD_PORT", default_value_t = 10002)]
    pub dashboard_port: u16,
    /// Database: a SQLite file path (created if missing) or a postgres:// URL.
    #[arg(
        long,
        env = "PUNCHR_SERVER_DB",
        default_value = "punchr.sqlite",
        global = true,
        hide_env_values = true
    )]
    pub db: String,
    /// PEM certificate chain for TLS; plain gRPC when absent.
    #[arg(long, env = "PUNCHR_SERVER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(
        long,
        env = "PUNCHR_SERVER_TLS_KEY",
        requires = "tls_cert",
        hide_env_values = true
    )]
    pub tls_key: Option<PathBuf>,
    /// Accept unknown API keys by registering them as anonymous keys, as the original's final
    /// version did.
    #[arg(long, env = "PUNCHR_SERVER_ALLOW_ANONYMOUS", default_value_t = false)]
    pub allow_anonymous: bool,
    /// When anonymous keys are allowed: new anonymous keys one source address may register per hour (IPv6
    /// addresses count per /64). A stranger making up a key per request would otherwise sidestep
    /// the per-key rate limit and grow the key table without bound.
    #[arg(long, env = "PUNCHR_SERVER_ANONYMOUS_KEYS_PER_ADDRESS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub anonymous_keys_per_address: u32,
    /// When anonymous keys are allowed: most anonymous keys that may be active at once; beyond it
    /// self-registration is refused until the operator revokes some (`keys list` shows them,
    /// `keys revoke` takes their ids).
    #[arg(
        long,
        env = "PUNCHR_SERVER_MAX_ANONYMOUS_KEYS",
        default_value_t = 10_000
    )]
    pub max_anonymous_keys: u32,
    /// Serve peers that connected to the honeypot within this window.
    #[arg(long, env = "PUNCHR_SERVER_FRESH_WINDOW", default_value = "10m", value_parser = parse_duration)]
    pub fresh_window: Duration,
    /// Hand out one remote at most this many times per --remote-limit-window, across clients.
    #[arg(long, env = "PUNCHR_SERVER_REMOTE_LIMIT", default_value_t = 10)]
    pub remote_limit: u32,
    /// The window of --remote-limit.
    #[arg(long, env = "PUNCHR_SERVER_REMOTE_LIMIT_WINDOW", default_value = "1m", value_parser = parse_duration)]
    pub remote_limit_window: Duration,
    /// Do not hand the same remote and relay address to a client again within this window.
    #[arg(long, env = "PUNCHR_SERVER_REPEAT_WINDOW", default_value = "10m", value_parser = parse_duration)]
    pub repeat_window: Duration,
    /// Hand one API key at most this many remotes per --remote-limit-window (all its hosts
    /// together). A client of 10 hosts punching back to back needs about 60 a minute.
    #[arg(long, env = "PUNCHR_SERVER_HANDOUTS_PER_KEY", default_value_t = 120)]
    pub handouts_per_key: u32,
    /// Hand one remote to one API key at most this many times per --remote-limit-window, so that
    /// one key cannot use up a remote's --remote-limit for every other client.
    #[arg(long, env = "PUNCHR_SERVER_REMOTE_LIMIT_PER_KEY", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub remote_limit_per_key: u32,
    /// Also serve relay addresses whose relay hop is not a public IP (loopback, private
    /// networks). For tests on one machine only: on the internet it lets a stranger who
    /// reaches the honeypot send volunteers into their own home networks.
    #[arg(
        long,
        env = "PUNCHR_SERVER_SERVE_PRIVATE_RELAYS",
        default_value_t = false
    )]
    pub serve_private_relays: bool,
    /// Do not attach the original's random protocol filter (15 % each ip4/tcp, ip4/quic,
    /// ip6/tcp, ip6/quic; 40 % none) to GetAddrInfo answers.
    #[arg(
        long,
        env = "PUNCHR_SERVER_NO_PROTOCOL_FILTER",
        default_value_t = false
    )]
    pub no_protocol_filter: bool,
    /// Instead of the original's draw, pick uniformly among these filters (comma separated:
    /// ip4/tcp, ip4/quic, ip6/tcp, ip6/quic, none).
    #[arg(
        long,
        env = "PUNCHR_SERVER_PROTOCOL_FILTERS",
        value_delimiter = ',',
        conflicts_with = "no_protocol_filter"
    )]
    pub protocol_filters: Vec<ProtocolFilter>,
    /// Largest gRPC request accepted, in bytes. The default is the largest TrackHolePunch
    /// request the validator accepts (every list and text at its limit), so a body is never
    /// buffered beyond what a valid result needs.
    #[arg(long, env = "PUNCHR_SERVER_MAX_REQUEST_BYTES", default_value_t = max_track_hole_punch_request_bytes(&Limits::default()))]
    pub max_request_bytes: usize,
    /// gRPC requests one connection may have open at once (HTTP/2 concurrent streams). A client
    /// sends one or two at a time per host.
    #[arg(long, env = "PUNCHR_SERVER_MAX_STREAMS_PER_CONNECTION", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_connection: u32,
    /// How long one gRPC request may take, its body included; a request still sending or
    /// waiting then is cancelled.
    #[arg(long, env = "PUNCHR_SERVER_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// How long a new connection (gRPC or dashboard) may take to bring its first request, TLS
    /// handshake and headers included.
    #[arg(long, env = "PUNCHR_SERVER_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Connections with no request in flight for this long are closed (clients reconnect).
    #[arg(long, env = "PUNCHR_SERVER_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Interval of HTTP/2 PINGs on gRPC connections; a peer that does not answer within
    /// --http2-keepalive-timeout is disconnected.
    #[arg(long, env = "PUNCHR_SERVER_HTTP2_KEEPALIVE_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub http2_keepalive_interval: Duration,
    /// See --http2-keepalive-interval.
    #[arg(long, env = "PUNCHR_SERVER_HTTP2_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub http2_keepalive_timeout: Duration,
    /// Idle time before the kernel probes a connection's peer (TCP keepalive): volunteers' NAT
    /// mappings expire and leave half-open connections behind.
    #[arg(long, env = "PUNCHR_SERVER_TCP_KEEPALIVE", default_value = "60s", value_parser = parse_duration)]
    pub tcp_keepalive: Duration,
    /// gRPC connections open at once; further ones wait until one closes.
    #[arg(long, env = "PUNCHR_SERVER_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Dashboard connections open at once.
    #[arg(long, env = "PUNCHR_SERVER_DASHBOARD_MAX_CONNECTIONS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub dashboard_max_connections: u32,
    /// Database connections of the dashboard and its reports, apart from those that store
    /// results.
    #[arg(long, env = "PUNCHR_SERVER_REPORT_POOL_SIZE", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub report_pool_size: u32,
    /// Reports the dashboard computes at once.
    #[arg(long, env = "PUNCHR_SERVER_REPORT_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub report_concurrency: u32,
    /// How long a dashboard report may wait for its turn and take before it is answered 503.
    #[arg(long, env = "PUNCHR_SERVER_REPORT_DEADLINE", default_value = "30s", value_parser = parse_duration)]
    pub report_deadline: Duration,
    /// Requests per second one API key may make, over all its hosts and RPCs (0: no limit).
    /// A client of 10 hosts makes about two requests per hole punch, a few per second at most.
    #[arg(long, env = "PUNCHR_SERVER_RATE_LIMIT", default_value_t = 20)]
    pub rate_limit: u32,
    /// Requests one API key may make at once above the rate (a client starting its hosts).
    #[arg(long, env = "PUNCHR_SERVER_RATE_LIMIT_BURST", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
}

impl ServerConfig {
    /// The limits of anonymous self-registration.
    pub fn self_registration(&self) -> crate::service::SelfRegistration {
        crate::service::SelfRegistration {
            per_address_per_hour: self.anonymous_keys_per_address,
            max_active_keys: i64::from(self.max_anonymous_keys),
        }
    }

    /// The per-key request quota, if limited.
    pub fn rate_quota(&self) -> Option<governor::Quota> {
        let rate = std::num::NonZeroU32::new(self.rate_limit)?;
        let burst = std::num::NonZeroU32::new(self.rate_limit_burst).unwrap_or(rate);
        Some(governor::Quota::per_second(rate).allow_burst(burst))
    }

    /// What the gRPC port accepts.
    pub fn grpc_connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections as usize,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            tcp_keepalive: self.tcp_keepalive,
        }
    }

    /// What the dashboard port accepts.
    pub fn dashboard_connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.dashboard_max_connections as usize,
            ..self.grpc_connection_limits()
        }
    }

    /// How much report work the dashboard takes on.
    pub fn dashboard_limits(&self) -> punchr_report::dashboard::DashboardLimits {
        punchr_report::dashboard::DashboardLimits {
            concurrent_reports: self.report_concurrency as usize,
            report_deadline: self.report_deadline,
        }
    }

    /// How GetAddrInfo answers pick their protocol filter.
    pub fn filter_draw(&self) -> FilterDraw {
        if self.no_protocol_filter {
            FilterDraw::Off
        } else if self.protocol_filters.is_empty() {
            FilterDraw::Original
        } else {
            FilterDraw::Uniform(self.protocol_filters.clone())
        }
    }

    /// The selection rules these flags describe.
    pub fn selection_rules(&self) -> SelectionRules {
        SelectionRules {
            fresh_within_ns: nanos(self.fresh_window),
            remote_limit: i64::from(self.remote_limit),
            remote_limit_window_ns: nanos(self.remote_limit_window),
            repeat_window_ns: nanos(self.repeat_window),
            handouts_per_key: i64::from(self.handouts_per_key),
            remote_limit_per_key: i64::from(self.remote_limit_per_key),
            serve_private_relays: self.serve_private_relays,
            ..SelectionRules::default()
        }
    }
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("ten")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
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
        assert_eq!(
            parse_duration("18446744073709551615s"),
            Ok(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn defaults_match_the_original() {
        let cli = Cli::parse_from(["punchr-server"]);
        let rules = cli.server.selection_rules();
        assert_eq!(rules, SelectionRules::default());
        assert_eq!(cli.server.port, 10000);
        assert_eq!(cli.server.telemetry_port, 10001);
        assert_eq!(cli.server.dashboard_port, 10002);
        assert_eq!(cli.server.db, "punchr.sqlite");
        assert!(!cli.server.allow_anonymous);
    }
}
