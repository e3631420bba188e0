//! The client's main loop (`punchr-original.md` §7.1–§7.2): start the hosts, bootstrap them,
//! register them, then round-robin: ask for a peer, punch it, report, with every result going
//! through the durable outbox.

use std::sync::Arc;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::watch;

use crate::classifier::PunchTimeouts;
use crate::config::ClientConfig;
use crate::delivery::{Assignment, LinkError, ServerAddress, ServerLink};
use crate::host::{Host, HostError, HostSettings, PunchRequest, AGENT_VERSION, PROTOCOLS};
use crate::outbox::{Outbox, OutboxError};
use crate::request::{track_hole_punch_request, RequestContext};
use crate::telemetry::ClientMetrics;
use punchr_types::log_target::CLIENT;

/// Why the client stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A configuration problem.
    #[error("{0}")]
    Config(String),
    /// A host failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// Too few hosts learned a public address.
    #[error(
        "could not bootstrap enough hosts: {ok} of {total} found a public address (need 3 or all)"
    )]
    Bootstrap {
        /// Hosts that succeeded.
        ok: usize,
        /// Hosts started.
        total: usize,
    },
    /// The server refused or failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// Hole punches performed.
    pub punches: u64,
    /// Results still waiting in the outbox.
    pub undelivered: usize,
}

/// Everything the loop needs, prepared from the configuration.
pub struct Client {
    config: ClientConfig,
    metrics: Arc<ClientMetrics>,
    hosts: Vec<Host>,
    link: ServerLink,
    outbox: Outbox,
}

