//! One libp2p host of the client: its swarm runs in its own task and takes commands
//! (bootstrap, punch, cancel) over a channel. The task owns all libp2p state, so hosts never
//! share locks and a slow host cannot stall another.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, relay, tcp, yamux, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};

use crate::classifier::{Classifier, PunchOutput, PunchTimeouts};
use crate::observed::{ObservedAddresses, TransportCoverage};
use punchr_types::log_target::CLIENT;

/// The agent version hosts announce. Not the original clients' `punchr/rust-client/` or
/// `punchr/go-client/`: the server normalises their quirks by that prefix, and reports split
/// results by client family (`punchr_store::agent`).
pub const AGENT_VERSION: &str = concat!("punchr-rs/client/", env!("CARGO_PKG_VERSION"));

/// The protocols a host speaks, as registered with the server.
pub const PROTOCOLS: &[&str] = &[
    "/ipfs/id/1.0.0",
    "/ipfs/id/push/1.0.0",
    "/ipfs/ping/1.0.0",
    "/libp2p/circuit/relay/0.2.0/stop",
    "/libp2p/dcutr",
];

#[derive(NetworkBehaviour)]
struct HostBehaviour {
    relay: relay::client::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    dcutr: punchr_dcutr::Behaviour,
}

/// What a host needs besides its key.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// IPs to listen on (TCP and QUIC, port 0).
    pub listen: Vec<IpAddr>,
    /// Distinct peers that must observe an address before it counts as ours.
    pub min_observations: usize,
    /// Take listen addresses as public at once, and dial non-public CONNECT addresses
    /// (private testbeds and loopback tests only).
    pub assume_public: bool,
    /// How our hole-punch dials choose their handshake role.
    pub role_strategy: punchr_dcutr::RoleStrategy,
    /// Timeouts of a punch.
    pub timeouts: PunchTimeouts,
}

/// A hole punch to run.
#[derive(Debug, Clone)]
pub struct PunchRequest {
    /// The remote.
    pub remote: PeerId,
    /// Its relay addresses.
    pub addresses: Vec<Multiaddr>,
    /// Multiaddr protocol codes the server asks the hole punch to prefer.
    pub protocol_filter: Vec<i32>,
}

enum Command {
    Bootstrap {
        peers: Vec<Multiaddr>,
        reply: oneshot::Sender<Option<Multiaddr>>,
    },
    Punch {
        request: PunchRequest,
        reply: oneshot::Sender<PunchOutput>,
    },
    Cancel,
    Addresses {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Sizes {
        reply: oneshot::Sender<HostSizes>,
    },
}

/// How much a host remembers about other peers. Anyone can connect to a host and tell it
/// things, so both stay bounded (issue 15, point 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostSizes {
    /// Peers whose agent and protocols are remembered: those with an open connection (and the
    /// remote of the punch in flight).
    pub identities: usize,
    /// Addresses of ours that peers claimed to observe and that wait for more observers.
    pub pending_observations: usize,
}

/// Why a host could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The transport could not be built.
    #[error("cannot build the libp2p host: {0}")]
    Build(String),
    /// A listen address was refused.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// Why.
        reason: String,
    },
    /// The host's task ended.
    #[error("the host's task stopped")]
    Stopped,
}

/// A handle on a running host.
#[derive(Debug, Clone)]
pub struct Host {
    peer_id: PeerId,
    commands: mpsc::Sender<Command>,
}

