//! The protocol core: attempts, roles and outcomes, without I/O.
//!
//! [`Upgrades`] is a pure function of what it is told — connections opening and closing, handler
//! reports, dial results, each with the [`Instant`] it happened — and answers with [`Output`]s:
//! events for the user and commands for the swarm. It takes no time readings of its own, so unit
//! tests drive it with made-up event sequences and instants.
//!
//! The rules follow the spec `relay/DCUtR.md` (the peer that accepted the relayed connection
//! initiates; it retries twice, each time with a fresh exchange on a new stream) and the stock
//! crate's `src/behaviour.rs` (a retry only after a failed hole-punch dial, at most
//! [`MAX_ATTEMPTS`]; a failed exchange is final; the initiator dials with the role overridden).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    time::Instant,
};

use libp2p::{core::ConnectedPoint, swarm::ConnectionId, Multiaddr, PeerId};

use crate::{
    clock::Clock,
    event::{AttemptOutcome, DialFailure, Event, EventKind, Role},
    handshake::Step,
    roles::{HandshakeRole, RemoteRoles, RoleStrategy},
};

/// Attempts the initiator makes per relayed connection (the spec's one try plus two retries).
pub const MAX_ATTEMPTS: u8 = 3;

/// What the core asks of the behaviour, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    /// Hand this event to the user.
    Event(Event),
    /// Tell the handler of `relayed_connection` to open a new `/libp2p/dcutr` stream.
    OpenStream {
        peer_id: PeerId,
        relayed_connection: ConnectionId,
    },
    /// Dial `peer_id` directly; report the dial's id back with [`Upgrades::dial_started`].
    Dial {
        peer_id: PeerId,
        relayed_connection: ConnectionId,
        attempt: u8,
        addrs: Vec<Multiaddr>,
        /// Our side of the security and muxer handshakes: initiators are always the server; a
        /// responder's comes from its [`RoleStrategy`].
        handshake_role: HandshakeRole,
    },
}

/// A hole-punch dial the behaviour handed to the swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartedDial {
    /// The dial's connection id.
    pub(crate) id: ConnectionId,
    /// The addresses dialed.
    pub(crate) addrs: Vec<Multiaddr>,
    /// Our handshake role on it.
    pub(crate) handshake_role: HandshakeRole,
}

/// Why an attempt ended before its dial, as reported by the connection handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Stream negotiation or the exchange took too long.
    Timeout,
    /// The remote does not speak `/libp2p/dcutr`.
    Unsupported,
    /// The remote broke the protocol, or the stream failed.
    Protocol(String),
}

/// Where an unfinished attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Initiator: stream requested, not yet open.
    Opening,
    /// Stream open, CONNECT/SYNC under way.
    Exchanging,
    /// Exchange done; our dial is requested or running.
    Dialing,
}

#[derive(Debug)]
struct Attempt {
    began: Instant,
    phase: Phase,
}

/// The upgrade of one relayed connection.
#[derive(Debug)]
struct Relayed {
    peer_id: PeerId,
    role: Role,
    /// What the remote's agent version says of its roles (responder's choice of role).
    remote_roles: RemoteRoles,
    /// Attempts begun so far.
    started: u8,
    /// Unfinished attempts by number (a responder's earlier dial may outlive its stream).
    attempts: BTreeMap<u8, Attempt>,
    /// The relayed connection is gone; only running dials are still followed.
    closed: bool,
    /// Initiator: succeeded or gave up, so no further attempt.
    done: bool,
}

impl Relayed {
    fn attempt_in(&self, phases: &[Phase]) -> Option<u8> {
        self.attempts
            .iter()
            .find(|(_, a)| phases.contains(&a.phase))
            .map(|(n, _)| *n)
    }
}

/// Every relayed connection's upgrade, and our hole-punch dials.
#[derive(Debug)]
pub(crate) struct Upgrades {
    clock: Clock,
    strategy: RoleStrategy,
    relayed: BTreeMap<ConnectionId, Relayed>,
    /// Our dials: dial id → (relayed connection, attempt).
    dials: HashMap<ConnectionId, (ConnectionId, u8)>,
    outputs: VecDeque<Output>,
}

