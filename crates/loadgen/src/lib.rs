//! A bounded load soak of the Punchr server: the real `punchr-server` binary on a fresh
//! PostgreSQL database, hundreds of simulated volunteers, figures over time.
//!
//! [`run`] creates a database on the test PostgreSQL server (`PUNCHR_TEST_POSTGRES_URL`, see
//! `punchr_testutil`), records a population of NATed remote peers as the honeypot would, creates
//! one API key per simulated client, starts the server binary on loopback ports and lets the
//! clients loop as the real client does (register its hosts, then GetAddrInfo, TrackHolePunch,
//! pause). While they run it keeps the honeypot's side going (each remote connects again every
//! few minutes, so none goes stale) and samples the server's RSS and CPU time from `/proc`.
//! Every [`SoakConfig::table_every`] it prints a row of the table; at the end it returns a
//! [`SoakSummary`] with per-RPC throughput, p50/p99/max latency, errors by gRPC code, the RSS
//! baseline (end of warm-up), peak and end, and the results sent next to those stored.
//!
//! The soak test of `punchr-server` (`crates/server/tests/integration/soak.rs`, a short run that checks the
//! behaviour) and its soak bench (`crates/server/benches/soak.rs`, the figures) run it.

mod client;
mod population;
pub mod punch;
pub mod server;
pub mod stats;
pub mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use punchr_store::{Store, StoreError};
use sqlx::Row as _;
use tokio::sync::watch;
use tokio::task::JoinSet;

use client::{Fleet, SimClient};
use population::Population;
pub use server::ServerProcess;
use stats::Recorder;
pub use summary::{Memory, Row, SoakSummary};

/// The longest soak [`SoakConfig::from_env`] accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(600);

/// The longest warm-up.
const MAX_WARMUP: Duration = Duration::from_secs(60);

/// Why a soak could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// The configuration is unusable.
    #[error("soak configuration: {0}")]
    Config(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A query of the checks failed.
    #[error("database check failed: {0}")]
    Query(#[from] sqlx::Error),
    /// The server process failed.
    #[error("server: {0}")]
    Server(String),
    /// The simulated honeypot's task ended abnormally.
    #[error("the honeypot task failed: {0}")]
    Honeypot(String),
    /// Reading `/proc`, writing the log or running a command failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// The `punchr-server` binary.
    pub server_binary: PathBuf,
    /// Flags for the server besides the database and the loopback ports.
    pub server_args: Vec<String>,
    /// Simulated clients, each with its own key and connection.
    pub clients: usize,
    /// NATed remote peers in the database.
    pub remotes: usize,
    /// Time from the first client's start to the stop signal, warm-up included.
    pub duration: Duration,
    /// The warm-up at the start: clients connect and register, the server's pools and caches
    /// fill; its figures stay out of the measured ones, and the RSS at its end is the baseline.
    pub warmup: Duration,
    /// Mean pause of a client after each hole punch (drawn from 0.5× to 1.5×); it stands for
    /// the seconds a real punch takes (relay dial, DCUtR stream, pings).
    pub think: Duration,
    /// How often a table row is printed.
    pub table_every: Duration,
    /// How often the server's RSS and CPU time are read.
    pub sample_every: Duration,
}

impl SoakConfig {
    /// 500 clients, 3000 remotes, one minute, with the server's default flags.
    ///
    /// Think time: 3 s. A client makes two calls per round (GetAddrInfo, TrackHolePunch), so 500
    /// clients make about 500 × 2 / 3 s ≈ 330 calls per second in total, and each key about
    /// 0.7 per second: far below the server's default limit of 20 per second (burst 100) per
    /// key, which therefore stays on, as in a volunteer fleet where every volunteer has a key.
    /// The 3000 remotes can be handed out 10 times a minute each (the default `--remote-limit`),
    /// 30 000 handouts a minute against the fleet's ≈ 10 000, so no client is left without a
    /// peer.
    pub fn new(server_binary: impl Into<PathBuf>) -> SoakConfig {
        SoakConfig {
            server_binary: server_binary.into(),
            server_args: Vec::new(),
            clients: 500,
            remotes: 3000,
            duration: Duration::from_secs(60),
            warmup: Duration::from_secs(20),
            think: Duration::from_secs(3),
            table_every: Duration::from_secs(10),
            sample_every: Duration::from_secs(2),
        }
        .with_duration(Duration::from_secs(60))
    }

    /// Sets the duration and a warm-up of a third of it, at most a minute.
    pub fn with_duration(mut self, duration: Duration) -> SoakConfig {
        self.duration = duration;
        self.warmup = (duration / 3).min(MAX_WARMUP);
        self
    }

    /// [`SoakConfig::new`] lasting `duration`, with overrides from the environment:
    /// `PUNCHR_SOAK_SECS` (duration, at most 600), `PUNCHR_SOAK_CLIENTS`, `PUNCHR_SOAK_THINK_MS`.
    pub fn from_env(
        server_binary: impl Into<PathBuf>,
        duration: Duration,
    ) -> Result<SoakConfig, SoakError> {
        let mut config = SoakConfig::new(server_binary).with_duration(duration);
        if let Some(secs) = env_number("PUNCHR_SOAK_SECS")? {
            let duration = Duration::from_secs(secs);
            if duration > MAX_DURATION || secs < 10 {
                return Err(SoakError::Config(format!(
                    "PUNCHR_SOAK_SECS={secs}: a soak runs 10 to {} seconds",
                    MAX_DURATION.as_secs()
                )));
            }
            config = config.with_duration(duration);
        }
        if let Some(clients) = env_number("PUNCHR_SOAK_CLIENTS")? {
            config.clients = usize::try_from(clients).unwrap_or(usize::MAX).max(1);
        }
        if let Some(millis) = env_number("PUNCHR_SOAK_THINK_MS")? {
            config.think = Duration::from_millis(millis);
        }
        Ok(config)
    }
}

fn env_number(name: &str) -> Result<Option<u64>, SoakError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| SoakError::Config(format!("{name}={text:?} is not a whole number"))),
    }
}

