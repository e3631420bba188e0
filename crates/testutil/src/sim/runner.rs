//! The task of a simulated node: carries out commands and answers them when the swarm's events
//! say they are done.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::kad::{GetClosestPeersError, QueryId, QueryResult};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{identify, kad, relay, Multiaddr, PeerId, StreamProtocol, Swarm};
use tokio::sync::{mpsc, oneshot};

use super::{SimBehaviour, SimBehaviourEvent, SimError};

type Reply<T> = oneshot::Sender<Result<T, SimError>>;

/// What a [`super::SimNode`] asks its task.
pub(crate) enum Command {
    AddPeers(Vec<Multiaddr>, Reply<()>),
    Reserve(Multiaddr, Reply<()>),
    Lookup(PeerId, Reply<Vec<PeerId>>),
    Visit(Multiaddr, Reply<()>),
    Connect(Multiaddr, Reply<()>),
    Announce(Vec<Multiaddr>, Reply<()>),
    Bootstraps(Reply<usize>),
}

#[derive(Default)]
struct Visit {
    received: bool,
    sent: bool,
}

pub(crate) struct Runner {
    swarm: Swarm<SimBehaviour>,
    commands: mpsc::Receiver<Command>,
    kad_protocol: StreamProtocol,
    reservations: HashMap<ListenerId, (PeerId, Reply<()>)>,
    lookups: HashMap<QueryId, Reply<Vec<PeerId>>>,
    visits: HashMap<ConnectionId, (Visit, Reply<()>)>,
    connects: HashMap<ConnectionId, Reply<()>>,
    /// Announcements in order, each with the identify pushes it still waits for.
    announcements: VecDeque<(usize, Reply<()>)>,
    bootstraps: usize,
}

/// Listens on 127.0.0.1 and returns the address once the listener is up.
pub(crate) async fn listen(swarm: &mut Swarm<SimBehaviour>) -> Result<Multiaddr, SimError> {
    let addr: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr");
    swarm.listen_on(addr).map_err(|e| SimError(e.to_string()))?;
    let wait = async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                return address;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .map_err(|_| SimError("listener did not come up".into()))
}

fn split_peer(addr: &Multiaddr) -> Result<PeerId, SimError> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Ok(peer),
        _ => Err(SimError(format!("{addr} does not end in /p2p/<peer ID>"))),
    }
}

fn loopback_direct(addr: &Multiaddr) -> bool {
    let mut loopback = false;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(ip) => loopback = ip.is_loopback(),
            Protocol::Ip6(ip) => loopback = ip.is_loopback(),
            Protocol::P2pCircuit => return false,
            _ => {}
        }
    }
    loopback
}