impl Upgrades {
    pub(crate) fn new(clock: Clock, strategy: RoleStrategy) -> Self {
        Self {
            clock,
            strategy,
            relayed: BTreeMap::new(),
            dials: HashMap::new(),
            outputs: VecDeque::new(),
        }
    }

    /// The responder's role strategy from now on.
    pub(crate) fn set_strategy(&mut self, strategy: RoleStrategy) {
        self.strategy = strategy;
    }

    /// What `peer_id`'s agent version says of its roles, for its relayed connections.
    pub(crate) fn set_remote_roles(&mut self, peer_id: PeerId, roles: RemoteRoles) {
        for relayed in self.relayed.values_mut().filter(|r| r.peer_id == peer_id) {
            relayed.remote_roles = roles;
        }
    }

    /// Our role on a relayed connection still followed.
    pub(crate) fn role_of(&self, relayed_id: ConnectionId) -> Option<Role> {
        self.relayed.get(&relayed_id).map(|r| r.role)
    }

    /// The next thing for the behaviour to do.
    pub(crate) fn next_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// A connection (relayed or direct) to `peer_id` is established.
    pub(crate) fn connection_established(
        &mut self,
        connection_id: ConnectionId,
        peer_id: PeerId,
        endpoint: &ConnectedPoint,
        at: Instant,
    ) {
        if endpoint.is_relayed() {
            // The side that accepted the relayed connection initiates (spec: B).
            let role = if endpoint.is_listener() {
                Role::Initiator
            } else {
                Role::Responder
            };
            self.relayed.insert(
                connection_id,
                Relayed {
                    peer_id,
                    role,
                    remote_roles: self
                        .relayed
                        .values()
                        .find(|r| r.peer_id == peer_id)
                        .map_or(RemoteRoles::Unknown, |r| r.remote_roles),
                    started: 0,
                    attempts: BTreeMap::new(),
                    closed: false,
                    done: false,
                },
            );
            if role == Role::Initiator {
                self.begin_initiator_attempt(connection_id, at);
            }
            return;
        }

        if let Some((relayed_id, attempt)) = self.dials.remove(&connection_id) {
            let address = endpoint.get_remote_address().clone();
            self.emit(
                relayed_id,
                attempt,
                at,
                EventKind::DialSucceeded {
                    connection_id,
                    address,
                },
            );
            self.finish(
                relayed_id,
                attempt,
                at,
                AttemptOutcome::Succeeded { connection_id },
            );
            if let Some(relayed) = self.relayed.get_mut(&relayed_id) {
                relayed.done = true;
            }
            self.forget_if_over(relayed_id);
            return;
        }

        // Not ours: report it against the newest open relayed connection to that peer.
        let newest = self
            .relayed
            .iter()
            .rev()
            .find(|(_, r)| r.peer_id == peer_id && !r.closed)
            .map(|(id, r)| (*id, r.started));
        if let Some((relayed_id, started)) = newest {
            self.emit(
                relayed_id,
                started,
                at,
                EventKind::UnsolicitedDirectConnection {
                    connection_id,
                    address: endpoint.get_remote_address().clone(),
                    inbound: endpoint.is_listener(),
                },
            );
            self.remote_dial_won(relayed_id, connection_id, at);
        }
    }

    /// A direct connection we did not dial appeared while our hole-punch dial runs: the
    /// remote's dial got through first, so the attempt ends now, not when our dial gives up.
    fn remote_dial_won(
        &mut self,
        relayed_id: ConnectionId,
        connection_id: ConnectionId,
        at: Instant,
    ) {
        let Some(relayed) = self.relayed.get_mut(&relayed_id) else {
            return;
        };
        let Some(attempt) = relayed.attempt_in(&[Phase::Dialing]) else {
            return;
        };
        relayed.done = true;
        self.finish(
            relayed_id,
            attempt,
            at,
            AttemptOutcome::RemoteDialSucceeded { connection_id },
        );
    }

