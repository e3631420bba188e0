//! One hole punch in flight, classified by one state machine without I/O (quinn-proto's habit,
//! `STYLE.md` 1). The host's task hands [`Classifier`] every swarm event about the punch with the
//! instant it happened and every [`punchr_dcutr::Event`] as it is (with its own instant and Unix
//! time), asks [`Classifier::poll_timeout`] when the current wait ends, sleeps until then and calls
//! [`Classifier::handle_timeout`]. The classifier reads no clock: Unix times come from those
//! instants through the DCUtR behaviour's [`Clock`], so its timestamps line up with the events'.
//!
//! The rules are the original punchr's (`punchr-original.md` §7.3): an attempt is one
//! `/libp2p/dcutr` stream the remote opens (DCUtR numbers them; a step of another attempt than the
//! running one is late and changes nothing); a FAILED attempt waits for the remote's next stream,
//! up to [`MAX_ATTEMPTS`](punchr_dcutr::MAX_ATTEMPTS); PROTOCOL_ERROR and TIMEOUT end the punch as FAILED, SUCCESS as SUCCESS;
//! a missing stream is NO_STREAM, turned into CONNECTION_REVERSED when only relay addresses were
//! served and a direct connection exists at the end ([`attempts`] holds the verdict rules). DCUtR's
//! own limits are its constants ([`MAX_ATTEMPTS`](punchr_dcutr::MAX_ATTEMPTS),
//! [`HANDSHAKE_TIMEOUT`]); the client adds only
//! its waits ([`PunchTimeouts`]). The classifier also tells which connections the latency samples
//! of the punch measure ([`LatencyRecorder`]).

pub mod attempts;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use punchr_dcutr::{
    AttemptOutcome as DcutrOutcome, Clock, DialFailure, Event as DcutrEvent, EventKind, Role,
    HANDSHAKE_TIMEOUT,
};
use punchr_types::address::is_relayed;
use punchr_types::{AttemptOutcome, LatencyKind, Outcome, UnixNanos};

use crate::latency::LatencyRecorder;
pub use attempts::{AttemptRecord, Classified};
use attempts::{Fate, RunningAttempt, Stamp, Verdict};

/// The client's waits in one hole punch (DCUtR's own exchange deadline is its
/// [`HANDSHAKE_TIMEOUT`]).
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
    pub latencies: Vec<crate::request::Latency>,
}

/// What the punch waits for; each wait ends at the classifier's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// The relayed connection to the remote.
    RelayedConnection,
    /// The remote's DCUtR stream (the first or the next attempt).
    Stream,
    /// The next event of the running attempt.
    AttemptEvent,
    /// The verdict is in; pings over the direct connection are still being collected.
    Pings,
    /// Nothing: the punch is over.
    Nothing,
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

/// One hole punch towards one remote, from the relayed dial to the verdict.
#[derive(Debug)]
pub struct Classifier {
    clock: Clock,
    remote: PeerId,
    served: Vec<Multiaddr>,
    relays: Vec<PeerId>,
    /// The relayed dial.
    dial: ConnectionId,
    timeouts: PunchTimeouts,
    wait: Wait,
    deadline: Instant,
    connect_started_at: UnixNanos,
    connect_ended_at: Option<UnixNanos>,
    /// Open connections to the remote, with the remote's address on each.
    connections: HashMap<ConnectionId, Multiaddr>,
    latencies: LatencyRecorder,
    attempts: Vec<AttemptRecord>,
    running: Option<RunningAttempt>,
    verdict: Option<Verdict>,
}

impl Classifier {
    /// A punch whose relayed dial `dial` towards `remote`, served with `served`, started at
    /// `start`; `clock` is the DCUtR behaviour's.
    pub fn new(
        start: Instant,
        clock: Clock,
        remote: PeerId,
        served: Vec<Multiaddr>,
        dial: ConnectionId,
        timeouts: PunchTimeouts,
    ) -> Self {
        Classifier {
            clock,
            remote,
            relays: served.iter().filter_map(relay_of).collect(),
            served,
            dial,
            timeouts,
            wait: Wait::RelayedConnection,
            deadline: start + timeouts.connect,
            connect_started_at: unix_nanos(clock.unix_nanos(start)),
            connect_ended_at: None,
            connections: HashMap::new(),
            latencies: LatencyRecorder::default(),
            attempts: Vec::new(),
            running: None,
            verdict: None,
        }
    }

