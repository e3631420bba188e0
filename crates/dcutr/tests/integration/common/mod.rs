//! Loopback test bed shared by the integration tests: a relay, and peers that run either this
//! crate's DCUtR behaviour or the stock `libp2p-dcutr` one.
//!
//! Address candidates are fed explicitly: identify is not part of the set-up, so the peers learn
//! their own addresses only from [`Peer::offer`] (an external address *candidate*, the event the
//! stock crate listens to) or from [`Peer::confirm`] (a confirmed external address, which only
//! our behaviour uses).

#![allow(dead_code, unreachable_pub)]

use std::{
    collections::{HashSet, VecDeque},
    convert::Infallible,
    net::TcpListener,
    task::{Context, Poll, Waker},
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    core::{transport::PortUse, Endpoint},
    multiaddr::Protocol,
    noise, relay,
    swarm::{
        behaviour::toggle::Toggle, dummy, ConnectionDenied, ConnectionId, FromSwarm,
        NetworkBehaviour, SwarmEvent, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder,
};

/// Every test's deadline: generous for a loaded 2-core machine, short enough to fail fast.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Which DCUtR implementation a peer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dcutr {
    /// `punchr_dcutr::Behaviour`.
    Ours,
    /// `libp2p_dcutr::Behaviour` 0.15.
    Stock,
    /// None at all (a peer that does not speak `/libp2p/dcutr`).
    Without,
}

/// The transport the direct connection should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Quic,
}

impl Transport {
    fn listen_addr(self) -> Multiaddr {
        match self {
            Transport::Tcp => "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            Transport::Quic => "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(),
        }
    }
}

/// A test behaviour that reports addresses as external address candidates, the way identify
/// reports an observed address.
#[derive(Default)]
pub struct CandidateFeed {
    queue: VecDeque<Multiaddr>,
    waker: Option<Waker>,
}

