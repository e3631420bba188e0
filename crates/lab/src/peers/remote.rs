//! A NATed peer built from stock rust-libp2p parts, the kind of node punchr clients punch: it
//! listens on TCP and QUIC, holds a reservation on each relay (so it is reachable through
//! `/p2p-circuit` addresses), runs the stock DCUtR behaviour (it is side B: it opens
//! `/libp2p/dcutr` on every inbound relayed connection), and does a random Kademlia lookup every
//! `--lookup-interval` as a DHT client, connecting to DHT servers the way IPFS nodes do.
//!
//! With `--dial` it plays side A instead, for tests: see [`Dial`].

use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{dcutr, kad, noise, ping, relay, tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder};
use serde::Serialize;

use super::{identify, identity, listen_addrs, peer_error, split_peer, RemoteArgs};
use crate::error::Result;
use punchr_types::log_target::LAB;

#[derive(NetworkBehaviour)]
struct Behaviour {
    relay_client: relay::client::Behaviour,
    dcutr: dcutr::Behaviour,
    identify: libp2p::identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    // Announces `/libp2p/dcutr` on every connection, as go-libp2p (kubo) nodes do; the stock
    // rust behaviour announces it only on relayed connections, so a honeypot that meets the peer
    // on a direct connection would not see that it speaks DCUtR.
    announce_dcutr: libp2p_stream::Behaviour,
}

/// Accepts (and drops) `/libp2p/dcutr` streams on direct connections, which makes identify
/// announce the protocol there; the relayed connections keep the stock behaviour's handler.
fn announce_dcutr(swarm: &mut Swarm<Behaviour>) -> Result<()> {
    let mut control = swarm.behaviour().announce_dcutr.new_control();
    let mut incoming = control
        .accept(libp2p::StreamProtocol::new("/libp2p/dcutr"))
        .map_err(|e| peer_error(e.to_string()))?;
    tokio::spawn(async move {
        use libp2p::futures::StreamExt;
        while let Some((_peer, stream)) = incoming.next().await {
            drop(stream);
        }
    });
    Ok(())
}

/// Runs the remote peer until stopped.
pub async fn run(args: RemoteArgs) -> Result<()> {
    let key = identity(&args.seed);
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| peer_error(e.to_string()))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| peer_error(e.to_string()))?
        .with_behaviour(|key, relay_client| {
            let id = key.public().to_peer_id();
            let mut kad = kad::Behaviour::with_config(
                id,
                kad::store::MemoryStore::new(id),
                kad::Config::new(kad::PROTOCOL_NAME),
            );
            // Behind NAT: a DHT client, even once the relay confirms a circuit address.
            kad.set_mode(Some(kad::Mode::Client));
            Behaviour {
                relay_client,
                dcutr: dcutr::Behaviour::new(id),
                identify: identify(key, "punchr-lab-remote"),
                ping: ping::Behaviour::default(),
                kad,
                announce_dcutr: libp2p_stream::Behaviour::new(),
            }
        })
        .map_err(|e| peer_error(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    announce_dcutr(&mut swarm)?;
    for addr in listen_addrs(std::net::Ipv4Addr::UNSPECIFIED, args.port) {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| peer_error(format!("listening on {addr}: {e}")))?;
    }
    let mut dial = match &args.dial {
        Some(target) => Some(Dial::new(target, args.dial_timeout)?),
        None => None,
    };
    let mut relays = Vec::new();
    for addr in &args.relay {
        let (relay, _) = split_peer(addr)?;
        relays.push(relay);
        if dial.is_some() {
            // Dialed once we listen, so that the dial leaves from the listening port.
            continue;
        }
        let circuit = addr.clone().with(Protocol::P2pCircuit);
        swarm
            .listen_on(circuit.clone())
            .map_err(|e| peer_error(format!("reserving on {circuit}: {e}")))?;
    }
    for addr in &args.bootstrap {
        let (peer, transport) = split_peer(addr)?;
        swarm.behaviour_mut().kad.add_address(&peer, transport);
        // Each address on its own, so that a peer listed over TCP and QUIC observes us over
        // both: like a peer of the real DHT, which holds connections over every transport, the
        // remote then offers a QUIC address in its CONNECT.
        swarm
            .dial(addr.clone())
            .map_err(|e| peer_error(format!("dialing bootstrap peer {addr}: {e}")))?;
    }
    tracing::info!(target: LAB, event = "remote_running", peer_id = %swarm.local_peer_id(), "remote peer running");
    let mut lookups = tokio::time::interval(args.lookup_interval);
    loop {
        if let Some(d) = dial.as_mut() {
            if let Some(outcome) = d.outcome() {
                println!("{}", serde_json::to_string(&outcome).expect("serializes"));
                return Ok(());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)), if dial.is_some() => {}
            _ = lookups.tick() => {
                if !args.bootstrap.is_empty() {
                    swarm.behaviour_mut().kad.get_closest_peers(PeerId::random());
                }
            }
            event = swarm.select_next_some() => on_event(&mut swarm, event, &mut dial, &args.relay, &relays)?,
        }
    }
}