    /// A connection closed. For a relayed one, attempts still before their dial end here.
    pub(crate) fn connection_closed(&mut self, connection_id: ConnectionId, at: Instant) {
        let Some(relayed) = self.relayed.get_mut(&connection_id) else {
            return;
        };
        relayed.closed = true;
        let cut_short: Vec<u8> = relayed
            .attempts
            .iter()
            .filter(|(_, a)| a.phase != Phase::Dialing)
            .map(|(n, _)| *n)
            .collect();
        for attempt in cut_short {
            self.finish(connection_id, attempt, at, AttemptOutcome::ConnectionClosed);
        }
        self.forget_if_over(connection_id);
    }

    /// The handler of `relayed_id` has a negotiated `/libp2p/dcutr` stream.
    pub(crate) fn stream_opened(&mut self, relayed_id: ConnectionId, at: Instant) {
        let Some(relayed) = self.relayed.get_mut(&relayed_id) else {
            return;
        };
        let attempt = match relayed.role {
            Role::Initiator => {
                let Some(n) = relayed.attempt_in(&[Phase::Opening]) else {
                    return;
                };
                n
            }
            Role::Responder => {
                // Each inbound stream is a new attempt of the remote's; the handler drops an
                // exchange still running on an older stream.
                let stale = relayed.attempt_in(&[Phase::Exchanging]);
                relayed.started = relayed.started.saturating_add(1);
                let n = relayed.started;
                relayed.attempts.insert(
                    n,
                    Attempt {
                        began: at,
                        phase: Phase::Opening,
                    },
                );
                if let Some(stale) = stale {
                    self.finish(relayed_id, stale, at, AttemptOutcome::Superseded);
                }
                n
            }
        };
        self.set_phase(relayed_id, attempt, Phase::Exchanging);
        self.emit(relayed_id, attempt, at, EventKind::StreamOpened);
    }

    /// A step of the running exchange on `relayed_id`.
    pub(crate) fn step(&mut self, relayed_id: ConnectionId, step: Step) {
        let Some(attempt) = self.exchanging(relayed_id) else {
            return;
        };
        let (at, kind) = match step {
            Step::ConnectSent { addrs, at } => (at, EventKind::ConnectSent { addrs }),
            Step::ConnectReceived { offer, at } => (
                at,
                EventKind::ConnectReceived {
                    addrs: offer.addrs,
                    unparsable: offer.unparsable,
                },
            ),
            Step::RttMeasured { rtt, at } => (at, EventKind::RttMeasured { rtt }),
            Step::SyncSent { at } => (at, EventKind::SyncSent),
            Step::SyncReceived { at } => (at, EventKind::SyncReceived),
        };
        self.emit(relayed_id, attempt, at, kind);
    }

    /// The exchange on `relayed_id` finished: time to dial `addrs`.
    pub(crate) fn exchange_done(&mut self, relayed_id: ConnectionId, addrs: Vec<Multiaddr>) {
        let Some(attempt) = self.exchanging(relayed_id) else {
            return;
        };
        self.set_phase(relayed_id, attempt, Phase::Dialing);
        let relayed = &self.relayed[&relayed_id];
        let handshake_role = match relayed.role {
            Role::Initiator => HandshakeRole::Server,
            Role::Responder => self.strategy.responder_role(attempt, relayed.remote_roles),
        };
        self.outputs.push_back(Output::Dial {
            peer_id: relayed.peer_id,
            relayed_connection: relayed_id,
            attempt,
            addrs,
            handshake_role,
        });
    }

    /// The stream of `relayed_id` could not be opened, or its exchange failed. Final, as in the
    /// stock crate: only a failed dial leads to a retry.
    pub(crate) fn exchange_failed(
        &mut self,
        relayed_id: ConnectionId,
        failure: Failure,
        at: Instant,
    ) {
        let Some(relayed) = self.relayed.get_mut(&relayed_id) else {
            return;
        };
        let Some(attempt) = relayed.attempt_in(&[Phase::Opening, Phase::Exchanging]) else {
            return;
        };
        if relayed.role == Role::Initiator {
            relayed.done = true;
        }
        let outcome = match failure {
            Failure::Timeout => AttemptOutcome::Timeout,
            Failure::Unsupported => AttemptOutcome::Unsupported,
            Failure::Protocol(error) => AttemptOutcome::ProtocolError { error },
        };
        self.finish(relayed_id, attempt, at, outcome);
    }

