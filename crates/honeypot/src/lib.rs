//! The Punchr honeypot: a Kademlia DHT server that NATed peers connect to, and that records the
//! ones a hole punching client can later be sent to.
//!
//! How it attracts peers: it runs the DHT in server mode with a stable identity and port, and it
//! walks the whole DHT again and again ([`crawl`]), asking every reachable server for every bucket
//! of its routing table, so that the servers learn the honeypot and hand it out to peers doing
//! lookups. NATed peers then connect to it on their own. For every inbound connection it waits,
//! with a deadline, for identify, and keeps the peer when it speaks `/libp2p/dcutr` and can only
//! be reached through relays ([`inbound`], [`address`]). Such a peer, its agent, protocols and
//! addresses and a connection event go to the database in one transaction ([`recorder`]); its
//! connection stays open (within limits) so that an identify push with new relay addresses
//! becomes another event. This is the original's honeypot (`punchr-original.md` §6) without its
//! leak: every wait has a deadline, every map is pruned on disconnect, every queue is bounded.
//!
//! `punchr-honeypot` (this crate's binary) is a thin wrapper around [`start`], which opens the
//! database ([`punchr_store::Store`]), loads the identity ([`punchr_keyfile`]), starts listening
//! and returns a [`RunningHoneypot`]; tests start honeypots the same way, in-process, on port 0.
//! Tests and benchmarks build the DHTs it walks from `punchr_testutil::sim`.
//!
//! Logs are `tracing` events under the target `punchr::honeypot`, each with an `event` field
//! naming it (`walk_finished`, `connection_recorded`, `inbound_skipped`, …) and structured fields.

pub mod address;
mod behaviour;
pub mod config;
pub mod crawl;
pub mod inbound;
mod keep_alive;
pub mod limits;
pub mod metrics;
mod node;
pub mod recorder;
mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use punchr_store::{PeerInfo, Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use config::{ConfigError, HoneypotConfig};
pub use crawl::WalkReport;
pub use recorder::Observation;

/// The tracing target of every event of this crate.
pub const TARGET: &str = punchr_types::log_target::HONEYPOT;

/// What the honeypot tells peers it is.
pub const AGENT_VERSION: &str = concat!("punchr/honeypot/", env!("CARGO_PKG_VERSION"));

/// Why the honeypot could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum HoneypotError {
    /// A flag has a value that cannot work.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The database could not be opened, migrated or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key file could not be read or created.
    #[error(transparent)]
    KeyFile(#[from] punchr_keyfile::KeyFileError),
    /// The libp2p host could not be built.
    #[error("cannot set up libp2p: {0}")]
    Transport(String),
    /// No libp2p listener came up.
    #[error(
        "cannot listen on any of {0}; check --listen-ip and --port (is another honeypot running?)"
    )]
    Listen(String),
    /// The telemetry port could not be bound.
    #[error("cannot listen on {addr} for telemetry: {source}; check --telemetry-host and --telemetry-port")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The telemetry endpoint failed.
    #[error("telemetry endpoint failed: {0}")]
    Telemetry(std::io::Error),
    /// A task of the honeypot panicked.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// A honeypot that is running; stop it with [`RunningHoneypot::shutdown`].
#[derive(Debug)]
pub struct RunningHoneypot {
    peer_id: PeerId,
    listen_addrs: Vec<Multiaddr>,
    telemetry_addr: SocketAddr,
    store: Store,
    metrics: Arc<metrics::Metrics>,
    stop: watch::Sender<bool>,
    walks: watch::Receiver<Option<Arc<WalkReport>>>,
    observations: broadcast::Sender<Observation>,
    tasks: Vec<JoinHandle<()>>,
    telemetry: JoinHandle<Result<(), HoneypotError>>,
}