/// Logs an event and, in `--dial` mode, drives the punch.
fn on_event(
    swarm: &mut Swarm<Behaviour>,
    event: SwarmEvent<BehaviourEvent>,
    dial: &mut Option<Dial>,
    relay_addrs: &[Multiaddr],
    relays: &[PeerId],
) -> Result<()> {
    match event {
        SwarmEvent::NewListenAddr { address, .. } => {
            tracing::info!(target: LAB, event = "listening", %address, "listening");
            if let Some(d) = dial.as_mut().filter(|d| !d.relays_dialed) {
                d.relays_dialed = true;
                for addr in relay_addrs {
                    swarm
                        .dial(addr.clone())
                        .map_err(|e| peer_error(format!("dialing {addr}: {e}")))?;
                }
            }
        }
        SwarmEvent::ListenerClosed {
            addresses, reason, ..
        } => {
            tracing::warn!(target: LAB, event = "listener_closed", ?addresses, ?reason, "listener closed");
        }
        SwarmEvent::Behaviour(BehaviourEvent::RelayClient(event)) => {
            tracing::info!(target: LAB, event = "relay_client", detail = ?event, "relay client")
        }
        SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => {
            tracing::info!(target: LAB, event = "dcutr", detail = ?event, "dcutr");
            if let Some(d) = dial.as_mut() {
                d.dcutr.push(format!("{:?}", event.result));
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Identify(libp2p::identify::Event::Received {
            peer_id,
            info,
            ..
        })) => {
            tracing::debug!(target: LAB, event = "identified", %peer_id, observed = %info.observed_addr, "identified");
            if let Some(d) = dial.as_mut().filter(|_| relays.contains(&peer_id)) {
                if d.relayed_at.is_none() && d.dialed_at.is_none() {
                    d.dialed_at = Some(Instant::now());
                    d.observed = Some(info.observed_addr.to_string());
                    swarm
                        .dial(d.target_addr.clone())
                        .map_err(|e| peer_error(format!("dialing {}: {e}", d.target_addr)))?;
                }
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
            peer,
            connection,
            result: Ok(rtt),
        })) => {
            if let Some(d) = dial
                .as_mut()
                .filter(|d| d.target == peer && d.relayed_connection == Some(connection))
            {
                d.relayed_rtt.get_or_insert(rtt);
            }
        }
        SwarmEvent::NewExternalAddrCandidate { address } => {
            tracing::debug!(target: LAB, event = "address_candidate", %address, "address candidate")
        }
        SwarmEvent::ConnectionEstablished {
            peer_id,
            endpoint,
            connection_id,
            ..
        } => {
            tracing::info!(target: LAB, event = "connected", %peer_id, address = %endpoint.get_remote_address(), relayed = endpoint.is_relayed(), "connected");
            if let Some(d) = dial.as_mut().filter(|d| d.target == peer_id) {
                if endpoint.is_relayed() {
                    d.relayed_at.get_or_insert_with(Instant::now);
                    d.relayed_connection.get_or_insert(connection_id);
                } else if d.direct.is_none() {
                    d.direct = Some((Instant::now(), endpoint.get_remote_address().to_string()));
                }
            }
        }
        SwarmEvent::OutgoingConnectionError {
            peer_id: Some(peer_id),
            error,
            ..
        } => {
            tracing::info!(target: LAB, event = "dial_failed", %peer_id, %error, "dial failed");
            if let Some(d) = dial.as_mut().filter(|d| d.target == peer_id) {
                d.errors.push(error.to_string());
            }
        }
        _ => {}
    }
    Ok(())
}

