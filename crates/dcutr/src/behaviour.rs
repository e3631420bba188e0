//! The [`NetworkBehaviour`]: translates swarm events into calls on the protocol core and the
//! core's outputs into swarm actions. It makes no protocol decision itself.
//!
//! Follows the stock crate's `src/behaviour.rs` for what the swarm sees: a handler only on
//! relayed connections, direct dials with `PeerCondition::Always`, the initiator's dial with
//! `override_role()`, and the default `PortUse::Reuse` (dial from the listening port, which TCP
//! hole punching needs). For QUIC it does what the stock crate does, not what the spec asks:
//! both sides simply dial (the spec's B would instead send random UDP packets); libp2p-quic with
//! `PortUse::Reuse` dials from the listening endpoint, and that dial is the punch.
//!
//! Worth knowing when reading TCP results: where nothing drops the first SYN (no NAT in front of
//! the responder, or loopback), there is no simultaneous open. The initiator's dial then reaches
//! the responder's listener, both ends wait for the other to start the connection upgrade, and the
//! dial fails only at the transport timeout (10 s by default), while the responder's own dial
//! succeeds and shows up here as an [`EventKind::UnsolicitedDirectConnection`]. The stock crate
//! does the same.
//!
//! [`EventKind::UnsolicitedDirectConnection`]: crate::EventKind::UnsolicitedDirectConnection

use std::{
    collections::HashMap,
    task::{Context, Poll},
};

use either::Either;
use libp2p::{
    core::{transport::PortUse, Endpoint},
    swarm::{
        behaviour::{ConnectionClosed, ConnectionEstablished, DialFailure, FromSwarm},
        dial_opts::{DialOpts, PeerCondition},
        dummy, ConnectionDenied, ConnectionId, NetworkBehaviour, NotifyHandler, THandler,
        THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};
use punchr_types::address::is_relayed;

use crate::{
    candidates::SharedCandidates,
    clock::Clock,
    event::{Event, Role},
    handler::{Command, Handler, HandlerCommand, HandlerReport, Report},
    preference::Preference,
    roles::{HandshakeRole, RemoteRoles, RoleStrategy},
    scope,
    upgrade::{Output, StartedDial, Upgrades},
};

/// The instrumented DCUtR behaviour: add it to a swarm next to the relay client and read its
/// [`Event`]s.
///
/// Own address candidates for CONNECT come from external address candidates (identify's observed
/// address), confirmed external addresses, and [`Behaviour::add_candidate`]. Relayed addresses
/// are never offered.
pub struct Behaviour {
    clock: Clock,
    candidates: SharedCandidates,
    upgrades: Upgrades,
    preferences: HashMap<PeerId, Preference>,
    /// Offer identify's unconfirmed observations in CONNECT (stock behaviour).
    offer_observed: bool,
    /// Dial any address a CONNECT names, not only public ones (tests on one machine).
    dial_non_public: bool,
}

impl Behaviour {
    /// A behaviour for the swarm whose identity is `local_peer_id`; its clock starts now.
    pub fn new(local_peer_id: PeerId) -> Self {
        Self::with_clock(local_peer_id, Clock::new())
    }

    /// Like [`Behaviour::new`], with timestamps converted by `clock` (share one clock between
    /// this behaviour and the rest of a measurement).
    pub fn with_clock(local_peer_id: PeerId, clock: Clock) -> Self {
        Self {
            clock,
            candidates: SharedCandidates::new(local_peer_id),
            upgrades: Upgrades::new(clock, RoleStrategy::default()),
            preferences: HashMap::new(),
            offer_observed: true,
            dial_non_public: false,
        }
    }

    /// How our dials choose their handshake role when we are the responder (default:
    /// [`RoleStrategy::Adaptive`]); applies to dials from now on.
    pub fn set_role_strategy(&mut self, strategy: RoleStrategy) {
        self.upgrades.set_strategy(strategy);
    }

    /// Tells the behaviour `peer`'s identify agent version, which [`RoleStrategy::Adaptive`]
    /// reads to pick its role ([`RemoteRoles::from_agent_version`]).
    pub fn set_remote_agent(&mut self, peer: PeerId, agent_version: &str) {
        self.upgrades
            .set_remote_roles(peer, RemoteRoles::from_agent_version(agent_version));
    }

    /// Whether CONNECT also offers the addresses identify merely observed (true, as the stock
    /// crate does) or only confirmed external addresses and added ones. A peer that reports
    /// the address it saw over a *relayed* connection reports the relay's, so a user who can
    /// tell the two apart confirms addresses itself and turns this off.
    pub fn offer_observed_addresses(&mut self, offer: bool) {
        self.offer_observed = offer;
    }

    /// Whether to dial CONNECT addresses that are not public (loopback, private, link-local…).
    /// Off by default, as go-libp2p: a stranger's CONNECT must not make us connect into our
    /// own machine or network. Turn it on only for tests on one machine.
    pub fn dial_non_public_addresses(&mut self, dial: bool) {
        self.dial_non_public = dial;
    }

    /// The clock that converts this behaviour's instants to Unix nanoseconds.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Offers `addr` in every CONNECT from now on, before the other candidates. Relayed
    /// addresses and addresses of other peers are ignored; `/p2p/<self>` is appended.
    pub fn add_candidate(&mut self, addr: Multiaddr) {
        self.candidates.with(|c| c.add(addr));
    }

    /// Stops offering an address given to [`Behaviour::add_candidate`].
    pub fn remove_candidate(&mut self, addr: &Multiaddr) {
        self.candidates.with(|c| c.remove(addr));
    }

    /// The addresses a CONNECT sent now would carry (before the 4 KiB size cut).
    pub fn candidates(&self) -> Vec<Multiaddr> {
        self.candidates.list()
    }

    /// Prefers some transports in hole punches with `peer` (both the addresses we offer and
    /// the ones we dial), for relayed connections made from now on; see [`Preference`].
    pub fn prefer(&mut self, peer: PeerId, preference: Preference) {
        self.preferences.insert(peer, preference);
    }

    /// Forgets the preference for `peer`.
    pub fn forget_preference(&mut self, peer: &PeerId) {
        self.preferences.remove(peer);
    }

    fn preference_for(&self, peer: &PeerId) -> Preference {
        self.preferences.get(peer).cloned().unwrap_or_default()
    }

    fn relayed_handler(&self, role: Role, peer: &PeerId) -> THandler<Self> {
        Either::Left(Handler::new(
            role,
            self.candidates.clone(),
            self.preference_for(peer),
        ))
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Either<Handler, dummy::ConnectionHandler>;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if is_relayed(local_addr) {
            return Ok(self.relayed_handler(Role::Initiator, &peer));
        }
        Ok(Either::Right(dummy::ConnectionHandler))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if is_relayed(addr) {
            return Ok(self.relayed_handler(Role::Responder, &peer));
        }
        Ok(Either::Right(dummy::ConnectionHandler))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        let now = self.clock.now();
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            }) => self
                .upgrades
                .connection_established(connection_id, peer_id, endpoint, now),
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.upgrades.connection_closed(connection_id, now)
            }
            FromSwarm::DialFailure(DialFailure {
                connection_id,
                error,
                ..
            }) => self
                .upgrades
                .dial_failed(connection_id, crate::DialFailure::from(error), now),
            FromSwarm::NewExternalAddrCandidate(e) if self.offer_observed => {
                self.candidates.with(|c| c.observe(e.addr.clone()))
            }
            FromSwarm::ExternalAddrConfirmed(e) => {
                self.candidates.with(|c| c.confirm(e.addr.clone()))
            }
            FromSwarm::ExternalAddrExpired(e) => self.candidates.with(|c| c.expire(e.addr)),
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        let report = match event {
            Either::Left(HandlerReport(report)) => report,
            Either::Right(never) => match never {},
        };
        match report {
            Report::StreamOpened { at } => self.upgrades.stream_opened(connection_id, at),
            Report::Step(step) => self.upgrades.step(connection_id, step),
            Report::ExchangeDone { addrs } => self.upgrades.exchange_done(connection_id, addrs),
            Report::ExchangeFailed { failure, at } => {
                self.upgrades.exchange_failed(connection_id, failure, at)
            }
        }
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        let Some(output) = self.upgrades.next_output() else {
            return Poll::Pending;
        };
        Poll::Ready(match output {
            Output::Event(event) => {
                event.trace();
                ToSwarm::GenerateEvent(event)
            }
            Output::OpenStream {
                peer_id,
                relayed_connection,
            } => ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::One(relayed_connection),
                event: Either::Left(HandlerCommand(Command::OpenStream)),
            },
            Output::Dial {
                peer_id,
                relayed_connection,
                attempt,
                addrs,
                handshake_role,
            } => {
                let mut addrs = self.preference_for(&peer_id).apply(&addrs);
                if !self.dial_non_public {
                    addrs.retain(scope::is_public);
                }
                let responder = self.upgrades.role_of(relayed_connection) == Some(Role::Responder);
                let (addrs, dial) = dial_options(peer_id, addrs, handshake_role, responder);
                let opts = dial.build();
                // Recorded before the swarm sees the dial, so that an immediate failure
                // (reported synchronously) finds it.
                self.upgrades.dial_started(
                    relayed_connection,
                    attempt,
                    StartedDial {
                        id: opts.connection_id(),
                        addrs,
                        handshake_role,
                    },
                    self.clock.now(),
                );
                ToSwarm::Dial { opts }
            }
        })
    }
}