impl Host {
    /// Builds the swarm, starts listening and spawns the host's task.
    pub fn spawn(keypair: Keypair, settings: HostSettings) -> Result<Host, HostError> {
        let peer_id = keypair.public().to_peer_id();
        let mut swarm = build_swarm(keypair)?;
        let dcutr = &mut swarm.behaviour_mut().dcutr;
        dcutr.set_role_strategy(settings.role_strategy);
        // CONNECT offers only what `ObservedAddresses` confirmed from direct connections:
        // identify's raw observations include ones made over relayed connections, which name
        // the relay's IP (lab: a js-libp2p remote reported it).
        dcutr.offer_observed_addresses(false);
        dcutr.dial_non_public_addresses(settings.assume_public);
        for ip in &settings.listen {
            for address in listen_addresses(*ip) {
                swarm
                    .listen_on(address.clone())
                    .map_err(|e| HostError::Listen {
                        address,
                        reason: e.to_string(),
                    })?;
            }
        }
        let (commands, receiver) = mpsc::channel(8);
        tokio::spawn(HostTask::new(swarm, settings).run(receiver));
        Ok(Host { peer_id, commands })
    }

    /// The host's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, HostError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| HostError::Stopped)?;
        answer.await.map_err(|_| HostError::Stopped)
    }

    /// Connects to the bootstrap peers and waits (bounded by the caller) for a confirmed public
    /// address; returns it.
    pub async fn bootstrap(&self, peers: Vec<Multiaddr>) -> Result<Option<Multiaddr>, HostError> {
        self.ask(|reply| Command::Bootstrap { peers, reply }).await
    }

    /// Runs one hole punch; every wait inside has a deadline.
    pub async fn punch(&self, request: PunchRequest) -> Result<PunchOutput, HostError> {
        self.ask(|reply| Command::Punch { request, reply }).await
    }

    /// Ends the punch in flight as CANCELLED.
    pub async fn cancel(&self) {
        let _ = self.commands.send(Command::Cancel).await;
    }

    /// Listen addresses and confirmed external addresses.
    pub async fn addresses(&self) -> Result<Vec<Multiaddr>, HostError> {
        self.ask(|reply| Command::Addresses { reply }).await
    }

    /// What the host remembers about other peers now.
    pub async fn sizes(&self) -> Result<HostSizes, HostError> {
        self.ask(|reply| Command::Sizes { reply }).await
    }
}

fn listen_addresses(ip: IpAddr) -> [Multiaddr; 2] {
    let ip_protocol = match ip {
        IpAddr::V4(v4) => Protocol::Ip4(v4),
        IpAddr::V6(v6) => Protocol::Ip6(v6),
    };
    let base = Multiaddr::empty().with(ip_protocol);
    [
        base.clone().with(Protocol::Tcp(0)),
        base.with(Protocol::Udp(0)).with(Protocol::QuicV1),
    ]
}

fn build_swarm(keypair: Keypair) -> Result<Swarm<HostBehaviour>, HostError> {
    let build_error = |e: &dyn std::fmt::Display| HostError::Build(e.to_string());
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| build_error(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| build_error(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| build_error(&e))?
        .with_behaviour(|key, relay| HostBehaviour {
            relay,
            identify: identify::Behaviour::new(
                identify::Config::new("/ipfs/0.1.0".into(), key.public())
                    .with_agent_version(AGENT_VERSION.into()),
            ),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(1))),
            dcutr: punchr_dcutr::Behaviour::new(key.public().to_peer_id()),
        })
        .map_err(|e| build_error(&e))?
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(30)))
        .build();
    Ok(swarm)
}

struct BootstrapWait {
    reply: oneshot::Sender<Option<Multiaddr>>,
}

struct Punching {
    punch: Classifier,
    reply: oneshot::Sender<PunchOutput>,
}

struct HostTask {
    swarm: Swarm<HostBehaviour>,
    settings: HostSettings,
    observed: ObservedAddresses,
    bootstrap: Option<BootstrapWait>,
    punching: Option<Punching>,
    identities: HashMap<PeerId, (String, Vec<String>)>,
    coverage: TransportCoverage,
    /// Open relayed connections: what a peer observed over one of them is the relay's view.
    relayed: HashSet<libp2p::swarm::ConnectionId>,
}

