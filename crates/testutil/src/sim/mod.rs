//! Small rust-libp2p nodes on loopback to build DHTs from, for the honeypot's tests and
//! benchmarks and the report's Prometheus test (the lab runs real processes instead).
//!
//! A [`SimNode`] is a real libp2p host (TCP, noise, yamux, identify, Kademlia, relay client,
//! ping) in its own task, driven through async methods with results. Two shapes matter:
//! - a *public DHT server* ([`NodeSpec::public`]): listens on 127.0.0.1, runs Kademlia in server
//!   mode, optionally a relay server and DCUtR, and announces an address in 198.18.0.0/15 next
//!   to its loopback one, so identify shows a second, non-loopback address as a real server's
//!   would (198.18.0.0/15 is not routed on the internet, so a test that dials it sends nothing
//!   out; the public-address rule counts it as private);
//! - a *NATed peer* ([`NodeSpec::nated`]): no listener, Kademlia client mode, reachable only
//!   through relay reservations ([`SimNode::reserve`]), optionally with DCUtR (announced on
//!   direct connections too, as go-libp2p does; see `advertise`).
//!
//! Nodes learn DHT servers from identify and keep only their loopback addresses, the ones that
//! work in a simulation.

mod advertise;
mod runner;

use std::net::Ipv4Addr;
use std::time::Duration;

use libp2p::kad::store::MemoryStore;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    dcutr, identify, kad, noise, ping, relay, tcp, yamux, Multiaddr, PeerId, StreamProtocol,
    SwarmBuilder,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use runner::{Command, Runner};

/// What a simulated node is and speaks.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// The Kademlia protocol.
    pub kad_protocol: StreamProtocol,
    /// Listen on 127.0.0.1 and serve the DHT; otherwise a DHT client without listener.
    pub dht_server: bool,
    /// Also be a circuit relay (needs `public_ip`: relays only serve with an external address).
    pub relay_server: bool,
    /// Run DCUtR and announce `/libp2p/dcutr` on every connection.
    pub dcutr: bool,
    /// Run identify; when off, identify requests are accepted and never answered.
    pub identify: bool,
    /// Announce `/ip4/<this>/tcp/<listen port>` as an external address.
    pub public_ip: Option<Ipv4Addr>,
    /// Further external addresses to announce.
    pub external_addrs: Vec<Multiaddr>,
    /// Idle connections close after this.
    pub idle_timeout: Duration,
    /// The agent version identify announces.
    pub agent_version: String,
}

fn sim_agent() -> String {
    format!("punchr-sim/{}", env!("CARGO_PKG_VERSION"))
}

impl NodeSpec {
    /// A public DHT server announcing 198.18.x.y (from `index`).
    pub fn public(index: u16) -> NodeSpec {
        let [hi, lo] = index.to_be_bytes();
        NodeSpec {
            kad_protocol: kad::PROTOCOL_NAME,
            dht_server: true,
            relay_server: false,
            dcutr: false,
            identify: true,
            public_ip: Some(Ipv4Addr::new(198, 18, hi, lo.max(1))),
            external_addrs: Vec::new(),
            idle_timeout: Duration::from_secs(10),
            agent_version: sim_agent(),
        }
    }

    /// A NATed DHT client, with or without DCUtR.
    pub fn nated(dcutr: bool) -> NodeSpec {
        NodeSpec {
            kad_protocol: kad::PROTOCOL_NAME,
            dht_server: false,
            relay_server: false,
            dcutr,
            identify: true,
            public_ip: None,
            external_addrs: Vec::new(),
            idle_timeout: Duration::from_secs(300),
            agent_version: sim_agent(),
        }
    }
}

/// Something a simulated node could not do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SimError(pub String);

fn sim_error(e: impl std::fmt::Display) -> SimError {
    SimError(e.to_string())
}

#[derive(NetworkBehaviour)]
pub(crate) struct SimBehaviour {
    relay_client: relay::client::Behaviour,
    relay: Toggle<relay::Behaviour>,
    identify: Toggle<identify::Behaviour>,
    kad: kad::Behaviour<MemoryStore>,
    dcutr: Toggle<dcutr::Behaviour>,
    advertise: Toggle<advertise::Behaviour>,
    stall: Toggle<advertise::Behaviour>,
    ping: ping::Behaviour,
}