/// The dial for a hole punch with our `role`. An initiator dials as the stock crate does (role
/// overridden, port reused). A responder that takes the server role overrides the role too;
/// for QUIC that only works with libp2p-quic's hole puncher, which `PortUse::New` selects (it
/// sends random packets from the *listening* socket and waits for the remote's handshake; with
/// `Reuse` the dial would be an ordinary client dial). Such a dial takes one transport: TCP when
/// the addresses mix both, so that the role the event reports is the one the dial has.
fn dial_options(
    peer_id: PeerId,
    addrs: Vec<Multiaddr>,
    role: HandshakeRole,
    responder: bool,
) -> (
    Vec<Multiaddr>,
    libp2p::swarm::dial_opts::WithPeerIdWithAddresses,
) {
    let base = |addrs: &[Multiaddr]| {
        DialOpts::peer_id(peer_id)
            .condition(PeerCondition::Always)
            .addresses(addrs.to_vec())
    };
    match role {
        HandshakeRole::Client => {
            let dial = base(&addrs);
            (addrs, dial)
        }
        HandshakeRole::Server if !responder => {
            let dial = base(&addrs).override_role();
            (addrs, dial)
        }
        HandshakeRole::Server => {
            let tcp: Vec<Multiaddr> = addrs
                .iter()
                .filter(|a| !scope::is_quic(a))
                .cloned()
                .collect();
            if tcp.is_empty() {
                let dial = base(&addrs).override_role().allocate_new_port();
                (addrs, dial)
            } else {
                let dial = base(&tcp).override_role();
                (tcp, dial)
            }
        }
    }
}
