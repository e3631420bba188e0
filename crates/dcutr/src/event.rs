//! What the behaviour reports: one [`Event`] per step of every attempt.
//!
//! The steps are those of the spec `relay/DCUtR.md` ("The protocol"): stream, CONNECT, SYNC, RTT,
//! dial; the outcome names follow what Punchr records per attempt (`punchr-original.md` §7.3).
//! Every event is also written as a `tracing` event with target [`TRACE_TARGET`], without a
//! message, only structured fields (its step in `event`, as `punchr_types::log_target` has it
//! for every part), so that logs can be mined like the events themselves.

use std::{fmt, time::Duration, time::Instant};

use libp2p::{
    swarm::{ConnectionId, DialError},
    Multiaddr, PeerId,
};
use punchr_types::error_line;

use crate::roles::HandshakeRole;

/// The `tracing` target of this crate's step events.
pub const TRACE_TARGET: &str = punchr_types::log_target::DCUTR;

/// Our side of the DCUtR exchange on one relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The spec's **B**: we accepted the relayed connection (we hold the relay reservation), so we
    /// open the `/libp2p/dcutr` stream, measure the RTT, send SYNC, dial RTT/2 later as the
    /// security handshake's responder, and retry after a failed dial.
    Initiator,
    /// The spec's **A**: we dialed the remote through the relay, so we answer its CONNECT and dial
    /// as soon as its SYNC arrives. A Punchr client is in this role.
    Responder,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Initiator => "initiator",
            Role::Responder => "responder",
        }
    }
}

/// One step of a hole punch, with where and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The remote peer.
    pub peer_id: PeerId,
    /// The relayed connection whose upgrade this is about.
    pub relayed_connection: ConnectionId,
    /// Our side on that connection.
    pub role: Role,
    /// The attempt (1-based) this step belongs to. For
    /// [`EventKind::UnsolicitedDirectConnection`]: how many attempts had started (0 = none).
    pub attempt: u8,
    /// When it happened (monotonic clock).
    pub at: Instant,
    /// `at` as Unix nanoseconds, converted by the behaviour's [`Clock`](crate::Clock).
    pub unix_nanos: u64,
    /// What happened.
    pub kind: EventKind,
}

/// What happened, with the data of that step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The `/libp2p/dcutr` stream of this attempt is open and negotiated.
    StreamOpened,
    /// We sent our CONNECT with these addresses (possibly none).
    ConnectSent {
        /// Our addresses as sent.
        addrs: Vec<Multiaddr>,
    },
    /// The remote's CONNECT arrived.
    ConnectReceived {
        /// Every address the remote offered that parsed, relayed ones included.
        addrs: Vec<Multiaddr>,
        /// Entries that were not valid multiaddrs.
        unparsable: usize,
    },
    /// Initiator only: time from our CONNECT being sent to the remote's CONNECT arriving.
    RttMeasured {
        /// The round-trip time through the relay.
        rtt: Duration,
    },
    /// Initiator only: we sent SYNC; our dial follows RTT/2 later.
    SyncSent,
    /// Responder only: the remote's SYNC arrived; our dial follows at once.
    SyncReceived,
    /// We asked the swarm to dial the remote directly.
    DialStarted {
        /// The id the resulting connection (or the failure) will carry.
        connection_id: ConnectionId,
        /// The remote's non-relayed addresses from its CONNECT that we dial.
        addrs: Vec<Multiaddr>,
        /// Our side of the direct connection's handshakes (see [`crate::RoleStrategy`]).
        handshake_role: HandshakeRole,
    },
    /// Our dial produced a direct connection.
    DialSucceeded {
        /// The direct connection.
        connection_id: ConnectionId,
        /// The address it was made to.
        address: Multiaddr,
    },
    /// Our dial failed.
    DialFailed {
        /// The id given in [`EventKind::DialStarted`].
        connection_id: ConnectionId,
        /// Why, with each address tried.
        failure: DialFailure,
    },
    /// The attempt is over.
    AttemptFinished {
        /// How it ended.
        outcome: AttemptOutcome,
        /// From the attempt's start (the initiator's stream request, the responder's stream
        /// opening) to its end.
        duration: Duration,
    },
    /// Initiator only: the last allowed attempt failed; no new stream will be opened.
    AttemptsExhausted {
        /// How many attempts were made.
        attempts: u8,
    },
    /// A direct connection to or from the remote appeared that none of our hole-punch dials
    /// produced, while a relayed connection to it is open: the remote dialed us (a connection
    /// reversal, or on the responder its own hole-punch dial), or another part of this process
    /// dialed it.
    UnsolicitedDirectConnection {
        /// The direct connection.
        connection_id: ConnectionId,
        /// The remote's address on it.
        address: Multiaddr,
        /// Whether the remote dialed us.
        inbound: bool,
    },
}

/// Why a dial failed, as the swarm said it: its error as text and, for transport failures, each
/// address tried with its own error (cause chain included). The client keeps it as it is up to
/// its report and the relayed dial's failure is one too, so both are made here, once
/// ([`DialFailure::from`] a swarm [`DialError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialFailure {
    /// The swarm's error as text.
    pub error: String,
    /// For transport failures, each address tried with its error (cause chain included).
    pub address_errors: Vec<(Multiaddr, String)>,
}