fn host_keys(config: &ClientConfig) -> Result<Vec<Keypair>, RunError> {
    let count = config.host_count as usize;
    match &config.seed {
        Some(seed) => Ok((0..config.host_count)
            .map(|i| punchr_keyfile::from_seed(seed.as_bytes(), i))
            .collect()),
        None => {
            let path = config.key_file_path();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    RunError::Config(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mut keys = punchr_keyfile::load_or_create(&path, count)
                .map_err(|e| RunError::Config(e.to_string()))?;
            keys.truncate(count);
            Ok(keys)
        }
    }
}

/// What each host of a client with `config` runs with.
pub fn host_settings(config: &ClientConfig) -> HostSettings {
    HostSettings {
        listen: config.listen.clone(),
        min_observations: config.min_observations,
        assume_public: config.assume_public,
        role_strategy: config.role_strategy,
        timeouts: PunchTimeouts {
            connect: config.connect_timeout,
            stream: config.stream_timeout,
            attempt: config.attempt_timeout,
            pings: if config.no_pings {
                Duration::ZERO
            } else {
                Duration::from_secs(3)
            },
        },
    }
}

impl Client {
    /// Validates the configuration, opens the outbox and starts the hosts.
    pub fn start(config: ClientConfig) -> Result<Client, RunError> {
        let api_key = config.resolved_api_key().ok_or_else(|| {
            RunError::Config(
                "no API key: pass --api-key, or set PUNCHR_CLIENT_API_KEY or API_KEY".into(),
            )
        })?;
        let ca_pem = match &config.pem {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                RunError::Config(format!("cannot read --pem {}: {e}", path.display()))
            })?),
            None => None,
        };
        let link = ServerLink::new(
            &ServerAddress {
                url: config.server_url().map_err(RunError::Config)?,
                ca_pem,
                skip_verify: config.server_ssl_skip_verify,
                timeouts: Default::default(),
            },
            api_key,
        )?;
        let outbox = Outbox::open(config.outbox_path())?;
        let settings = host_settings(&config);
        let hosts = host_keys(&config)?
            .into_iter()
            .map(|key| Host::spawn(key, settings.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Client {
            config,
            metrics: Arc::new(ClientMetrics::new()),
            hosts,
            link,
            outbox,
        })
    }

    /// The client's metrics (served by [`crate::telemetry::serve`]).
    pub fn metrics(&self) -> Arc<ClientMetrics> {
        self.metrics.clone()
    }

    /// Peer IDs of the hosts.
    pub fn host_ids(&self) -> Vec<PeerId> {
        self.hosts.iter().map(Host::peer_id).collect()
    }

    /// Bootstraps all hosts in parallel; keeps those that found a public address.
    async fn bootstrap(&mut self) -> Result<(), RunError> {
        let peers = self.config.bootstrap_addresses();
        let timeout = self.config.bootstrap_timeout;
        let waits = self.hosts.iter().map(|host| {
            let peers = peers.clone();
            async move { tokio::time::timeout(timeout, host.bootstrap(peers)).await }
        });
        let results = futures::future::join_all(waits).await;
        let total = self.hosts.len();
        let mut kept = Vec::new();
        for (host, result) in self.hosts.drain(..).zip(results) {
            match result {
                Ok(Ok(Some(address))) => {
                    tracing::info!(target: CLIENT, event = "host_bootstrapped", host = %host.peer_id(), %address, "host bootstrapped");
                    kept.push(host);
                }
                _ => {
                    tracing::warn!(target: CLIENT, event = "host_without_public_address", host = %host.peer_id(), "no public address found")
                }
            }
        }
        let ok = kept.len();
        if ok < 3 && ok < total || ok == 0 {
            return Err(RunError::Bootstrap { ok, total });
        }
        self.hosts = kept;
        Ok(())
    }

    async fn register(&self) -> Result<(), RunError> {
        let protocols: Vec<String> = PROTOCOLS.iter().map(|p| (*p).to_owned()).collect();
        for host in &self.hosts {
            self.link
                .register(
                    host.peer_id().to_bytes(),
                    AGENT_VERSION.to_owned(),
                    protocols.clone(),
                )
                .await?;
        }
        Ok(())
    }

    /// Runs until `--rounds` punches are done or `stop` turns true. A stop ends the punch in
    /// flight as CANCELLED and reports it.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<RunSummary, RunError> {
        self.deliver().await;
        self.bootstrap().await?;
        self.register().await?;
        self.metrics.ready(self.hosts.len());
        let all_hosts: Vec<Vec<u8>> = self.hosts.iter().map(|h| h.peer_id().to_bytes()).collect();
        let mut punches = 0;
        let mut index = 0;
        while self.config.rounds.is_none_or(|rounds| punches < rounds) && !stop_requested(&stop) {
            let host = self.hosts[index].clone();
            let assignment = match self
                .link
                .get_addr_info(host.peer_id().to_bytes(), all_hosts.clone())
                .await
            {
                Ok(Some(assignment)) => assignment,
                Ok(None) => {
                    tracing::info!(target: CLIENT, event = "no_peer_yet", wait = ?self.config.no_peer_wait, "no peer to hole punch yet");
                    wait_or_stop(self.config.no_peer_wait, &mut stop).await;
                    continue;
                }
                Err(LinkError::Status(status))
                    if status.message().contains("please restart the client") =>
                {
                    return Err(LinkError::Status(status).into());
                }
                Err(error) => {
                    tracing::warn!(target: CLIENT, event = "get_addr_info_failed", %error, "asking for a peer failed");
                    wait_or_stop(self.config.no_peer_wait, &mut stop).await;
                    continue;
                }
            };
            self.punch_and_report(&host, assignment, &mut stop).await?;
            punches += 1;
            index = (index + 1) % self.hosts.len();
        }
        let undelivered = self.deliver().await;
        Ok(RunSummary {
            punches,
            undelivered,
        })
    }

    async fn punch_and_report(
        &self,
        host: &Host,
        assignment: Assignment,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), RunError> {
        let Some(request) = punch_request(&assignment) else {
            tracing::warn!(target: CLIENT, event = "unreadable_peer", "server sent an unreadable peer; skipped");
            return Ok(());
        };
        let Some(request) = dialable(request, self.config.dial_private_relays) else {
            // As if there were no peer: a server serving only such addresses is not asked in
            // a busy loop.
            wait_or_stop(self.config.no_peer_wait, stop).await;
            return Ok(());
        };
        tracing::info!(target: CLIENT, event = "hole_punch_started", host = %host.peer_id(), remote = %request.remote, addresses = request.addresses.len(), "hole punching");
        let served = request.addresses.clone();
        let punch = host.punch(request.clone());
        tokio::pin!(punch);
        let output = tokio::select! {
            output = &mut punch => output?,
            () = stopped(stop) => {
                host.cancel().await;
                punch.await?
            }
        };
        let context = RequestContext {
            client_id: host.peer_id().to_bytes(),
            remote_id: request.remote.to_bytes(),
            served_addresses: served,
            listen_addresses: host.addresses().await?,
            protocol_filter: assignment.protocol_filter,
            latencies: output.latencies,
            role_strategy: self.config.role_strategy,
        };
        let outcome = output.classified.outcome;
        self.metrics.punched(outcome.as_str());
        tracing::info!(target: CLIENT, event = "hole_punch_finished", remote = %request.remote, %outcome, attempts = output.classified.attempts.len(), "hole punch finished");
        self.outbox
            .push(&track_hole_punch_request(&context, &output.classified))?;
        self.deliver().await;
        Ok(())
    }

    /// Delivers what the outbox holds; a failure only postpones delivery. Returns what is left.
    async fn deliver(&self) -> usize {
        match self.link.deliver(&self.outbox).await {
            Ok(0) => {}
            Ok(delivered) => {
                tracing::info!(target: CLIENT, event = "results_delivered", delivered, "results delivered")
            }
            Err(error) => {
                tracing::warn!(target: CLIENT, event = "results_kept", %error, "results kept in the outbox for later")
            }
        }
        let pending = self.outbox.pending().map(|p| p.len()).unwrap_or(0);
        self.metrics.outbox(pending);
        pending
    }
}