/// Remotes are seeded as seen by the honeypot within this window before the run, well inside the
/// server's default 10-minute freshness window.
const SEED_SPREAD: Duration = Duration::from_secs(240);

/// During the run each remote connects to the honeypot again once per this period, half the
/// server's default freshness window, so none drops out of it.
const HONEYPOT_ROUND: Duration = Duration::from_secs(300);

/// How long clients may take to finish the call in flight after the stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a soak as `config` says, printing the table as it goes.
pub async fn run(config: &SoakConfig) -> Result<SoakSummary, SoakError> {
    let database = punchr_testutil::PostgresDatabase::create().await;
    let db = database.url().to_owned();
    let store = Store::open(&db).await?;
    let population = Arc::new(Population::new(config.remotes));
    let preparing = Instant::now();
    population.seed(&store, SEED_SPREAD).await?;
    let mut keys = Vec::with_capacity(config.clients);
    for client in 0..config.clients {
        let (_, secret) = store
            .create_api_key(&format!("soak-volunteer-{client}"))
            .await?;
        keys.push(secret.expose().to_owned());
    }
    println!(
        "soak: seeded {} remotes and {} API keys in {:.1} s",
        config.remotes,
        config.clients,
        preparing.elapsed().as_secs_f64()
    );
    let logs = tempfile::tempdir()?;
    let server = ServerProcess::start(
        &config.server_binary,
        &db,
        &config.server_args,
        &logs.path().join("punchr-server.log"),
    )
    .await?;
    let outcome = drive(config, &store, &population, &server, keys).await;
    let stopped = server.stop().await;
    let mut report = outcome?;
    let status = stopped?;
    if !status.success() {
        return Err(SoakError::Server(format!(
            "the server exited with {status}"
        )));
    }
    report.results_stored = stored_results(&store).await?;
    store.close().await;
    Ok(report)
}

/// The run proper, with the server up: clients, honeypot, sampling, table.
async fn drive(
    config: &SoakConfig,
    store: &Store,
    population: &Arc<Population>,
    server: &ServerProcess,
    keys: Vec<String>,
) -> Result<SoakSummary, SoakError> {
    let (stop, stopped) = watch::channel(false);
    let honeypot = population.spawn_honeypot(store.clone(), HONEYPOT_ROUND, stopped.clone());
    let fleet = Arc::new(Fleet {
        server: server.grpc_addr(),
        recorder: Recorder::default(),
        think: config.think,
        sent: Mutex::new(BTreeMap::new()),
    });
    let clients: Vec<SimClient> = keys
        .into_iter()
        .enumerate()
        .map(|(index, key)| SimClient::new(index, key))
        .collect();
    let hosts = clients.iter().map(SimClient::host_count).sum();
    let started = Instant::now();
    let running = spawn_fleet(clients, &fleet, &stopped, config.warmup / 2);
    println!("{}", Row::HEADER);
    let monitored = monitor(config, server, &fleet, started).await;
    let _ = stop.send(true);
    let duration = started.elapsed();
    drain(running).await?;
    let honeypot_events = honeypot
        .await
        .map_err(|e| SoakError::Honeypot(e.to_string()))??;
    let (rows, memory, measured_cpu) = monitored?;
    let (measured, run) = fleet.recorder.finish();
    let results_sent = fleet.sent.lock().expect("sent lock").clone();
    Ok(SoakSummary {
        clients: config.clients,
        hosts,
        remotes: population.len(),
        duration,
        warmup: config.warmup,
        measured,
        run,
        rows,
        memory,
        measured_cpu,
        results_sent,
        results_stored: BTreeMap::new(),
        honeypot_events,
    })
}

