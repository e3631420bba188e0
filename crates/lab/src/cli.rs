//! Command line and environment configuration of `punchr-lab`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::nat::NatType;
use crate::peers::{BootstrapArgs, RelayArgs, RemoteArgs};
use crate::probe::ProbeCommand;
use crate::scenario::{parse_duration, parse_transport};
use crate::theory::Transport;

/// Punchr's lab: a small internet of network namespaces with NAT routers of known types, for
/// measuring hole punching with the real binaries.
#[derive(Debug, Parser)]
#[command(name = "punchr-lab", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log lines on standard error: text (coloured only on a terminal) or json (one object per
    /// line).
    #[arg(
        long,
        env = "PUNCHR_LAB_LOG_FORMAT",
        value_enum,
        default_value_t,
        global = true
    )]
    pub log_format: punchr_logging::LogFormat,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a scenario's lab, run its campaign, print a report, remove everything.
    Run(Box<RunArgs>),
    /// Build a scenario's lab and keep it until Ctrl-C (for experiments with `ip netns exec`).
    Up(UpArgs),
    /// Print a scenario's namespaces and addresses without building anything.
    Plan(ScenarioArgs),
    /// Remove what earlier runs left behind (namespaces, delayers, state files).
    Clean(CleanArgs),
    /// Check that this machine can host a lab (root, ip, nft, iptables, NFQUEUE).
    Check,
    /// The link delayer (runs inside a namespace; started by the lab).
    Delay(DelayArgs),
    /// A circuit relay v2 server (stock rust-libp2p).
    Relay(RelayArgs),
    /// A Kademlia DHT bootstrap server (stock rust-libp2p).
    Bootstrap(BootstrapArgs),
    /// A NATed peer: relay reservation, stock DCUtR, identify, DHT client lookups.
    RemotePeer(RemoteArgs),
    /// The lab's PostgreSQL peer for `run --db postgres` (runs inside a namespace; started by the
    /// lab).
    Database(crate::postgres::DatabaseArgs),
    /// Socket probes (run inside a namespace).
    #[command(subcommand)]
    Probe(ProbeCommand),
}

impl Command {
    /// The command's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::Up(_) => "up",
            Command::Plan(_) => "plan",
            Command::Clean(_) => "clean",
            Command::Check => "check",
            Command::Delay(_) => "delay",
            Command::Relay(_) => "relay",
            Command::Bootstrap(_) => "bootstrap",
            Command::RemotePeer(_) => "remote-peer",
            Command::Database(_) => "database",
            Command::Probe(_) => "probe",
        }
    }
}

/// Which scenario.
#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// A scenario file, or `default` / `ci` for the built-in ones.
    #[arg(long, env = "PUNCHR_LAB_SCENARIO", default_value = "default")]
    pub scenario: String,
}

/// Link settings that replace the scenario's defaults.
#[derive(Debug, Clone, Args)]
pub struct LinkArgs {
    /// One-way delay of every link that does not set its own (e.g. 10ms).
    #[arg(long, env = "PUNCHR_LAB_DELAY", value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// Uniform jitter around the delay.
    #[arg(long, env = "PUNCHR_LAB_JITTER", value_parser = parse_duration)]
    pub jitter: Option<Duration>,
    /// Loss probability per packet and direction (0.0 to 1.0).
    #[arg(long, env = "PUNCHR_LAB_LOSS")]
    pub loss: Option<f64>,
}

/// Where things go.
#[derive(Debug, Clone, Args)]
pub struct DirArgs {
    /// Directory of the Punchr binaries (`{bin_dir}` in command templates); default: the
    /// directory of this binary.
    #[arg(long, env = "PUNCHR_LAB_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Parent of the run directories (plan, logs, keys); it must belong to root and be writable
    /// by root only, and each run's directory in it is created fresh.
    #[arg(long, env = "PUNCHR_LAB_RUNS_DIR", default_value = crate::rundir::DEFAULT_RUNS_DIR)]
    pub runs_dir: PathBuf,
    /// Where `scripts/lab-peers` built the remote implementations other than rust (default:
    /// $XDG_CACHE_HOME/punchr-lab/peers, else ~/.cache/punchr-lab/peers).
    #[arg(long, env = "PUNCHR_LAB_PEERS_DIR")]
    pub peers_dir: Option<PathBuf>,
}