impl RunningHoneypot {
    /// The honeypot's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses it listens on, as reported when it started (without `/p2p/`).
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen_addrs
    }

    /// The first TCP listen address with `/p2p/<peer ID>` appended.
    pub fn tcp_addr(&self) -> Option<Multiaddr> {
        self.listen_addrs
            .iter()
            .find(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
            .map(|a| a.clone().with(Protocol::P2p(self.peer_id)))
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn telemetry_addr(&self) -> SocketAddr {
        self.telemetry_addr
    }

    /// The database the honeypot writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// The latest walk report (`None` before the first walk finished).
    pub fn walk_reports(&self) -> watch::Receiver<Option<Arc<WalkReport>>> {
        self.walks.clone()
    }

    /// What happens to inbound peers from now on. Slow receivers miss observations (the
    /// channel is bounded), they never slow the honeypot down.
    pub fn observe(&self) -> broadcast::Receiver<Observation> {
        self.observations.subscribe()
    }

    /// A handle that stops the honeypot from elsewhere (e.g. a signal handler).
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// Stops walking, closes every connection, writes what is queued and closes the database.
    pub async fn shutdown(self) -> Result<(), HoneypotError> {
        let _ = self.stop.send(true);
        self.wait().await
    }

    /// Runs until [`RunningHoneypot::shutdown`] is called or the stopper fires.
    pub async fn wait(self) -> Result<(), HoneypotError> {
        let mut failure = None;
        for task in self.tasks {
            if let Err(error) = task.await {
                failure.get_or_insert(HoneypotError::Task(error.to_string()));
                let _ = self.stop.send(true);
            }
        }
        let _ = self.stop.send(true);
        let telemetry = self
            .telemetry
            .await
            .unwrap_or_else(|e| Err(HoneypotError::Task(e.to_string())));
        self.store.close().await;
        match failure {
            Some(error) => Err(error),
            None => telemetry,
        }
    }
}

/// Loads (or creates) the identity in the key file, converted to libp2p's key type.
fn load_identity(config: &HoneypotConfig) -> Result<libp2p::identity::Keypair, HoneypotError> {
    let key = punchr_keyfile::load_or_create(&config.key_file, 1)?.swap_remove(0);
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| HoneypotError::Transport(format!("cannot encode the key: {e}")))?;
    libp2p::identity::Keypair::from_protobuf_encoding(&bytes)
        .map_err(|e| HoneypotError::Transport(format!("cannot decode the key: {e}")))
}

fn listen_addrs(config: &HoneypotConfig) -> Vec<Multiaddr> {
    config
        .listen_ip
        .iter()
        .flat_map(|ip| {
            let base = Multiaddr::from(*ip);
            [
                base.clone().with(Protocol::Tcp(config.port)),
                base.with(Protocol::Udp(config.port)).with(Protocol::QuicV1),
            ]
        })
        .collect()
}

/// Starts listening and waits (at most 5 s) until every listener reports its addresses.
async fn listen(
    swarm: &mut libp2p::Swarm<behaviour::Behaviour>,
    config: &HoneypotConfig,
) -> Result<Vec<Multiaddr>, HoneypotError> {
    let wanted = listen_addrs(config);
    let mut pending = Vec::new();
    for addr in &wanted {
        match swarm.listen_on(addr.clone()) {
            Ok(id) => pending.push(id),
            Err(error) => tracing::warn!(target: TARGET, event = "listen_failed", %addr, %error),
        }
    }
    let mut addrs = Vec::new();
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    while !pending.is_empty() {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { listener_id, address } => {
                    pending.retain(|id| *id != listener_id);
                    addrs.push(address);
                }
                SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                    tracing::warn!(target: TARGET, event = "listen_failed", ?reason);
                    pending.retain(|id| *id != listener_id);
                }
                _ => {}
            },
            _ = &mut deadline => break,
        }
    }
    if addrs.is_empty() {
        let wanted: Vec<String> = wanted.iter().map(ToString::to_string).collect();
        return Err(HoneypotError::Listen(wanted.join(", ")));
    }
    Ok(addrs)
}