impl HostTask {
    fn new(swarm: Swarm<HostBehaviour>, settings: HostSettings) -> Self {
        HostTask {
            swarm,
            settings,
            observed: ObservedAddresses::default(),
            bootstrap: None,
            punching: None,
            identities: HashMap::new(),
            coverage: TransportCoverage::default(),
            relayed: HashSet::new(),
        }
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            let deadline = self.punching.as_ref().and_then(|p| p.punch.poll_timeout());
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                () = sleep_until(deadline) => {
                    if let Some(punching) = &mut self.punching {
                        punching.punch.handle_timeout(Instant::now());
                    }
                }
            }
            self.finish_punch_if_done();
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Bootstrap { peers, reply } => {
                self.coverage.add_bootstrap_peers(&peers);
                for peer in peers {
                    if let Err(error) = self.swarm.dial(peer.clone()) {
                        tracing::warn!(target: CLIENT, event = "bootstrap_dial_failed", %peer, %error, "bootstrap dial failed");
                    }
                }
                if self.settings.assume_public {
                    self.assume_listen_addresses_public();
                }
                match self.observed.confirmed().first() {
                    Some(address) => {
                        let _ = reply.send(Some(address.clone()));
                    }
                    None => self.bootstrap = Some(BootstrapWait { reply }),
                }
            }
            Command::Punch { request, reply } => self.start_punch(request, reply),
            Command::Cancel => {
                if let Some(punching) = &mut self.punching {
                    punching.punch.cancel(Instant::now());
                }
            }
            Command::Addresses { reply } => {
                let mut addresses: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                addresses.extend(self.swarm.external_addresses().cloned());
                let _ = reply.send(addresses);
            }
            Command::Sizes { reply } => {
                let _ = reply.send(HostSizes {
                    identities: self.identities.len(),
                    pending_observations: self.observed.pending(),
                });
            }
        }
    }

    fn assume_listen_addresses_public(&mut self) {
        let listening: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
        for address in listening {
            let unspecified = address.iter().any(|p| match p {
                Protocol::Ip4(ip) => ip.is_unspecified(),
                Protocol::Ip6(ip) => ip.is_unspecified(),
                _ => false,
            });
            if !unspecified && self.observed.assume(address.clone()) {
                self.swarm.add_external_address(address);
            }
        }
    }

    fn start_punch(&mut self, request: PunchRequest, reply: oneshot::Sender<PunchOutput>) {
        // Start clean: no lingering connection may turn this punch into a reversed one.
        let _ = self.swarm.disconnect_peer_id(request.remote);
        let codes = request
            .protocol_filter
            .iter()
            .filter_map(|c| u32::try_from(*c).ok())
            .collect();
        self.swarm
            .behaviour_mut()
            .dcutr
            .prefer(request.remote, punchr_dcutr::Preference::new(codes));
        let opts = DialOpts::peer_id(request.remote)
            .addresses(request.addresses.clone())
            .condition(PeerCondition::Always)
            .build();
        let dial = opts.connection_id();
        let now = Instant::now();
        let mut punch = Classifier::new(
            now,
            self.swarm.behaviour().dcutr.clock(),
            request.remote,
            request.addresses,
            dial,
            self.settings.timeouts,
        );
        if let Err(error) = self.swarm.dial(opts) {
            punch.dial_failed(now, dial, &punchr_dcutr::DialFailure::from(&error));
        }
        self.punching = Some(Punching { punch, reply });
    }

    fn finish_punch_if_done(&mut self) {
        if !self.punching.as_ref().is_some_and(|p| p.punch.is_done()) {
            return;
        }
        let Some(Punching { punch, reply }) = self.punching.take() else {
            return;
        };
        let remote = punch.remote();
        let identities = &self.identities;
        let output = punch.finish(Instant::now(), |peer| {
            identities.get(peer).cloned().unwrap_or_default()
        });
        // Close everything to the remote before the next round.
        let _ = self.swarm.disconnect_peer_id(remote);
        self.swarm.behaviour_mut().dcutr.forget_preference(&remote);
        let _ = reply.send(output);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<HostBehaviourEvent>) {
        let now = Instant::now();
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                if endpoint.is_relayed() {
                    self.relayed.insert(connection_id);
                }
                if let Some(punching) = &mut self.punching {
                    punching.punch.connection_established(
                        now,
                        peer_id,
                        connection_id,
                        endpoint.get_remote_address(),
                    );
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.relayed.remove(&connection_id);
                let punching_it = self
                    .punching
                    .as_ref()
                    .is_some_and(|p| p.punch.remote() == peer_id);
                if num_established == 0 && !punching_it {
                    // Only peers we are connected to are remembered: every stranger that
                    // connects would otherwise stay in the map for the host's lifetime.
                    self.identities.remove(&peer_id);
                }
                if let Some(punching) = &mut self.punching {
                    punching.punch.connection_closed(peer_id, connection_id);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some(punching) = &mut self.punching {
                    let failure = punchr_dcutr::DialFailure::from(&error);
                    punching.punch.dial_failed(now, connection_id, &failure);
                }
            }
            SwarmEvent::NewListenAddr { .. } if self.settings.assume_public => {
                self.assume_listen_addresses_public();
                if let Some(address) = self.observed.confirmed().first().cloned() {
                    if let Some(wait) = self.bootstrap.take() {
                        let _ = wait.reply.send(Some(address));
                    }
                }
            }
            SwarmEvent::Behaviour(HostBehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                connection_id,
            })) => {
                let relayed = self.relayed.contains(&connection_id);
                self.on_identified(peer_id, info, relayed);
            }
            SwarmEvent::Behaviour(HostBehaviourEvent::Ping(ping::Event {
                connection,
                result,
                ..
            })) => {
                if let Some(punching) = &mut self.punching {
                    punching
                        .punch
                        .ping(connection, result.map_err(|e| e.to_string()));
                }
            }
            SwarmEvent::Behaviour(HostBehaviourEvent::Dcutr(event)) => {
                if let Some(punching) = &mut self.punching {
                    punching.punch.dcutr(&event);
                }
            }
            _ => {}
        }
    }

    fn on_identified(&mut self, peer_id: PeerId, info: identify::Info, relayed: bool) {
        let protocols = info.protocols.iter().map(ToString::to_string).collect();
        self.swarm
            .behaviour_mut()
            .dcutr
            .set_remote_agent(peer_id, &info.agent_version);
        self.identities
            .insert(peer_id, (info.agent_version.clone(), protocols));
        if relayed {
            // The peer saw the relay's side of the circuit, not us: never a candidate.
            tracing::debug!(target: CLIENT, event = "relayed_observation_ignored", %peer_id, observed = %info.observed_addr, "ignored an observation made over a relayed connection");
            return;
        }
        for address in self
            .coverage
            .identified(peer_id, &info.observed_addr, &info.listen_addrs)
        {
            self.dial_for_observation(peer_id, address);
        }
        let needed = self.settings.min_observations;
        if let Some(address) = self.observed.observe(info.observed_addr, peer_id, needed) {
            tracing::info!(target: CLIENT, event = "public_address_confirmed", %address, "public address confirmed");
            self.swarm.add_external_address(address.clone());
            if let Some(wait) = self.bootstrap.take() {
                let _ = wait.reply.send(Some(address));
            }
        }
    }
}

impl HostTask {
    /// Dials `peer` again over another transport, so that it observes us over that one too.
    fn dial_for_observation(&mut self, peer: PeerId, address: Multiaddr) {
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![address.clone()])
            .condition(PeerCondition::Always)
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => {
                tracing::debug!(target: CLIENT, event = "observation_dial", %peer, %address, "dialing to be observed over this transport")
            }
            Err(error) => {
                tracing::warn!(target: CLIENT, event = "observation_dial_failed", %peer, %address, %error, "could not dial to be observed over this transport")
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
