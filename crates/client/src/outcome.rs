//! How one hole punch is classified, as a state machine without I/O (quinn-proto style): the
//! client loop feeds it what it observes, with timestamps, and reads the verdict.
//!
//! The rules are the original punchr's (`punchr-original.md` §7.3): an attempt is one
//! `/libp2p/dcutr` stream the remote opens; a FAILED attempt waits for the remote's next
//! stream, up to 3; PROTOCOL_ERROR and TIMEOUT end the punch as FAILED; SUCCESS and DIRECT_DIAL
//! as SUCCESS; a missing stream is NO_STREAM, turned into CONNECTION_REVERSED when only relay
//! addresses were served and a direct connection exists anyway.

use std::time::Duration;

use multiaddr::Multiaddr;
use punchr_types::address::is_relayed;
pub use punchr_types::UnixNanos;
use punchr_types::{AttemptOutcome, Outcome};

/// Attempts the remote may make (the DCUtR initiator retries twice).
pub const MAX_ATTEMPTS: usize = 3;

/// One attempt as it will be reported.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// When the remote's DCUtR stream was seen.
    pub opened_at: UnixNanos,
    /// When the hole punch started (SYNC received, dial begins).
    pub started_at: Option<UnixNanos>,
    /// When the attempt ended.
    pub ended_at: UnixNanos,
    /// RTT of the CONNECT/SYNC exchange.
    pub start_rtt: Option<Duration>,
    /// From start (or stream open) to end.
    pub elapsed: Duration,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Why it failed.
    pub error: Option<String>,
    /// Why a direct dial failed.
    pub direct_dial_error: Option<String>,
    /// Remote addresses used for the hole punch.
    pub addresses: Vec<Multiaddr>,
    /// Our side of the direct connection's handshakes in this attempt's dial, once it started.
    pub handshake_role: Option<punchr_dcutr::HandshakeRole>,
}

/// What the client observes during an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEvent {
    /// CONNECT/SYNC done; the hole punch dial starts.
    Started {
        /// When.
        at: UnixNanos,
        /// RTT of the exchange, if measured.
        rtt: Option<Duration>,
        /// The remote's addresses from its CONNECT.
        addresses: Vec<Multiaddr>,
    },
    /// A dial towards the remote failed; the attempt may still succeed.
    DirectDialFailed {
        /// The dial's error.
        error: String,
    },
    /// A direct connection came out of a plain direct dial (no hole punch needed).
    DirectDialSucceeded {
        /// When.
        at: UnixNanos,
    },
    /// The hole punch ended.
    Ended {
        /// When.
        at: UnixNanos,
        /// Whether a direct connection resulted.
        success: bool,
        /// Why not.
        error: Option<String>,
    },
    /// The remote broke the protocol or the stream failed.
    ProtocolError {
        /// When.
        at: UnixNanos,
        /// What went wrong.
        error: String,
    },
}

/// What the client loop should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait for the remote to open its DCUtR stream (the first or the next attempt).
    AwaitStream,
    /// Wait for the next event of the running attempt.
    AwaitAttemptEvent,
    /// The punch is over; call [`HolePunch::finish`].
    Done,
}

/// The outcome-relevant state of one hole punch.
#[derive(Debug, Clone)]
pub struct HolePunch {
    served_addresses: Vec<Multiaddr>,
    connect_started_at: UnixNanos,
    connect_ended_at: Option<UnixNanos>,
    attempts: Vec<AttemptRecord>,
    current: Option<AttemptRecord>,
    outcome: Option<(Outcome, Option<String>)>,
}

/// The classified punch, ready to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// Start of the relayed connection.
    pub connect_started_at: UnixNanos,
    /// End of the relayed connection attempt.
    pub connect_ended_at: UnixNanos,
    /// The attempts in order.
    pub attempts: Vec<AttemptRecord>,
    /// The verdict.
    pub outcome: Outcome,
    /// Why it failed.
    pub error: Option<String>,
    /// When classification ended.
    pub ended_at: UnixNanos,
    /// Remote addresses of connections open at the end.
    pub open_addresses: Vec<Multiaddr>,
    /// Whether one of them is direct.
    pub has_direct_conns: bool,
}