/// A running simulated node; it stops when dropped or shut down.
#[derive(Debug)]
pub struct SimNode {
    peer_id: PeerId,
    listen_addr: Option<Multiaddr>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl SimNode {
    /// Builds the node and, for servers, waits until it listens.
    pub async fn start(spec: NodeSpec) -> Result<SimNode, SimError> {
        let keypair = libp2p::identity::Keypair::generate_ed25519();
        let peer_id = keypair.public().to_peer_id();
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(sim_error)?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(sim_error)?
            .with_behaviour(|key, relay_client| {
                let mut kad = kad::Behaviour::with_config(
                    peer_id,
                    MemoryStore::new(peer_id),
                    kad::Config::new(spec.kad_protocol.clone()),
                );
                kad.set_mode(Some(if spec.dht_server {
                    kad::Mode::Server
                } else {
                    kad::Mode::Client
                }));
                let identify = identify::Config::new("ipfs/0.1.0".into(), key.public())
                    .with_agent_version(spec.agent_version.clone())
                    .with_push_listen_addr_updates(true);
                SimBehaviour {
                    relay_client,
                    relay: Toggle::from(
                        spec.relay_server
                            .then(|| relay::Behaviour::new(peer_id, Default::default())),
                    ),
                    identify: Toggle::from(
                        spec.identify.then(|| identify::Behaviour::new(identify)),
                    ),
                    kad,
                    dcutr: Toggle::from(spec.dcutr.then(|| dcutr::Behaviour::new(peer_id))),
                    advertise: Toggle::from(spec.dcutr.then(|| {
                        advertise::Behaviour::new(StreamProtocol::new("/libp2p/dcutr"), false)
                    })),
                    stall: Toggle::from((!spec.identify).then(|| {
                        advertise::Behaviour::new(StreamProtocol::new("/ipfs/id/1.0.0"), true)
                    })),
                    ping: ping::Behaviour::default(),
                }
            })
            .map_err(sim_error)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(spec.idle_timeout))
            .build();
        let listen_addr = if spec.dht_server || spec.relay_server {
            let addr = runner::listen(&mut swarm).await?;
            if let Some(ip) = spec.public_ip {
                let port = addr.iter().find_map(|p| match p {
                    Protocol::Tcp(port) => Some(port),
                    _ => None,
                });
                let public = Multiaddr::from(ip).with(Protocol::Tcp(port.unwrap_or_default()));
                swarm.add_external_address(public);
            }
            Some(addr.with(Protocol::P2p(peer_id)))
        } else {
            None
        };
        for addr in &spec.external_addrs {
            swarm.add_external_address(addr.clone());
        }
        let (commands, receiver) = mpsc::channel(16);
        let task = tokio::spawn(Runner::new(swarm, receiver, spec.kad_protocol).run());
        Ok(SimNode {
            peer_id,
            listen_addr,
            commands,
            task,
        })
    }

    /// The node's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// For servers: the dialable loopback address with `/p2p/<peer ID>`.
    pub fn addr(&self) -> Option<&Multiaddr> {
        self.listen_addr.as_ref()
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, SimError>>) -> Command,
    ) -> Result<T, SimError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| SimError("node stopped".into()))?;
        answer.await.map_err(|_| SimError("node stopped".into()))?
    }

    /// Puts DHT servers (`/…/p2p/<id>` addresses) into the routing table.
    pub async fn add_peers(&self, addrs: Vec<Multiaddr>) -> Result<(), SimError> {
        self.ask(|reply| Command::AddPeers(addrs, reply)).await
    }

    /// Reserves a slot on a relay (`/…/p2p/<relay id>`) and listens through it; returns when
    /// the relay accepted. Connected peers learn the new address by an identify push.
    pub async fn reserve(&self, relay: Multiaddr) -> Result<(), SimError> {
        self.ask(|reply| Command::Reserve(relay, reply)).await
    }

    /// An iterative Kademlia lookup of `target`; returns the closest peers found. Dials every
    /// peer it queries, as lookups by real nodes do.
    pub async fn lookup(&self, target: PeerId) -> Result<Vec<PeerId>, SimError> {
        self.ask(|reply| Command::Lookup(target, reply)).await
    }

    /// Dials `addr` (with `/p2p/<id>`), answers and receives identify, then closes the connection.
    pub async fn visit(&self, addr: Multiaddr) -> Result<(), SimError> {
        self.ask(|reply| Command::Visit(addr, reply)).await
    }

    /// Dials `addr` (with `/p2p/<id>`) on a new connection and leaves it open.
    pub async fn connect(&self, addr: Multiaddr) -> Result<(), SimError> {
        self.ask(|reply| Command::Connect(addr, reply)).await
    }

    /// Replaces the node's external addresses by `addrs` and pushes identify with them to every
    /// connected peer, as a node does whose relay reservations changed; returns once the pushes
    /// were sent.
    pub async fn announce(&self, addrs: Vec<Multiaddr>) -> Result<(), SimError> {
        self.ask(|reply| Command::Announce(addrs, reply)).await
    }

    /// How many Kademlia bootstraps (automatic ones included) have finished.
    pub async fn bootstraps(&self) -> Result<usize, SimError> {
        self.ask(Command::Bootstraps).await
    }

    /// Stops the node and closes its connections.
    pub async fn shutdown(self) {
        drop(self.commands);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}