/// Opens the database, loads the identity, starts listening, walking and serving telemetry.
pub async fn start(config: &HoneypotConfig) -> Result<RunningHoneypot, HoneypotError> {
    config.validate()?;
    let kad_protocol = config.kad_protocol()?;
    let store = Store::open(&config.db).await?;
    store.ensure_writable().await?;
    let keypair = load_identity(config)?;
    let peer_id = keypair.public().to_peer_id();
    let (mut swarm, opener) = behaviour::build_swarm(keypair, config)?;
    for addr in &config.external_address {
        swarm.add_external_address(addr.clone());
    }
    let listen_addrs = listen(&mut swarm, config).await?;
    let telemetry_addr = SocketAddr::new(config.telemetry_host, config.telemetry_port);
    let telemetry_listener =
        TcpListener::bind(telemetry_addr)
            .await
            .map_err(|source| HoneypotError::Bind {
                addr: telemetry_addr,
                source,
            })?;
    let telemetry_addr = telemetry_listener
        .local_addr()
        .map_err(HoneypotError::Telemetry)?;

    let local = PeerInfo {
        peer_id: peer_id.to_base58(),
        agent_version: Some(AGENT_VERSION.to_string()),
        protocols: behaviour::local_protocols(&kad_protocol),
    };
    store.upsert_peer(&local).await?;

    let metrics = Arc::new(metrics::Metrics::new());
    let (stop, stop_rx) = watch::channel(false);
    let (observations, _) = broadcast::channel(4096);
    let (recorder, recorder_task) = recorder::spawn(
        store.clone(),
        local,
        metrics.clone(),
        observations.clone(),
        config.event_retention,
    );
    let (seed_requests, seeds) = mpsc::channel(4);
    let (walk_reports, walks) = watch::channel(None);
    let node = node::Node {
        swarm,
        tracker: inbound::Tracker::new(inbound::TrackerLimits {
            identify_timeout: config.identify_timeout,
            max_kept: config.max_kept,
            allow_private_relays: config.record_private_relays,
            max_events_per_peer: config.max_events_per_peer,
            max_peers_per_address: config.max_peers_per_address,
        }),
        recorder,
        metrics: metrics.clone(),
        observations: observations.clone(),
        seeds,
        kad_protocol,
        allow_private: config.crawl_private_addrs,
    };
    let node_task = tokio::spawn(node.run(stop_rx.clone()));
    let settings = crawl::WalkSettings {
        local: peer_id,
        bootstrap: config.bootstrap_peers()?,
        crawlers: config.crawler_count,
        crawl_timeout: config.crawl_timeout,
        walk_timeout: config.walk_timeout,
        pause: config.walk_pause,
        max_peers: config.max_walk_peers,
        allow_private: config.crawl_private_addrs,
    };
    let walker = tokio::spawn(crawl::run(
        settings,
        opener,
        seed_requests,
        metrics.clone(),
        walk_reports,
        stop_rx.clone(),
    ));
    let app = telemetry::router(metrics.clone(), store.clone());
    let mut telemetry_stop = stop_rx;
    let telemetry = tokio::spawn(async move {
        axum::serve(telemetry_listener, app)
            .with_graceful_shutdown(async move {
                let _ = telemetry_stop.wait_for(|stopped| *stopped).await;
            })
            .await
            .map_err(HoneypotError::Telemetry)
    });
    tracing::info!(
        target: TARGET,
        event = "started",
        %peer_id,
        agent = AGENT_VERSION,
        listen = ?listen_addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        %telemetry_addr,
        engine = store.engine().name(),
    );
    Ok(RunningHoneypot {
        peer_id,
        listen_addrs,
        telemetry_addr,
        store,
        metrics,
        stop,
        walks,
        observations,
        // The node first: the recorder ends when the node has dropped its queue.
        tasks: vec![node_task, walker, recorder_task],
        telemetry,
    })
}