/// `punchr-lab run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The scenario.
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Link overrides.
    #[command(flatten)]
    pub link: LinkArgs,
    /// Directories.
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Campaign length, replacing the scenario's (the upper bound when --punches is given).
    #[arg(long, env = "PUNCHR_LAB_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// End the campaign once this many hole punch results are stored.
    #[arg(long, env = "PUNCHR_LAB_PUNCHES", value_parser = clap::value_parser!(u64).range(1..))]
    pub punches: Option<u64>,
    /// End the campaign once every cell it covers (client NAT × remote NAT × remote
    /// implementation × transport) holds this many decided punches (SUCCESS or FAILED).
    #[arg(long, env = "PUNCHR_LAB_PER_CELL", value_parser = clap::value_parser!(u64).range(1..))]
    pub per_cell: Option<u64>,
    /// NAT types of the clients, replacing the scenario's (public, full-cone, port-restricted,
    /// symmetric, udp-blocked, double), comma separated.
    #[arg(long, env = "PUNCHR_LAB_CLIENT_NATS", value_delimiter = ',')]
    pub client_nats: Option<Vec<NatType>>,
    /// NAT types of the remote peers, replacing the scenario's (any but public), comma
    /// separated.
    #[arg(long, env = "PUNCHR_LAB_REMOTE_NATS", value_delimiter = ',')]
    pub remote_nats: Option<Vec<NatType>>,
    /// Clients per client NAT type (each behind its own router).
    #[arg(long, env = "PUNCHR_LAB_CLIENTS")]
    pub clients: Option<usize>,
    /// Remote peers per remote NAT type (each behind its own router).
    #[arg(long, env = "PUNCHR_LAB_REMOTES")]
    pub remotes: Option<usize>,
    /// Libp2p implementations of the remote peers, replacing the scenario's: every remote NAT
    /// type gets its remotes once per implementation (rust, go-v0.40, go-v0.47, go-v0.52, kubo,
    /// js), comma separated. All but rust are built by `scripts/lab-peers`.
    #[arg(long, env = "PUNCHR_LAB_REMOTE_IMPLS", value_delimiter = ',')]
    pub remote_impls: Option<Vec<crate::implementation::Implementation>>,
    /// How the clients' hole-punch dials choose their handshake role (`spec`, `adaptive`):
    /// sets PUNCHR_CLIENT_ROLE_STRATEGY for every client the scenario runs.
    #[arg(long, env = "PUNCHR_LAB_ROLE_STRATEGY")]
    pub role_strategy: Option<String>,
    /// Hosts (identities) per client.
    #[arg(long, env = "PUNCHR_LAB_HOSTS_PER_CLIENT")]
    pub hosts_per_client: Option<u32>,
    /// Transports the server asks clients to punch with, drawn per punch: tcp, quic, or both.
    #[arg(long, env = "PUNCHR_LAB_TRANSPORTS", value_delimiter = ',', value_parser = parse_transport)]
    pub transports: Option<Vec<Transport>>,
    /// The campaign database: `postgres` for a PostgreSQL server the lab runs on its WAN, or a
    /// URL reachable from the lab's WAN namespace (default: a SQLite file in the run directory).
    #[arg(long, env = "PUNCHR_LAB_DB")]
    pub db: Option<String>,
    /// Where to write the HTML report (default: report.html in the run directory).
    #[arg(long, env = "PUNCHR_LAB_HTML")]
    pub html: Option<PathBuf>,
    /// Print the report as JSON instead of text.
    #[arg(long, env = "PUNCHR_LAB_JSON", default_value_t = false)]
    pub json: bool,
    /// How long a started peer may take to become ready.
    #[arg(long, env = "PUNCHR_LAB_READY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
}

/// `punchr-lab up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// The scenario.
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Link overrides.
    #[command(flatten)]
    pub link: LinkArgs,
    /// Directories.
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Also start the peers' commands.
    #[arg(long, env = "PUNCHR_LAB_START_PEERS", default_value_t = false)]
    pub start_peers: bool,
    /// How long a started peer may take to become ready.
    #[arg(long, env = "PUNCHR_LAB_READY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
}

/// `punchr-lab clean`.
#[derive(Debug, Clone, Args)]
pub struct CleanArgs {
    /// Also remove runs whose owner process still runs.
    #[arg(long, env = "PUNCHR_LAB_ALL", default_value_t = false)]
    pub all: bool,
}

/// `punchr-lab delay`.
#[derive(Debug, Clone, Args)]
pub struct DelayArgs {
    /// NFQUEUE queue number to serve.
    #[arg(long, env = "PUNCHR_LAB_DELAYER_QUEUE", default_value_t = 0)]
    pub queue: u16,
    /// How long to hold each packet.
    #[arg(long, env = "PUNCHR_LAB_DELAYER_DELAY", default_value = "10ms", value_parser = parse_duration)]
    pub delay: Duration,
    /// Uniform jitter around the delay.
    #[arg(long, env = "PUNCHR_LAB_DELAYER_JITTER", default_value = "0ms", value_parser = parse_duration)]
    pub jitter: Duration,
    /// Probability of dropping a packet.
    #[arg(long, env = "PUNCHR_LAB_DELAYER_LOSS", default_value_t = 0.0)]
    pub loss: f64,
    /// Seed for loss and jitter (random when absent).
    #[arg(long, env = "PUNCHR_LAB_DELAYER_SEED")]
    pub seed: Option<u64>,
}