/// Side A of a test punch: dial the target through the relay, wait for a direct connection.
#[derive(Debug)]
struct Dial {
    target: PeerId,
    target_addr: Multiaddr,
    deadline: Instant,
    relays_dialed: bool,
    dialed_at: Option<Instant>,
    observed: Option<String>,
    relayed_at: Option<Instant>,
    relayed_connection: Option<ConnectionId>,
    relayed_rtt: Option<Duration>,
    direct: Option<(Instant, String)>,
    dcutr: Vec<String>,
    errors: Vec<String>,
}

/// What `--dial` prints.
#[derive(Debug, Serialize)]
struct DialOutcome {
    /// `direct` (a direct connection to the target exists), `relayed-only`, or `no-relay`.
    result: &'static str,
    /// Our address as the relay saw it (identify turns it into the address candidate DCUtR
    /// sends in CONNECT).
    observed: Option<String>,
    /// From the circuit dial to the relayed connection.
    relayed_ms: Option<f64>,
    /// From the relayed connection to the direct one.
    direct_ms: Option<f64>,
    /// The first ping's RTT over the relayed connection.
    relayed_rtt_ms: Option<f64>,
    /// The direct connection's remote address.
    direct_address: Option<String>,
    /// DCUtR events seen here.
    dcutr: Vec<String>,
    /// Dial errors toward the target.
    errors: Vec<String>,
}

impl Dial {
    fn new(target_addr: &Multiaddr, timeout: Duration) -> Result<Dial> {
        let (target, _) = split_peer(target_addr)?;
        if !target_addr.iter().any(|p| p == Protocol::P2pCircuit) {
            return Err(peer_error(format!(
                "--dial {target_addr}: not a /p2p-circuit address"
            )));
        }
        Ok(Dial {
            target,
            target_addr: target_addr.clone(),
            deadline: Instant::now() + timeout,
            relays_dialed: false,
            dialed_at: None,
            observed: None,
            relayed_at: None,
            relayed_connection: None,
            relayed_rtt: None,
            direct: None,
            dcutr: Vec::new(),
            errors: Vec::new(),
        })
    }

    /// The outcome, once there is one (a direct connection and the relayed RTT, or the
    /// deadline).
    fn outcome(&mut self) -> Option<DialOutcome> {
        let complete = self.direct.is_some() && self.relayed_rtt.is_some();
        if !complete && Instant::now() < self.deadline {
            return None;
        }
        let ms = |from: Option<Instant>, to: Option<Instant>| {
            Some(to?.duration_since(from?).as_secs_f64() * 1e3)
        };
        let direct_at = self.direct.as_ref().map(|d| d.0);
        Some(DialOutcome {
            result: match (&self.direct, self.relayed_at) {
                (Some(_), _) => "direct",
                (None, Some(_)) => "relayed-only",
                (None, None) => "no-relay",
            },
            observed: self.observed.clone(),
            relayed_ms: ms(self.dialed_at, self.relayed_at),
            direct_ms: ms(self.relayed_at, direct_at),
            relayed_rtt_ms: self.relayed_rtt.map(|rtt| rtt.as_secs_f64() * 1e3),
            direct_address: self.direct.as_ref().map(|d| d.1.clone()),
            dcutr: std::mem::take(&mut self.dcutr),
            errors: std::mem::take(&mut self.errors),
        })
    }
}