impl Runner {
    pub(crate) fn new(
        swarm: Swarm<SimBehaviour>,
        commands: mpsc::Receiver<Command>,
        kad_protocol: StreamProtocol,
    ) -> Runner {
        Runner {
            swarm,
            commands,
            kad_protocol,
            reservations: HashMap::new(),
            lookups: HashMap::new(),
            visits: HashMap::new(),
            connects: HashMap::new(),
            announcements: VecDeque::new(),
            bootstraps: 0,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_event(event),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
            }
        }
    }

    fn dial(&mut self, addr: Multiaddr) -> Result<ConnectionId, SimError> {
        let peer = split_peer(&addr)?;
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![addr])
            .condition(PeerCondition::Always)
            .build();
        let id = opts.connection_id();
        self.swarm.dial(opts).map_err(|e| SimError(e.to_string()))?;
        Ok(id)
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::AddPeers(addrs, reply) => {
                let result = addrs.into_iter().try_for_each(|mut addr| {
                    let peer = split_peer(&addr)?;
                    addr.pop();
                    self.swarm.behaviour_mut().kad.add_address(&peer, addr);
                    Ok(())
                });
                let _ = reply.send(result);
            }
            Command::Reserve(relay, reply) => {
                let result = split_peer(&relay).and_then(|peer| {
                    let id = self
                        .swarm
                        .listen_on(relay.with(Protocol::P2pCircuit))
                        .map_err(|e| SimError(e.to_string()))?;
                    Ok((peer, id))
                });
                match result {
                    Ok((peer, id)) => {
                        self.reservations.insert(id, (peer, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Lookup(target, reply) => {
                let id = self.swarm.behaviour_mut().kad.get_closest_peers(target);
                self.lookups.insert(id, reply);
            }
            Command::Visit(addr, reply) => match self.dial(addr) {
                Ok(id) => {
                    self.visits.insert(id, (Visit::default(), reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Connect(addr, reply) => match self.dial(addr) {
                Ok(id) => {
                    self.connects.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Announce(addrs, reply) => self.announce(addrs, reply),
            Command::Bootstraps(reply) => {
                let _ = reply.send(Ok(self.bootstraps));
            }
        }
    }

    /// Replaces the external addresses by `addrs` and pushes identify to every connected peer;
    /// answers once every push was sent.
    fn announce(&mut self, addrs: Vec<Multiaddr>, reply: Reply<()>) {
        let old: Vec<Multiaddr> = self.swarm.external_addresses().cloned().collect();
        for addr in &old {
            self.swarm.remove_external_address(addr);
        }
        for addr in addrs {
            self.swarm.add_external_address(addr);
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        let Some(identify) = self.swarm.behaviour_mut().identify.as_mut() else {
            let _ = reply.send(Err(SimError("identify is off".into())));
            return;
        };
        if peers.is_empty() {
            let _ = reply.send(Ok(()));
            return;
        }
        identify.push(peers.iter().copied());
        self.announcements.push_back((peers.len(), reply));
    }

    fn on_event(&mut self, event: SwarmEvent<SimBehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { connection_id, .. } => {
                if let Some(reply) = self.connects.remove(&connection_id) {
                    let _ = reply.send(Ok(()));
                }
            }
            SwarmEvent::ConnectionClosed {
                connection_id,
                cause,
                ..
            } => {
                if let Some((visit, reply)) = self.visits.remove(&connection_id) {
                    let result = if visit.received && visit.sent {
                        Ok(())
                    } else {
                        Err(SimError(format!(
                            "connection closed before identify finished: {cause:?}"
                        )))
                    };
                    let _ = reply.send(result);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                let reply = self
                    .visits
                    .remove(&connection_id)
                    .map(|(_, reply)| reply)
                    .or_else(|| self.connects.remove(&connection_id));
                if let Some(reply) = reply {
                    let _ = reply.send(Err(SimError(error.to_string())));
                }
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Some((_, reply)) = self.reservations.remove(&listener_id) {
                    let _ = reply.send(Err(SimError(format!("reservation failed: {reason:?}"))));
                }
            }
            SwarmEvent::Behaviour(SimBehaviourEvent::RelayClient(
                relay::client::Event::ReservationReqAccepted { relay_peer_id, .. },
            )) => {
                let done: Vec<ListenerId> = self
                    .reservations
                    .iter()
                    .filter(|(_, (peer, _))| *peer == relay_peer_id)
                    .map(|(id, _)| *id)
                    .collect();
                for id in done {
                    if let Some((_, reply)) = self.reservations.remove(&id) {
                        let _ = reply.send(Ok(()));
                    }
                }
            }
            SwarmEvent::Behaviour(SimBehaviourEvent::Identify(event)) => self.on_identify(event),
            SwarmEvent::Behaviour(SimBehaviourEvent::Kad(
                kad::Event::OutboundQueryProgressed {
                    id, result, step, ..
                },
            )) => match result {
                QueryResult::Bootstrap(_) if step.last => self.bootstraps += 1,
                QueryResult::GetClosestPeers(result) if step.last => {
                    let peers = match result {
                        Ok(ok) => ok.peers,
                        Err(GetClosestPeersError::Timeout { peers, .. }) => peers,
                    };
                    if let Some(reply) = self.lookups.remove(&id) {
                        let _ = reply.send(Ok(peers.into_iter().map(|p| p.peer_id).collect()));
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        match event {
            identify::Event::Received {
                connection_id,
                peer_id,
                info,
            } => {
                if info.protocols.contains(&self.kad_protocol) {
                    for addr in info.listen_addrs.into_iter().filter(loopback_direct) {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
                self.visit_progress(connection_id, |v| v.received = true);
            }
            identify::Event::Sent { connection_id, .. } => {
                self.visit_progress(connection_id, |v| v.sent = true)
            }
            identify::Event::Pushed { .. } => {
                if let Some((waiting, _)) = self.announcements.front_mut() {
                    *waiting -= 1;
                    if *waiting == 0 {
                        if let Some((_, reply)) = self.announcements.pop_front() {
                            let _ = reply.send(Ok(()));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn visit_progress(&mut self, connection: ConnectionId, update: impl FnOnce(&mut Visit)) {
        if let Some((visit, _)) = self.visits.get_mut(&connection) {
            update(visit);
            if visit.received && visit.sent {
                self.swarm.close_connection(connection);
            }
        }
    }
}