impl CandidateFeed {
    fn push(&mut self, addr: Multiaddr) {
        self.queue.push_back(addr);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

impl NetworkBehaviour for CandidateFeed {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        match self.queue.pop_front() {
            Some(addr) => Poll::Ready(ToSwarm::NewExternalAddrCandidate(addr)),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A peer's behaviour: relay client, one DCUtR implementation (the other one disabled), and the
/// candidate feed.
#[derive(NetworkBehaviour)]
pub struct PeerBehaviour {
    relay: relay::client::Behaviour,
    ours: Toggle<punchr_dcutr::Behaviour>,
    stock: Toggle<libp2p_dcutr::Behaviour>,
    feed: CandidateFeed,
}

/// A peer and everything it observed.
pub struct Peer {
    pub swarm: Swarm<PeerBehaviour>,
    pub dcutr: Dcutr,
    /// Our behaviour's events, in order.
    pub events: Vec<punchr_dcutr::Event>,
    /// The stock behaviour's results: `Ok` or the error's `Debug` text.
    pub stock_results: Vec<Result<ConnectionId, String>>,
    /// Open direct connections to the other peer (not to the relay).
    pub direct: HashSet<ConnectionId>,
    /// Open relayed connections.
    pub relayed: HashSet<ConnectionId>,
    /// The relay in use.
    pub relay: Option<PeerId>,
    /// The address the peer listens on for direct connections.
    pub listen_addr: Option<Multiaddr>,
    /// Whether the relay accepted our reservation (so this peer is B, the initiator).
    pub reserved: bool,
}

impl Peer {
    /// A peer with TCP, QUIC and the relay client, running `dcutr`.
    pub fn new(dcutr: Dcutr) -> Self {
        let swarm = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_quic()
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|key, relay| {
                let me = key.public().to_peer_id();
                PeerBehaviour {
                    relay,
                    ours: Toggle::from((dcutr == Dcutr::Ours).then(|| {
                        let mut ours = punchr_dcutr::Behaviour::new(me);
                        // Loopback is all these tests have; the stock crate's roles.
                        ours.dial_non_public_addresses(true);
                        ours.set_role_strategy(punchr_dcutr::RoleStrategy::Spec);
                        ours
                    })),
                    stock: Toggle::from(
                        (dcutr == Dcutr::Stock).then(|| libp2p_dcutr::Behaviour::new(me)),
                    ),
                    feed: CandidateFeed::default(),
                }
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
            .build();
        Self {
            swarm,
            dcutr,
            events: Vec::new(),
            stock_results: Vec::new(),
            direct: HashSet::new(),
            relayed: HashSet::new(),
            relay: None,
            listen_addr: None,
            reserved: false,
        }
    }

    pub fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Listens on loopback for `transport` and waits for the address.
    pub async fn listen(&mut self, transport: Transport) -> Multiaddr {
        self.swarm.listen_on(transport.listen_addr()).unwrap();
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = self.swarm.select_next_some().await {
                self.listen_addr = Some(address.clone());
                return address;
            }
        }
    }

    /// Reports `addr` as an external address candidate (identify's observed-address path).
    pub fn offer(&mut self, addr: Multiaddr) {
        self.swarm.behaviour_mut().feed.push(addr);
    }

    /// Confirms `addr` as an external address (only our behaviour takes these as candidates).
    pub fn confirm(&mut self, addr: Multiaddr) {
        self.swarm.add_external_address(addr);
    }

    /// Our behaviour, when this peer runs it.
    pub fn ours(&mut self) -> &mut punchr_dcutr::Behaviour {
        self.swarm
            .behaviour_mut()
            .ours
            .as_mut()
            .expect("runs our DCUtR")
    }

    /// Makes a reservation at `relay` and waits until it is accepted.
    pub async fn reserve(&mut self, relay: &Relay) {
        self.relay = Some(relay.peer_id);
        self.swarm.listen_on(relay.circuit_addr()).unwrap();
        while !self.reserved {
            let event = self.swarm.select_next_some().await;
            self.record(event);
        }
    }

    /// Dials `target` through `relay`.
    pub fn dial_through(&mut self, relay: &Relay, target: PeerId) {
        self.relay = Some(relay.peer_id);
        let addr = relay.circuit_addr().with(Protocol::P2p(target));
        self.swarm.dial(addr).unwrap();
    }

    /// Takes note of one swarm event.
    pub fn record(&mut self, event: SwarmEvent<PeerBehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(PeerBehaviourEvent::Ours(e)) => self.events.push(e),
            SwarmEvent::Behaviour(PeerBehaviourEvent::Stock(e)) => self
                .stock_results
                .push(e.result.map_err(|err| format!("{err:?}"))),
            SwarmEvent::Behaviour(PeerBehaviourEvent::Relay(
                relay::client::Event::ReservationReqAccepted { .. },
            )) => self.reserved = true,
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } if Some(peer_id) != self.relay => {
                if endpoint.is_relayed() {
                    self.relayed.insert(connection_id);
                } else {
                    self.direct.insert(connection_id);
                }
            }
            SwarmEvent::ConnectionClosed { connection_id, .. } => {
                self.direct.remove(&connection_id);
                self.relayed.remove(&connection_id);
            }
            _ => {}
        }
    }

    /// The kinds of our events for `attempt`, as short names.
    pub fn steps(&self, attempt: u8) -> Vec<&'static str> {
        self.events
            .iter()
            .filter(|e| e.attempt == attempt)
            .map(|e| kind_name(&e.kind))
            .collect()
    }

    /// Attempts of ours that finished, with their outcome.
    pub fn outcomes(&self) -> Vec<(u8, punchr_dcutr::AttemptOutcome)> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                punchr_dcutr::EventKind::AttemptFinished { outcome, .. } => {
                    Some((e.attempt, outcome.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Whether one of our attempts ended with a direct connection: our dial's, or the
    /// remote's when it was established first (both sides dial, so either may win).
    pub fn succeeded(&self) -> bool {
        self.outcomes().iter().any(|(_, o)| {
            matches!(
                o,
                punchr_dcutr::AttemptOutcome::Succeeded { .. }
                    | punchr_dcutr::AttemptOutcome::RemoteDialSucceeded { .. }
            )
        })
    }
}

/// A short name for an event kind.
pub fn kind_name(kind: &punchr_dcutr::EventKind) -> &'static str {
    use punchr_dcutr::EventKind::*;
    match kind {
        StreamOpened => "stream_opened",
        ConnectSent { .. } => "connect_sent",
        ConnectReceived { .. } => "connect_received",
        RttMeasured { .. } => "rtt_measured",
        SyncSent => "sync_sent",
        SyncReceived => "sync_received",
        DialStarted { .. } => "dial_started",
        DialSucceeded { .. } => "dial_succeeded",
        DialFailed { .. } => "dial_failed",
        AttemptFinished { .. } => "attempt_finished",
        AttemptsExhausted { .. } => "attempts_exhausted",
        UnsolicitedDirectConnection { .. } => "unsolicited_direct_connection",
    }
}

/// A relay server on loopback TCP, running in its own task.
pub struct Relay {
    pub peer_id: PeerId,
    pub addr: Multiaddr,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start() -> Self {
        let mut swarm = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|key| {
                relay::Behaviour::new(key.public().to_peer_id(), relay::Config::default())
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
            .build();
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                break address;
            }
        };
        // The relay serves reservations only once it has a confirmed external address.
        swarm.add_external_address(addr.clone());
        let peer_id = *swarm.local_peer_id();
        let task = tokio::spawn(async move {
            loop {
                swarm.select_next_some().await;
            }
        });
        Self {
            peer_id,
            addr,
            task,
        }
    }

    /// `<relay>/p2p/<relay id>/p2p-circuit`.
    pub fn circuit_addr(&self) -> Multiaddr {
        self.addr
            .clone()
            .with(Protocol::P2p(self.peer_id))
            .with(Protocol::P2pCircuit)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Drives both peers until `done` holds, or panics at [`DEADLINE`] with what was seen.
pub async fn run_until(a: &mut Peer, b: &mut Peer, mut done: impl FnMut(&Peer, &Peer) -> bool) {
    let result = tokio::time::timeout(DEADLINE, async {
        while !done(a, b) {
            tokio::select! {
                event = a.swarm.select_next_some() => a.record(event),
                event = b.swarm.select_next_some() => b.record(event),
            }
        }
    })
    .await;
    if result.is_err() {
        panic!(
            "deadline passed; events: {:#?}\n{:#?}\nstock: {:?} {:?}",
            a.events, b.events, a.stock_results, b.stock_results
        );
    }
}

/// Keeps driving both peers for `period` (to let late events arrive).
pub async fn run_for(a: &mut Peer, b: &mut Peer, period: Duration) {
    let _ = tokio::time::timeout(period, async {
        loop {
            tokio::select! {
                event = a.swarm.select_next_some() => a.record(event),
                event = b.swarm.select_next_some() => b.record(event),
            }
        }
    })
    .await;
}

/// An address on loopback where nothing listens: a port bound and released again.
pub fn closed_tcp_addr() -> Multiaddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// `addr/p2p/<peer>`, the form in which candidates travel.
pub fn with_peer(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    addr.clone().with(Protocol::P2p(peer))
}

/// The usual cast: a relay, **B** (listens through the relay, so it initiates DCUtR) and **A**
/// (dials B through the relay, so it responds), both listening on loopback.
pub struct Bed {
    pub relay: Relay,
    pub b: Peer,
    pub a: Peer,
    /// B's direct listen address.
    pub b_addr: Multiaddr,
    /// A's direct listen address.
    pub a_addr: Multiaddr,
}

impl Bed {
    /// Starts the relay and both peers; nothing is connected yet, so candidates can be fed.
    pub async fn new(transport: Transport, b: Dcutr, a: Dcutr) -> Self {
        init_tracing();
        let relay = Relay::start().await;
        let mut b = Peer::new(b);
        let b_addr = b.listen(transport).await;
        let mut a = Peer::new(a);
        let a_addr = a.listen(transport).await;
        Self {
            relay,
            b,
            a,
            b_addr,
            a_addr,
        }
    }

    /// B reserves a slot at the relay, then A dials B through it.
    pub async fn connect(&mut self) {
        self.b.reserve(&self.relay).await;
        let b_id = self.b.peer_id();
        self.a.dial_through(&self.relay, b_id);
    }

    /// Drives B and A until `done`.
    pub async fn run_until(&mut self, done: impl FnMut(&Peer, &Peer) -> bool) {
        run_until(&mut self.b, &mut self.a, done).await
    }
}

/// Checks that every event's Unix time comes from the behaviour's clock and that the steps of
/// each attempt are in time order.
pub fn assert_consistent_times(peer: &mut Peer) {
    let clock = peer.ours().clock();
    for e in &peer.events {
        assert_eq!(clock.unix_nanos(e.at), e.unix_nanos, "{e:?}");
    }
    let attempts: HashSet<u8> = peer.events.iter().map(|e| e.attempt).collect();
    for attempt in attempts {
        let times: Vec<_> = peer
            .events
            .iter()
            .filter(|e| e.attempt == attempt)
            // Reported from the swarm, not the attempt's own timeline.
            .filter(|e| {
                !matches!(
                    e.kind,
                    punchr_dcutr::EventKind::UnsolicitedDirectConnection { .. }
                )
            })
            .map(|e| e.at)
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "attempt {attempt} out of order"
        );
    }
}