fn seconds_between(from: UnixNanos, to: UnixNanos) -> Duration {
    Duration::from_nanos(u64::try_from(to.saturating_sub(from)).unwrap_or(0))
}

impl HolePunch {
    /// A punch towards a remote the server served with `served_addresses`, whose relayed
    /// connection attempt starts at `connect_started_at`.
    pub fn new(served_addresses: Vec<Multiaddr>, connect_started_at: UnixNanos) -> HolePunch {
        HolePunch {
            served_addresses,
            connect_started_at,
            connect_ended_at: None,
            attempts: Vec::new(),
            current: None,
            outcome: None,
        }
    }

    fn conclude(&mut self, outcome: Outcome, error: Option<String>) -> Next {
        self.outcome.get_or_insert((outcome, error));
        Next::Done
    }

    /// The addresses the server served.
    pub fn served_addresses(&self) -> &[Multiaddr] {
        &self.served_addresses
    }

    /// The relayed connection failed.
    pub fn connect_failed(&mut self, at: UnixNanos, error: String) -> Next {
        self.connect_ended_at = Some(at);
        self.conclude(Outcome::NoConnection, Some(error))
    }

    /// The relayed connection is up.
    pub fn connected(&mut self, at: UnixNanos) -> Next {
        self.connect_ended_at = Some(at);
        Next::AwaitStream
    }

    /// The remote opened a DCUtR stream: an attempt begins.
    pub fn stream_opened(&mut self, at: UnixNanos) -> Next {
        if self.outcome.is_some() {
            return Next::Done;
        }
        if let Some(previous) = self.current.take() {
            // A new stream while an attempt runs: the remote gave up on it.
            self.finish_attempt(
                previous,
                AttemptOutcome::Failed,
                at,
                Some("superseded by a new stream".into()),
            );
        }
        self.current = Some(AttemptRecord {
            opened_at: at,
            started_at: None,
            ended_at: at,
            start_rtt: None,
            elapsed: Duration::ZERO,
            outcome: AttemptOutcome::Unknown,
            error: None,
            direct_dial_error: None,
            addresses: Vec::new(),
            handshake_role: None,
        });
        Next::AwaitAttemptEvent
    }

    /// The running attempt's dial started with our handshake `role`.
    pub fn dial_role(&mut self, role: punchr_dcutr::HandshakeRole) {
        if let Some(attempt) = &mut self.current {
            attempt.handshake_role = Some(role);
        }
    }

    /// Whether an attempt is running (its stream opened, its end not yet seen).
    pub fn attempt_running(&self) -> bool {
        self.current.is_some()
    }

    /// A direct connection appeared that the remote dialed before opening any DCUtR stream:
    /// a connection reversal, final at once (a remote that reached us directly has no reason to
    /// hole punch; go-libp2p's initiator does not).
    pub fn reversed_before_any_stream(&mut self) -> Next {
        if self.outcome.is_some() || self.current.is_some() || !self.attempts.is_empty() {
            return Next::AwaitAttemptEvent;
        }
        self.conclude(
            Outcome::NoStream,
            Some("the remote connected directly before opening a /libp2p/dcutr stream".into()),
        )
    }

    /// An event of the running attempt.
    pub fn attempt_event(&mut self, event: AttemptEvent) -> Next {
        let Some(mut attempt) = self.current.take() else {
            return if self.outcome.is_some() {
                Next::Done
            } else {
                Next::AwaitStream
            };
        };
        match event {
            AttemptEvent::Started { at, rtt, addresses } => {
                attempt.started_at = Some(at);
                attempt.start_rtt = rtt;
                attempt.addresses = addresses;
                self.current = Some(attempt);
                Next::AwaitAttemptEvent
            }
            AttemptEvent::DirectDialFailed { error } => {
                attempt.direct_dial_error = Some(error);
                self.current = Some(attempt);
                Next::AwaitAttemptEvent
            }
            AttemptEvent::DirectDialSucceeded { at } => {
                self.finish_attempt(attempt, AttemptOutcome::DirectDial, at, None)
            }
            AttemptEvent::Ended {
                at, success: true, ..
            } => self.finish_attempt(attempt, AttemptOutcome::Success, at, None),
            AttemptEvent::Ended {
                at,
                success: false,
                error,
            } => self.finish_attempt(attempt, AttemptOutcome::Failed, at, error),
            AttemptEvent::ProtocolError { at, error } => {
                self.finish_attempt(attempt, AttemptOutcome::ProtocolError, at, Some(error))
            }
        }
    }