/// Starts the clients spread evenly over `ramp`, as a fleet comes up over time rather than in
/// one instant.
fn spawn_fleet(
    clients: Vec<SimClient>,
    fleet: &Arc<Fleet>,
    stopped: &watch::Receiver<bool>,
    ramp: Duration,
) -> JoinSet<()> {
    let mut running = JoinSet::new();
    let step = ramp / u32::try_from(clients.len().max(1)).unwrap_or(u32::MAX);
    for (index, client) in clients.into_iter().enumerate() {
        let (fleet, stopped) = (fleet.clone(), stopped.clone());
        let delay = step * u32::try_from(index).unwrap_or(u32::MAX);
        running.spawn(async move {
            tokio::time::sleep(delay).await;
            client.run(fleet, stopped).await;
        });
    }
    running
}

async fn drain(mut running: JoinSet<()>) -> Result<(), SoakError> {
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(joined) = running.join_next().await {
            joined.expect("a simulated client panicked");
        }
    })
    .await;
    drained.map_err(|_| {
        SoakError::Server(format!(
            "clients still waited for answers {DRAIN_TIMEOUT:?} after the stop signal"
        ))
    })
}

/// Samples the server until the duration is over and prints a row every interval. Returns the
/// rows, the memory figures and the CPU time after the warm-up.
async fn monitor(
    config: &SoakConfig,
    server: &ServerProcess,
    fleet: &Fleet,
    started: Instant,
) -> Result<(Vec<Row>, Memory, Duration), SoakError> {
    let mut ticks = tokio::time::interval(config.sample_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut memory = Memory::default();
    let mut rows = Vec::new();
    let first = server.sample()?;
    let (mut row_started, mut row_cpu) = (Duration::ZERO, first.cpu);
    let mut measuring_cpu = None;
    loop {
        ticks.tick().await;
        let elapsed = started.elapsed();
        let sample = server.sample()?;
        memory.samples.push((elapsed, sample.rss_bytes));
        if measuring_cpu.is_none() && elapsed >= config.warmup {
            fleet.recorder.start_measuring();
            memory.baseline_bytes = sample.rss_bytes;
            measuring_cpu = Some(sample.cpu);
        } else if measuring_cpu.is_some() {
            memory.peak_bytes = memory.peak_bytes.max(sample.rss_bytes);
        }
        let done = elapsed >= config.duration;
        if elapsed - row_started >= config.table_every || done {
            let row = Row {
                elapsed,
                warmup: row_started < config.warmup,
                length: elapsed - row_started,
                calls: fleet.recorder.take_interval(),
                rss_bytes: sample.rss_bytes,
                cpu: sample.cpu.saturating_sub(row_cpu),
            };
            println!("{row}");
            rows.push(row);
            (row_started, row_cpu) = (elapsed, sample.cpu);
        }
        if done {
            let cpu = sample
                .cpu
                .saturating_sub(measuring_cpu.unwrap_or(sample.cpu));
            memory.peak_bytes = memory.peak_bytes.max(memory.baseline_bytes);
            memory.end_bytes = sample.rss_bytes;
            return Ok((rows, memory, cpu));
        }
    }
}

/// Stored results by outcome.
async fn stored_results(store: &Store) -> Result<BTreeMap<String, u64>, SoakError> {
    let rows = sqlx::query("SELECT outcome, COUNT(*) FROM hole_punch_results GROUP BY outcome")
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|row| {
            let outcome: String = row.try_get(0)?;
            let count: i64 = row.try_get(1)?;
            Ok((outcome, u64::try_from(count).unwrap_or(0)))
        })
        .collect()
}