fn punch_request(assignment: &Assignment) -> Option<PunchRequest> {
    let remote = PeerId::from_bytes(&assignment.remote_id).ok()?;
    let addresses: Vec<Multiaddr> = assignment
        .addresses
        .iter()
        .filter_map(|bytes| Multiaddr::try_from(bytes.clone()).ok())
        .collect();
    Some(PunchRequest {
        remote,
        addresses,
        protocol_filter: assignment.protocol_filter.clone(),
    })
}

/// The request with only the relay addresses a volunteer may dial: those whose relay hop is a
/// public IP (any relay address with `allow_private`), at most
/// [`punchr_types::address::MAX_HANDOUT_ADDRESSES`]. The server serves no other, but what it
/// serves came from strangers through the honeypot; this machine checks for itself before
/// dialing. `None` (and a warning) when nothing is left.
fn dialable(mut request: PunchRequest, allow_private: bool) -> Option<PunchRequest> {
    let served = request.addresses.len();
    request
        .addresses
        .retain(|a| punchr_types::address::is_dialable_relay_address(a, allow_private));
    request
        .addresses
        .truncate(punchr_types::address::MAX_HANDOUT_ADDRESSES);
    if request.addresses.len() < served {
        let refused = served - request.addresses.len();
        tracing::warn!(target: CLIENT, event = "served_addresses_refused", remote = %request.remote, refused, "refused served addresses that are not relay addresses with a public relay hop (or too many)");
    }
    if request.addresses.is_empty() {
        tracing::warn!(target: CLIENT, event = "no_dialable_address", remote = %request.remote, "no dialable relay address for this peer; skipped");
        return None;
    }
    Some(request)
}

/// Resolves when a stop is requested (the guard `wait_for` returns must not live across awaits).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

fn stop_requested(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

async fn wait_or_stop(duration: Duration, stop: &mut watch::Receiver<bool>) {
    let _ = tokio::time::timeout(duration, stop.wait_for(|stopped| *stopped)).await;
}
