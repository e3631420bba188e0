//! One hole punch in flight on a host: translates swarm, DCUtR and ping events into the
//! classification core ([`crate::outcome::HolePunch`]) and keeps the deadline of the current
//! wait, so that no step can hang.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use punchr_dcutr::{AttemptOutcome as DcutrOutcome, Event as DcutrEvent, EventKind, Role};
use punchr_types::address::is_relayed;
use punchr_types::LatencyKind;
use tokio::time::Instant;

use crate::latency::LatencyRecorder;
use crate::outcome::{AttemptEvent, Classified, HolePunch, Next, UnixNanos};

/// Timeouts of one hole punch.
#[derive(Debug, Clone, Copy)]
pub struct PunchTimeouts {
    /// The relayed connection must be up within this.
    pub connect: Duration,
    /// Each DCUtR stream must open within this.
    pub stream: Duration,
    /// Each event of a running attempt must come within this.
    pub attempt: Duration,
    /// After the verdict, how long to keep collecting pings over the direct connection.
    pub pings: Duration,
}

/// What a finished punch hands back.
#[derive(Debug)]
pub struct PunchOutput {
    /// The verdict and its attempts.
    pub classified: Classified,
    /// The latency measurements.
    pub latencies: Vec<crate::report::Latency>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Punching(Next),
    CollectingPings,
}

/// The state of the punch in flight.
#[derive(Debug)]
pub struct ActivePunch {
    remote: PeerId,
    dial: ConnectionId,
    punch: HolePunch,
    phase: Phase,
    deadline: Instant,
    timeouts: PunchTimeouts,
    connections: HashMap<ConnectionId, Multiaddr>,
    latencies: LatencyRecorder,
    connect_sent_at: Option<u64>,
    remote_offer: Vec<Multiaddr>,
    last_dial_error: Option<String>,
    /// The number of the remote's attempt whose stream opened last (0 = none yet).
    current_attempt: u8,
}

/// Whether `event` is a step of an attempt other than the running one `current`. A new stream
/// starts a new attempt, and events that are not about one attempt are never stale.
fn is_stale(event: &DcutrEvent, current: u8) -> bool {
    match event.kind {
        EventKind::StreamOpened
        | EventKind::UnsolicitedDirectConnection { .. }
        | EventKind::AttemptsExhausted { .. } => false,
        _ => event.attempt != current,
    }
}