    /// No stream within `timeout` of waiting.
    pub fn stream_timed_out(&mut self, at: UnixNanos, timeout: Duration) -> Next {
        let _ = at;
        self.conclude(
            Outcome::NoStream,
            Some(format!(
                "/libp2p/dcutr stream was not opened after {}s",
                timeout.as_secs_f32()
            )),
        )
    }

    /// No attempt event within `timeout`.
    pub fn attempt_timed_out(&mut self, at: UnixNanos, timeout: Duration) -> Next {
        match self.current.take() {
            Some(attempt) => self.finish_attempt(
                attempt,
                AttemptOutcome::Timeout,
                at,
                Some(format!(
                    "no hole punch event after {}s",
                    timeout.as_secs_f32()
                )),
            ),
            None => self.stream_timed_out(at, timeout),
        }
    }

    /// The user stopped the client.
    pub fn cancelled(&mut self, at: UnixNanos) -> Next {
        if let Some(attempt) = self.current.take() {
            return self.finish_attempt(
                attempt,
                AttemptOutcome::Cancelled,
                at,
                Some("cancelled".into()),
            );
        }
        if self.connect_ended_at.is_none() {
            self.connect_ended_at = Some(at);
        }
        self.conclude(Outcome::Cancelled, Some("cancelled".into()))
    }

    /// Closes an attempt and maps it to the punch's fate.
    fn finish_attempt(
        &mut self,
        mut attempt: AttemptRecord,
        outcome: AttemptOutcome,
        at: UnixNanos,
        error: Option<String>,
    ) -> Next {
        attempt.ended_at = at;
        attempt.elapsed = seconds_between(attempt.started_at.unwrap_or(attempt.opened_at), at);
        attempt.outcome = outcome;
        attempt.error = error.clone();
        self.attempts.push(attempt);
        match outcome {
            AttemptOutcome::Success | AttemptOutcome::DirectDial => {
                self.conclude(Outcome::Success, None)
            }
            AttemptOutcome::ProtocolError | AttemptOutcome::Timeout => {
                self.conclude(Outcome::Failed, error)
            }
            AttemptOutcome::Cancelled => self.conclude(Outcome::Cancelled, error),
            AttemptOutcome::Unknown => self.conclude(
                Outcome::Unknown,
                Some("unknown hole punch attempt outcome".into()),
            ),
            AttemptOutcome::Failed if self.attempts.len() >= MAX_ATTEMPTS => self.conclude(
                Outcome::Failed,
                Some(format!("none of the {MAX_ATTEMPTS} attempts succeeded")),
            ),
            AttemptOutcome::Failed => Next::AwaitStream,
        }
    }

    /// The verdict, given the connections to the remote that are open at the end.
    pub fn finish(mut self, at: UnixNanos, open_addresses: Vec<Multiaddr>) -> Classified {
        if let Some(attempt) = self.current.take() {
            // The loop ended while an attempt ran (should not happen; keep it visible).
            self.finish_attempt(attempt, AttemptOutcome::Unknown, at, None);
        }
        let has_direct_conns = open_addresses.iter().any(|a| !is_relayed(a));
        let (mut outcome, mut error) = self.outcome.take().unwrap_or((
            Outcome::Unknown,
            Some("hole punch ended without a verdict".into()),
        ));
        let served_only_relays =
            !self.served_addresses.is_empty() && self.served_addresses.iter().all(is_relayed);
        if outcome == Outcome::NoStream && served_only_relays && has_direct_conns {
            outcome = Outcome::ConnectionReversed;
            error = None;
        }
        Classified {
            connect_started_at: self.connect_started_at,
            connect_ended_at: self.connect_ended_at.unwrap_or(at),
            attempts: self.attempts,
            outcome,
            error,
            ended_at: at,
            open_addresses,
            has_direct_conns,
        }
    }
}

#[cfg(test)]
mod tests;