    /// The behaviour issued the dial requested by [`Output::Dial`].
    pub(crate) fn dial_started(
        &mut self,
        relayed_id: ConnectionId,
        attempt: u8,
        dial: StartedDial,
        at: Instant,
    ) {
        self.dials.insert(dial.id, (relayed_id, attempt));
        self.emit(
            relayed_id,
            attempt,
            at,
            EventKind::DialStarted {
                connection_id: dial.id,
                addrs: dial.addrs,
                handshake_role: dial.handshake_role,
            },
        );
    }

    /// A dial failed; ours end their attempt, and an initiator then tries again while it may.
    pub(crate) fn dial_failed(&mut self, dial_id: ConnectionId, failure: DialFailure, at: Instant) {
        let Some((relayed_id, attempt)) = self.dials.remove(&dial_id) else {
            return;
        };
        self.emit(
            relayed_id,
            attempt,
            at,
            EventKind::DialFailed {
                connection_id: dial_id,
                failure,
            },
        );
        self.finish(relayed_id, attempt, at, AttemptOutcome::DialFailed);

        let Some(relayed) = self.relayed.get_mut(&relayed_id) else {
            return;
        };
        if relayed.role == Role::Initiator && !relayed.closed && !relayed.done {
            if relayed.started < MAX_ATTEMPTS {
                self.begin_initiator_attempt(relayed_id, at);
            } else {
                relayed.done = true;
                let attempts = relayed.started;
                self.emit(
                    relayed_id,
                    attempts,
                    at,
                    EventKind::AttemptsExhausted { attempts },
                );
            }
        }
        self.forget_if_over(relayed_id);
    }

    fn begin_initiator_attempt(&mut self, relayed_id: ConnectionId, at: Instant) {
        let Some(relayed) = self.relayed.get_mut(&relayed_id) else {
            return;
        };
        relayed.started += 1;
        relayed.attempts.insert(
            relayed.started,
            Attempt {
                began: at,
                phase: Phase::Opening,
            },
        );
        self.outputs.push_back(Output::OpenStream {
            peer_id: relayed.peer_id,
            relayed_connection: relayed_id,
        });
    }

    fn exchanging(&self, relayed_id: ConnectionId) -> Option<u8> {
        self.relayed
            .get(&relayed_id)?
            .attempt_in(&[Phase::Exchanging])
    }

    fn set_phase(&mut self, relayed_id: ConnectionId, attempt: u8, phase: Phase) {
        if let Some(a) = self
            .relayed
            .get_mut(&relayed_id)
            .and_then(|r| r.attempts.get_mut(&attempt))
        {
            a.phase = phase;
        }
    }

    fn finish(
        &mut self,
        relayed_id: ConnectionId,
        attempt: u8,
        at: Instant,
        outcome: AttemptOutcome,
    ) {
        let Some(began) = self
            .relayed
            .get_mut(&relayed_id)
            .and_then(|r| r.attempts.remove(&attempt))
            .map(|a| a.began)
        else {
            return;
        };
        let duration = at.saturating_duration_since(began);
        self.emit(
            relayed_id,
            attempt,
            at,
            EventKind::AttemptFinished { outcome, duration },
        );
    }

    /// Drops a closed relayed connection once none of its dials is still running.
    fn forget_if_over(&mut self, relayed_id: ConnectionId) {
        if self
            .relayed
            .get(&relayed_id)
            .is_some_and(|r| r.closed && r.attempts.is_empty())
        {
            self.relayed.remove(&relayed_id);
        }
    }

    fn emit(&mut self, relayed_id: ConnectionId, attempt: u8, at: Instant, kind: EventKind) {
        let Some(relayed) = self.relayed.get(&relayed_id) else {
            return;
        };
        self.outputs.push_back(Output::Event(Event {
            peer_id: relayed.peer_id,
            relayed_connection: relayed_id,
            role: relayed.role,
            attempt,
            at,
            unix_nanos: self.clock.unix_nanos(at),
            kind,
        }));
    }
}

#[cfg(test)]
mod tests;