    /// The remote being punched.
    pub fn remote(&self) -> PeerId {
        self.remote
    }

    /// When the current wait ends, if the punch still waits for something.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.wait != Wait::Nothing).then_some(self.deadline)
    }

    /// Whether the punch is over: call [`Classifier::finish`].
    pub fn is_done(&self) -> bool {
        self.wait == Wait::Nothing
    }

    fn stamp(&self, at: Instant) -> Stamp {
        Stamp {
            at,
            unix: unix_nanos(self.clock.unix_nanos(at)),
        }
    }

    fn wait_for(&mut self, wait: Wait, from: Instant) {
        let timeout = match wait {
            Wait::RelayedConnection => self.timeouts.connect,
            Wait::Stream => self.timeouts.stream,
            Wait::AttemptEvent => self.timeouts.attempt,
            Wait::Pings => self.timeouts.pings,
            Wait::Nothing => Duration::ZERO,
        };
        self.wait = wait;
        self.deadline = from + timeout;
    }

    /// Records the verdict (the first one stands) and ends the punch, after the pings over a
    /// direct connection if it should collect them.
    fn conclude(&mut self, outcome: Outcome, error: Option<String>, at: Instant) {
        self.verdict.get_or_insert(Verdict { outcome, error });
        if self.has_direct_connection() && !self.timeouts.pings.is_zero() {
            self.wait_for(Wait::Pings, at);
        } else {
            self.wait_for(Wait::Nothing, at);
        }
    }

    fn has_direct_connection(&self) -> bool {
        attempts::any_direct(self.connections.values())
    }

    /// A connection to `peer` came up at `at`, to its `address`.
    pub fn connection_established(
        &mut self,
        at: Instant,
        peer: PeerId,
        connection: ConnectionId,
        address: &Multiaddr,
    ) {
        if peer != self.remote {
            if self.relays.contains(&peer) {
                self.latencies
                    .track(connection, peer, address.clone(), LatencyKind::ToRelay);
            }
            return;
        }
        let relayed = is_relayed(address);
        self.connections.insert(connection, address.clone());
        let kind = if relayed {
            LatencyKind::ToRemoteThroughRelay
        } else {
            LatencyKind::ToRemoteAfterHolePunch
        };
        self.latencies
            .track(connection, peer, address.clone(), kind);
        if relayed && self.wait == Wait::RelayedConnection {
            self.connect_ended_at = Some(self.stamp(at).unix);
            self.wait_for(Wait::Stream, at);
        }
    }

    /// A connection to `peer` closed.
    pub fn connection_closed(&mut self, peer: PeerId, connection: ConnectionId) {
        if peer == self.remote {
            self.connections.remove(&connection);
        }
    }

    /// An outgoing dial failed at `at`; the relayed dial's failure ends the punch.
    pub fn dial_failed(&mut self, at: Instant, connection: ConnectionId, failure: &DialFailure) {
        if connection == self.dial && self.wait == Wait::RelayedConnection {
            self.connection_failed(at, failure.error.clone());
        }
    }

    fn connection_failed(&mut self, at: Instant, error: String) {
        self.connect_ended_at = Some(self.stamp(at).unix);
        self.conclude(Outcome::NoConnection, Some(error), at);
    }

    /// A ping result on some connection.
    pub fn ping(&mut self, connection: ConnectionId, result: Result<Duration, String>) {
        self.latencies.record(connection, result);
    }

    /// A DCUtR step. Only the remote's, on our side of the protocol (we dialed through the
    /// relay: the responder), while the relayed connection is up and no verdict is in, count;
    /// and only steps of the attempt whose stream opened last.
    pub fn dcutr(&mut self, event: &DcutrEvent) {
        if event.peer_id != self.remote
            || event.role != Role::Responder
            || !matches!(self.wait, Wait::Stream | Wait::AttemptEvent)
        {
            return;
        }
        let stamp = Stamp {
            at: event.at,
            unix: unix_nanos(event.unix_nanos),
        };
        match &event.kind {
            EventKind::StreamOpened => self.stream_opened(event.attempt, stamp),
            EventKind::UnsolicitedDirectConnection { inbound: true, .. } if event.attempt == 0 => {
                self.reversed_before_any_stream(stamp.at)
            }
            kind => self.attempt_step(event.attempt, kind, stamp),
        }
    }

    /// The remote opened the stream of attempt `number`. A running attempt is over: the remote
    /// gave up on it (DCUtR says so with `Superseded` for an exchange, or the remote moved on
    /// while our dial still ran).
    fn stream_opened(&mut self, number: u8, opened: Stamp) {
        if self.running.is_some() {
            self.end_attempt(
                AttemptOutcome::Failed,
                opened,
                Some("superseded by a new stream".into()),
            );
            if self.verdict.is_some() {
                return;
            }
        }
        self.running = Some(RunningAttempt::new(number, opened));
        self.wait_for(Wait::AttemptEvent, opened.at);
    }

    /// A direct connection that the remote dialed before opening any DCUtR stream: a connection
    /// reversal, final at once (a remote that reached us directly has no reason to hole punch;
    /// go-libp2p's initiator does not). [`Classifier::finish`] names it CONNECTION_REVERSED if
    /// the connection is still open then.
    fn reversed_before_any_stream(&mut self, at: Instant) {
        if self.running.is_some() || !self.attempts.is_empty() {
            return;
        }
        self.conclude(
            Outcome::NoStream,
            Some("the remote connected directly before opening a /libp2p/dcutr stream".into()),
            at,
        );
    }

    /// A step of attempt `number`; late steps of earlier attempts are dropped (a dial may
    /// outlive its stream and end after the remote started the next attempt: the end-to-end
    /// flake of a SUCCESS attempt without `started_at`).
    fn attempt_step(&mut self, number: u8, kind: &EventKind, stamp: Stamp) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        if running.number != number {
            tracing::debug!(target: punchr_types::log_target::CLIENT, event = "earlier_attempt_step_ignored", attempt = number, current = running.number, "ignored a step of an earlier attempt");
            return;
        }
        match kind {
            EventKind::ConnectReceived { addrs, .. } => running.connect_received(addrs),
            EventKind::ConnectSent { .. } => running.connect_sent = Some(stamp.at),
            EventKind::SyncReceived => {
                running.sync_received(stamp);
                self.wait_for(Wait::AttemptEvent, stamp.at);
            }
            EventKind::DialStarted { handshake_role, .. } => {
                running.handshake_role = Some(*handshake_role);
            }
            EventKind::DialFailed { failure, .. } => {
                running.dial_failure = Some(failure.clone());
                self.wait_for(Wait::AttemptEvent, stamp.at);
            }
            EventKind::AttemptFinished { outcome, .. } => self.attempt_finished(outcome, stamp),
            // A direct connection we did not dial is in `connections`; DCUtR ends the attempt
            // (`RemoteDialSucceeded`) if our dial was running.
            _ => {}
        }
    }

    fn attempt_finished(&mut self, outcome: &DcutrOutcome, ended: Stamp) {
        let (outcome, error) = match outcome {
            DcutrOutcome::Succeeded { .. } | DcutrOutcome::RemoteDialSucceeded { .. } => {
                (AttemptOutcome::Success, None)
            }
            // Our dial failed but the remote's reached us: the punch worked (go-libp2p's
            // responder also judges by the direct connections that exist when the attempt ends).
            DcutrOutcome::DialFailed if self.has_direct_connection() => {
                (AttemptOutcome::Success, None)
            }
            DcutrOutcome::DialFailed => {
                let error = self
                    .running
                    .as_ref()
                    .and_then(|r| r.dial_failure.as_ref())
                    .map_or_else(|| "hole punch dial failed".into(), |f| f.error.clone());
                (AttemptOutcome::Failed, Some(error))
            }
            DcutrOutcome::Timeout => (
                AttemptOutcome::Timeout,
                Some(no_event_after(HANDSHAKE_TIMEOUT)),
            ),
            // The next stream's opening follows at once and ends the attempt.
            DcutrOutcome::Superseded => return,
            DcutrOutcome::Unsupported => (
                AttemptOutcome::ProtocolError,
                Some("remote does not speak /libp2p/dcutr".into()),
            ),
            DcutrOutcome::ProtocolError { error } => {
                (AttemptOutcome::ProtocolError, Some(error.clone()))
            }
            DcutrOutcome::ConnectionClosed => (
                AttemptOutcome::ProtocolError,
                Some("relayed connection closed during the exchange".into()),
            ),
        };
        self.end_attempt(outcome, ended, error);
    }

    /// Closes the running attempt as `outcome` and does what that means for the punch.
    fn end_attempt(&mut self, outcome: AttemptOutcome, ended: Stamp, error: Option<String>) {
        let Some(running) = self.running.take() else {
            return;
        };
        self.attempts
            .push(running.end(outcome, ended, error.clone()));
        match attempts::fate(outcome, error, self.attempts.len()) {
            Fate::Verdict(verdict) => self.conclude(verdict.outcome, verdict.error, ended.at),
            Fate::NextStream => self.wait_for(Wait::Stream, ended.at),
        }
    }

    /// The current wait's deadline may have passed at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.deadline {
            return;
        }
        match self.wait {
            Wait::RelayedConnection => self.connection_failed(
                now,
                format!("no relayed connection within {:?}", self.timeouts.connect),
            ),
            Wait::Stream => self.stream_timed_out(now, self.timeouts.stream),
            Wait::AttemptEvent if self.running.is_some() => self.end_attempt(
                AttemptOutcome::Timeout,
                self.stamp(now),
                Some(no_event_after(self.timeouts.attempt)),
            ),
            Wait::AttemptEvent => self.stream_timed_out(now, self.timeouts.attempt),
            Wait::Pings => self.wait_for(Wait::Nothing, now),
            Wait::Nothing => {}
        }
    }

    fn stream_timed_out(&mut self, now: Instant, timeout: Duration) {
        self.conclude(
            Outcome::NoStream,
            Some(format!(
                "/libp2p/dcutr stream was not opened after {}s",
                timeout.as_secs_f32()
            )),
            now,
        );
    }

    /// The user stopped the client at `at`: the punch ends as CANCELLED unless a verdict is in.
    pub fn cancel(&mut self, at: Instant) {
        if self.wait == Wait::Pings {
            return;
        }
        let stamp = self.stamp(at);
        if self.running.is_some() {
            self.end_attempt(AttemptOutcome::Cancelled, stamp, Some("cancelled".into()));
        } else {
            self.connect_ended_at.get_or_insert(stamp.unix);
            self.verdict.get_or_insert(Verdict {
                outcome: Outcome::Cancelled,
                error: Some("cancelled".into()),
            });
        }
        self.wait_for(Wait::Nothing, at);
    }

    /// The verdict at `at`, and the measurements; `describe` gives a peer's agent version and
    /// protocols.
    pub fn finish(
        mut self,
        at: Instant,
        describe: impl Fn(&PeerId) -> (String, Vec<String>),
    ) -> PunchOutput {
        let ended = self.stamp(at);
        // The punch ended while an attempt ran (only when stopped from outside; keep it visible).
        self.end_attempt(AttemptOutcome::Unknown, ended, None);
        let open_addresses: Vec<Multiaddr> = self.connections.into_values().collect();
        let classified = attempts::classify(
            &self.served,
            self.verdict,
            self.attempts,
            self.connect_started_at,
            self.connect_ended_at.unwrap_or(ended.unix),
            ended.unix,
            open_addresses,
        );
        PunchOutput {
            classified,
            latencies: self.latencies.finish(describe),
        }
    }
}

/// The error of an attempt that saw no event for `timeout`.
fn no_event_after(timeout: Duration) -> String {
    format!("no hole punch event after {}s", timeout.as_secs_f32())
}

fn unix_nanos(nanos: u64) -> UnixNanos {
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