impl From<&DialError> for DialFailure {
    fn from(error: &DialError) -> Self {
        let address_errors = match error {
            DialError::Transport(errors) => errors
                .iter()
                .map(|(addr, e)| (addr.clone(), error_line(e)))
                .collect(),
            _ => Vec::new(),
        };
        DialFailure {
            error: error.to_string(),
            address_errors,
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Our hole-punch dial produced this direct connection.
    Succeeded {
        /// The direct connection.
        connection_id: ConnectionId,
    },
    /// While our hole-punch dial ran, the remote's reached us first and made this direct
    /// connection (our dial may still end later; the attempt ended here).
    RemoteDialSucceeded {
        /// The direct connection.
        connection_id: ConnectionId,
    },
    /// Our hole-punch dial failed (the errors are in [`EventKind::DialFailed`]).
    DialFailed,
    /// The CONNECT/SYNC exchange, or opening its stream, did not finish in time.
    Timeout,
    /// Initiator only: the remote does not speak `/libp2p/dcutr`.
    Unsupported,
    /// The remote broke the protocol or the stream failed.
    ProtocolError {
        /// What went wrong.
        error: String,
    },
    /// Responder only: the remote opened a new stream before this attempt's exchange finished.
    Superseded,
    /// The relayed connection closed before the exchange finished.
    ConnectionClosed,
}

impl AttemptOutcome {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Succeeded { .. } => "succeeded",
            Self::RemoteDialSucceeded { .. } => "remote_dial_succeeded",
            Self::DialFailed => "dial_failed",
            Self::Timeout => "timeout",
            Self::Unsupported => "unsupported",
            Self::ProtocolError { .. } => "protocol_error",
            Self::Superseded => "superseded",
            Self::ConnectionClosed => "connection_closed",
        }
    }
}

/// Displays addresses separated by spaces, for log fields.
struct Addrs<'a>(&'a [Multiaddr]);

impl fmt::Display for Addrs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, addr) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{addr}")?;
        }
        Ok(())
    }
}

impl Event {
    /// Writes this event as a `tracing` event (fields only, no message).
    pub(crate) fn trace(&self) {
        macro_rules! step {
            ($kind:literal $(, $($field:tt)+)?) => {
                tracing::debug!(
                    target: TRACE_TARGET,
                    event = $kind,
                    peer_id = %self.peer_id,
                    relayed_connection = %self.relayed_connection,
                    role = self.role.as_str(),
                    attempt = self.attempt,
                    unix_nanos = self.unix_nanos,
                    $($($field)+)?
                )
            };
        }
        match &self.kind {
            EventKind::StreamOpened => step!("stream_opened"),
            EventKind::ConnectSent { addrs } => {
                step!("connect_sent", addrs = %Addrs(addrs))
            }
            EventKind::ConnectReceived { addrs, unparsable } => {
                step!("connect_received", addrs = %Addrs(addrs), unparsable = unparsable)
            }
            EventKind::RttMeasured { rtt } => step!("rtt_measured", rtt_secs = rtt.as_secs_f64()),
            EventKind::SyncSent => step!("sync_sent"),
            EventKind::SyncReceived => step!("sync_received"),
            EventKind::DialStarted {
                connection_id,
                addrs,
                handshake_role,
            } => step!(
                "dial_started",
                connection_id = %connection_id,
                addrs = %Addrs(addrs),
                handshake_role = handshake_role.as_str()
            ),
            EventKind::DialSucceeded {
                connection_id,
                address,
            } => step!("dial_succeeded", connection_id = %connection_id, address = %address),
            EventKind::DialFailed {
                connection_id,
                failure,
            } => step!(
                "dial_failed",
                connection_id = %connection_id,
                error = %failure.error,
                address_errors = ?failure.address_errors
            ),
            EventKind::AttemptFinished { outcome, duration } => {
                let error = match outcome {
                    AttemptOutcome::ProtocolError { error } => error.as_str(),
                    _ => "",
                };
                step!(
                    "attempt_finished",
                    outcome = outcome.as_str(),
                    error = error,
                    duration_secs = duration.as_secs_f64()
                )
            }
            EventKind::AttemptsExhausted { attempts } => {
                step!("attempts_exhausted", attempts = attempts)
            }
            EventKind::UnsolicitedDirectConnection {
                connection_id,
                address,
                inbound,
            } => step!(
                "unsolicited_direct_connection",
                connection_id = %connection_id,
                address = %address,
                inbound = inbound
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::{layer::Context, prelude::*, Layer};

    use super::*;

    /// A tracing event's target and field names.
    type Seen = (String, Vec<&'static str>);

    /// Records what it sees of each tracing event.
    struct Capture(Arc<Mutex<Vec<Seen>>>);

    impl<S: tracing::Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let fields = event.metadata().fields().iter().map(|f| f.name()).collect();
            self.0
                .lock()
                .unwrap()
                .push((event.metadata().target().to_owned(), fields));
        }
    }

    #[test]
    fn steps_are_traced_as_fields_without_a_message() {
        let captured = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(captured.clone()));
        let event = Event {
            peer_id: PeerId::random(),
            relayed_connection: ConnectionId::new_unchecked(3),
            role: Role::Initiator,
            attempt: 2,
            at: Instant::now(),
            unix_nanos: 42,
            kind: EventKind::AttemptFinished {
                outcome: AttemptOutcome::ProtocolError {
                    error: "expected SYNC, received CONNECT".into(),
                },
                duration: Duration::from_millis(5),
            },
        };
        tracing::subscriber::with_default(subscriber, || event.trace());

        let captured = captured.lock().unwrap();
        let [(target, fields)] = captured.as_slice() else {
            panic!("{captured:?}")
        };
        assert_eq!(target, TRACE_TARGET);
        assert!(!fields.contains(&"message"));
        for field in [
            "event",
            "peer_id",
            "relayed_connection",
            "role",
            "attempt",
            "unix_nanos",
            "outcome",
            "error",
            "duration_secs",
        ] {
            assert!(fields.contains(&field), "{field} missing from {fields:?}");
        }
    }
}