/// The relay's peer ID in a circuit address (`…/p2p/<relay>/p2p-circuit…`).
pub fn relay_of(address: &Multiaddr) -> Option<PeerId> {
    let mut relay = None;
    for protocol in address.iter() {
        match protocol {
            Protocol::P2p(peer) => relay = Some(peer),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

impl ActivePunch {
    /// A punch whose relayed dial `dial` has just been started at `now`.
    pub fn new(
        remote: PeerId,
        served: Vec<Multiaddr>,
        dial: ConnectionId,
        now: UnixNanos,
        timeouts: PunchTimeouts,
    ) -> Self {
        ActivePunch {
            remote,
            dial,
            punch: HolePunch::new(served, now),
            phase: Phase::Connecting,
            deadline: Instant::now() + timeouts.connect,
            timeouts,
            connections: HashMap::new(),
            latencies: LatencyRecorder::default(),
            connect_sent_at: None,
            remote_offer: Vec::new(),
            last_dial_error: None,
            current_attempt: 0,
        }
    }

    /// The remote being punched.
    pub fn remote(&self) -> PeerId {
        self.remote
    }

    /// When the current wait ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the punch can be finished now.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Punching(Next::Done)
            || self.phase == Phase::CollectingPings && Instant::now() >= self.deadline
    }

    fn advance(&mut self, next: Next) {
        self.phase = Phase::Punching(next);
        self.deadline = Instant::now()
            + match next {
                Next::AwaitStream => self.timeouts.stream,
                Next::AwaitAttemptEvent => self.timeouts.attempt,
                Next::Done => Duration::ZERO,
            };
        if next == Next::Done && self.has_direct_connection() && !self.timeouts.pings.is_zero() {
            self.phase = Phase::CollectingPings;
            self.deadline = Instant::now() + self.timeouts.pings;
        }
    }

    fn has_direct_connection(&self) -> bool {
        self.connections.values().any(|a| !is_relayed(a))
    }

    /// A connection to some peer came up.
    pub fn connection_established(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
        now: UnixNanos,
    ) {
        let address = endpoint.get_remote_address().clone();
        if peer != self.remote {
            if self.is_relay(&peer) {
                self.latencies
                    .track(connection, peer, address, LatencyKind::ToRelay);
            }
            return;
        }
        let relayed = is_relayed(&address);
        self.connections.insert(connection, address.clone());
        let kind = if relayed {
            LatencyKind::ToRemoteThroughRelay
        } else {
            LatencyKind::ToRemoteAfterHolePunch
        };
        self.latencies.track(connection, peer, address, kind);
        if relayed && self.phase == Phase::Connecting {
            let next = self.punch.connected(now);
            self.advance(next);
        }
    }

    fn is_relay(&self, peer: &PeerId) -> bool {
        self.punch_served()
            .iter()
            .filter_map(relay_of)
            .any(|relay| relay == *peer)
    }

    fn punch_served(&self) -> Vec<Multiaddr> {
        self.punch.served_addresses().to_vec()
    }

    /// A connection to the remote closed.
    pub fn connection_closed(&mut self, peer: PeerId, connection: ConnectionId) {
        if peer == self.remote {
            self.connections.remove(&connection);
        }
    }

    /// An outgoing dial failed.
    pub fn dial_failed(&mut self, connection: ConnectionId, error: String, now: UnixNanos) {
        if connection == self.dial && self.phase == Phase::Connecting {
            let next = self.punch.connect_failed(now, error);
            self.advance(next);
        }
    }

    /// A ping result on some connection.
    pub fn ping(&mut self, connection: ConnectionId, result: Result<Duration, String>) {
        self.latencies.record(connection, result);
    }

    /// A DCUtR step on the relayed connection to the remote.
    pub fn dcutr(&mut self, event: &DcutrEvent) {
        if event.peer_id != self.remote || event.role != Role::Responder {
            return;
        }
        let Phase::Punching(_) = self.phase else {
            return;
        };
        if is_stale(event, self.current_attempt) {
            // A dial of an earlier attempt may outlive its stream and end after the remote
            // started the next one; its end must not close the running attempt. A direct
            // connection it made is counted through `connections` when the running one ends.
            tracing::debug!(target: "punchr::client", attempt = event.attempt, current = self.current_attempt, "ignored a step of an earlier attempt");
            return;
        }
        let at = i64::try_from(event.unix_nanos).unwrap_or(i64::MAX);
        let next = match &event.kind {
            EventKind::StreamOpened => {
                self.current_attempt = event.attempt;
                self.connect_sent_at = None;
                self.remote_offer.clear();
                self.last_dial_error = None;
                Some(self.punch.stream_opened(at))
            }
            EventKind::ConnectReceived { addrs, .. } => {
                self.remote_offer = addrs.iter().filter(|a| !is_relayed(a)).cloned().collect();
                None
            }
            EventKind::ConnectSent { .. } => {
                self.connect_sent_at = Some(event.unix_nanos);
                None
            }
            EventKind::SyncReceived => {
                // The responder's RTT: our CONNECT out, the remote's SYNC back (as go-libp2p measures).
                let rtt = self
                    .connect_sent_at
                    .map(|sent| Duration::from_nanos(event.unix_nanos.saturating_sub(sent)));
                Some(self.punch.attempt_event(AttemptEvent::Started {
                    at,
                    rtt,
                    addresses: self.remote_offer.clone(),
                }))
            }
            EventKind::DialStarted { handshake_role, .. } => {
                self.punch.dial_role(*handshake_role);
                None
            }
            // Our dial may outlive its attempt (the remote's dial won): nothing left to judge.
            EventKind::DialFailed { .. } if !self.punch.attempt_running() => None,
            EventKind::DialFailed { failure, .. } => {
                self.last_dial_error = Some(failure.error.clone());
                Some(self.punch.attempt_event(AttemptEvent::DirectDialFailed {
                    error: failure.error.clone(),
                }))
            }
            EventKind::UnsolicitedDirectConnection { inbound: true, .. } if event.attempt == 0 => {
                Some(self.punch.reversed_before_any_stream())
            }
            EventKind::AttemptFinished { outcome, .. } => Some(self.attempt_finished(outcome, at)),
            // A direct connection we did not dial during an attempt is in `connections`; DCUtR
            // ends the attempt (`RemoteDialSucceeded`) if our dial was running.
            _ => None,
        };
        if let Some(next) = next {
            self.advance(next);
        }
    }

    fn attempt_finished(&mut self, outcome: &DcutrOutcome, at: UnixNanos) -> Next {
        let ended = |success, error| AttemptEvent::Ended { at, success, error };
        match outcome {
            DcutrOutcome::Succeeded { .. } | DcutrOutcome::RemoteDialSucceeded { .. } => {
                self.punch.attempt_event(ended(true, None))
            }
            // Our dial failed but the remote's reached us: the punch worked (go-libp2p's responder
            // also judges by the direct connections that exist when the attempt ends).
            DcutrOutcome::DialFailed if self.has_direct_connection() => {
                self.punch.attempt_event(ended(true, None))
            }
            DcutrOutcome::DialFailed => {
                let error = self
                    .last_dial_error
                    .take()
                    .or_else(|| Some("hole punch dial failed".into()));
                self.punch.attempt_event(ended(false, error))
            }
            DcutrOutcome::Timeout => self.punch.attempt_timed_out(at, Duration::from_secs(10)),
            DcutrOutcome::Superseded => Next::AwaitAttemptEvent,
            DcutrOutcome::Unsupported => self.punch.attempt_event(AttemptEvent::ProtocolError {
                at,
                error: "remote does not speak /libp2p/dcutr".into(),
            }),
            DcutrOutcome::ProtocolError { error } => {
                self.punch.attempt_event(AttemptEvent::ProtocolError {
                    at,
                    error: error.clone(),
                })
            }
            DcutrOutcome::ConnectionClosed => {
                self.punch.attempt_event(AttemptEvent::ProtocolError {
                    at,
                    error: "relayed connection closed during the exchange".into(),
                })
            }
        }
    }

    /// The current wait's deadline passed.
    pub fn deadline_passed(&mut self, now: UnixNanos) {
        let next = match self.phase {
            Phase::Connecting => self.punch.connect_failed(
                now,
                format!("no relayed connection within {:?}", self.timeouts.connect),
            ),
            Phase::Punching(Next::AwaitStream) => {
                self.punch.stream_timed_out(now, self.timeouts.stream)
            }
            Phase::Punching(Next::AwaitAttemptEvent) => {
                self.punch.attempt_timed_out(now, self.timeouts.attempt)
            }
            Phase::Punching(Next::Done) | Phase::CollectingPings => return,
        };
        self.advance(next);
    }

    /// The user stopped the client.
    pub fn cancel(&mut self, now: UnixNanos) {
        if matches!(self.phase, Phase::Connecting | Phase::Punching(_)) {
            self.punch.cancelled(now);
            self.phase = Phase::Punching(Next::Done);
        }
    }

    /// The verdict and measurements; `describe` gives a peer's agent version and protocols.
    pub fn finish(
        self,
        now: UnixNanos,
        describe: impl Fn(&PeerId) -> (String, Vec<String>),
    ) -> PunchOutput {
        let open: Vec<Multiaddr> = self.connections.values().cloned().collect();
        PunchOutput {
            classified: self.punch.finish(now, open),
            latencies: self.latencies.finish(describe),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use punchr_types::AttemptOutcome;

    #[test]
    fn relays_are_found_in_circuit_addresses() {
        let relay = PeerId::random();
        let remote = PeerId::random();
        let address: Multiaddr =
            format!("/ip4/198.18.0.1/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{remote}")
                .parse()
                .unwrap();
        assert_eq!(relay_of(&address), Some(relay));
        let direct: Multiaddr = format!("/ip4/198.18.0.1/tcp/4001/p2p/{remote}")
            .parse()
            .unwrap();
        assert_eq!(relay_of(&direct), None);
    }

    struct Script {
        punch: ActivePunch,
        remote: PeerId,
        relayed: ConnectionId,
        clock: u64,
    }

    impl Script {
        /// A punch whose relayed connection to the remote is up, waiting for the remote's stream.
        fn relayed_connection_up() -> Script {
            let (relay, remote) = (PeerId::random(), PeerId::random());
            let circuit: Multiaddr =
                format!("/ip4/198.18.0.1/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{remote}")
                    .parse()
                    .unwrap();
            let relayed = ConnectionId::new_unchecked(1);
            let timeouts = PunchTimeouts {
                connect: Duration::from_secs(5),
                stream: Duration::from_secs(5),
                attempt: Duration::from_secs(5),
                pings: Duration::ZERO,
            };
            let clock = 1_000_000_000;
            let mut punch = ActivePunch::new(
                remote,
                vec![circuit.clone()],
                relayed,
                clock as i64,
                timeouts,
            );
            let endpoint = ConnectedPoint::Dialer {
                address: circuit,
                role_override: libp2p::core::Endpoint::Dialer,
                port_use: libp2p::core::transport::PortUse::Reuse,
            };
            punch.connection_established(remote, relayed, &endpoint, clock as i64);
            Script {
                punch,
                remote,
                relayed,
                clock,
            }
        }

        fn step(&mut self, attempt: u8, kind: EventKind) {
            self.clock += 10_000_000;
            self.punch.dcutr(&DcutrEvent {
                peer_id: self.remote,
                relayed_connection: self.relayed,
                role: Role::Responder,
                attempt,
                at: Instant::now().into_std(),
                unix_nanos: self.clock,
                kind,
            });
        }

        /// The remote's stream, CONNECT and SYNC of `attempt`: our dial begins.
        fn attempt_starts(&mut self, attempt: u8) {
            let offer: Multiaddr = "/ip4/198.18.0.9/tcp/4001".parse().unwrap();
            self.step(attempt, EventKind::StreamOpened);
            self.step(
                attempt,
                EventKind::ConnectReceived {
                    addrs: vec![offer],
                    unparsable: 0,
                },
            );
            self.step(attempt, EventKind::ConnectSent { addrs: vec![] });
            self.step(attempt, EventKind::SyncReceived);
        }

        fn attempt_succeeds(&mut self, attempt: u8, direct: u64) {
            self.step(
                attempt,
                EventKind::AttemptFinished {
                    outcome: DcutrOutcome::Succeeded {
                        connection_id: ConnectionId::new_unchecked(direct as usize),
                    },
                    duration: Duration::from_millis(30),
                },
            );
        }
    }

    #[test]
    fn a_late_end_of_an_earlier_attempt_does_not_close_the_running_one() {
        let mut script = Script::relayed_connection_up();
        script.attempt_starts(1);
        // The remote gives up on attempt 1 and opens attempt 2; then attempt 1's dial ends.
        script.step(2, EventKind::StreamOpened);
        script.attempt_succeeds(1, 7);
        assert!(!script.punch.is_done(), "attempt 2 still runs");

        let offer: Multiaddr = "/ip4/198.18.0.9/tcp/4001".parse().unwrap();
        script.step(
            2,
            EventKind::ConnectReceived {
                addrs: vec![offer],
                unparsable: 0,
            },
        );
        script.step(2, EventKind::ConnectSent { addrs: vec![] });
        script.step(2, EventKind::SyncReceived);
        script.attempt_succeeds(2, 8);
        assert!(script.punch.is_done());
        let output = script
            .punch
            .finish(i64::MAX / 2, |_| (String::new(), vec![]));
        let attempts = &output.classified.attempts;
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        let last = &attempts[1];
        assert!(last.started_at.is_some(), "{last:?}");
        assert_eq!(last.outcome, AttemptOutcome::Success, "{last:?}");
        assert_eq!(last.addresses.len(), 1, "{last:?}");
    }

    #[test]
    fn steps_of_the_running_attempt_are_applied() {
        let mut script = Script::relayed_connection_up();
        script.attempt_starts(1);
        script.attempt_succeeds(1, 7);
        assert!(script.punch.is_done());
        let output = script
            .punch
            .finish(i64::MAX / 2, |_| (String::new(), vec![]));
        assert_eq!(output.classified.attempts.len(), 1);
        assert_eq!(
            output.classified.attempts[0].outcome,
            AttemptOutcome::Success
        );
    }
}
