//! The records a punch reports and the verdict rules of `punchr-original.md` §7.3: what an
//! attempt's end means for the punch ([`fate`]), and the final verdict with the reversal rule
//! ([`classify`]).

use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use punchr_dcutr::{DialFailure, HandshakeRole, MAX_ATTEMPTS};
use punchr_types::address::is_relayed;
use punchr_types::{AttemptOutcome, Outcome, UnixNanos};

/// One attempt as it will be reported.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// When the remote's DCUtR stream was seen.
    pub opened_at: UnixNanos,
    /// When the hole punch started (SYNC received, dial begins).
    pub started_at: Option<UnixNanos>,
    /// When the attempt ended.
    pub ended_at: UnixNanos,
    /// RTT of the CONNECT/SYNC exchange: our CONNECT out, the remote's SYNC back.
    pub start_rtt: Option<Duration>,
    /// The hole punch's own time, as the original reports it (go-libp2p's
    /// `EndHolePunchEvt.EllapsedTime`): from the SYNC to the end, or from the stream's opening
    /// when no SYNC came (which is DCUtR's attempt `duration`).
    pub elapsed: Duration,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Why it failed, for people.
    pub error: Option<String>,
    /// Why our last hole-punch dial of this attempt failed, as DCUtR reported it (the wire's
    /// `direct_dial_error` is its text).
    pub dial_failure: Option<DialFailure>,
    /// Remote addresses used for the hole punch.
    pub addresses: Vec<Multiaddr>,
    /// Our side of the direct connection's handshakes in this attempt's dial, once it started.
    pub handshake_role: Option<HandshakeRole>,
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

/// An instant and the same instant in Unix time, through the DCUtR behaviour's clock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamp {
    pub(super) at: Instant,
    pub(super) unix: UnixNanos,
}

/// A verdict on the punch: its outcome and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) outcome: Outcome,
    pub(crate) error: Option<String>,
}

/// What an attempt's end means for the punch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    /// The punch is decided.
    Verdict(Verdict),
    /// Wait for the remote's next stream.
    NextStream,
}

/// What an attempt that ended as `outcome` with `error` means for the punch, once `attempts`
/// attempts have ended (§7.3 step 6c: DIRECT_DIAL, which go-libp2p's initiator reports and the
/// original clients send, counts as SUCCESS).
pub(crate) fn fate(outcome: AttemptOutcome, error: Option<String>, attempts: usize) -> Fate {
    let verdict = |outcome, error| Fate::Verdict(Verdict { outcome, error });
    match outcome {
        AttemptOutcome::Success | AttemptOutcome::DirectDial => verdict(Outcome::Success, None),
        AttemptOutcome::ProtocolError | AttemptOutcome::Timeout => verdict(Outcome::Failed, error),
        AttemptOutcome::Cancelled => verdict(Outcome::Cancelled, error),
        AttemptOutcome::Unknown => verdict(
            Outcome::Unknown,
            Some("unknown hole punch attempt outcome".into()),
        ),
        AttemptOutcome::Failed if attempts >= usize::from(MAX_ATTEMPTS) => verdict(
            Outcome::Failed,
            Some(format!("none of the {MAX_ATTEMPTS} attempts succeeded")),
        ),
        AttemptOutcome::Failed => Fate::NextStream,
    }
}

/// Whether one of `addresses` is direct (not through a relay).
pub(super) fn any_direct<'a>(addresses: impl IntoIterator<Item = &'a Multiaddr>) -> bool {
    addresses.into_iter().any(|a| !is_relayed(a))
}

/// The punch's classification from its `verdict` (none: UNKNOWN) and the connections to the
/// remote open at the end: NO_STREAM is CONNECTION_REVERSED when only relay addresses were
/// `served` and one of those connections is direct.
pub(super) fn classify(
    served: &[Multiaddr],
    verdict: Option<Verdict>,
    attempts: Vec<AttemptRecord>,
    connect_started_at: UnixNanos,
    connect_ended_at: UnixNanos,
    ended_at: UnixNanos,
    open_addresses: Vec<Multiaddr>,
) -> Classified {
    let has_direct_conns = any_direct(&open_addresses);
    let Verdict {
        mut outcome,
        mut error,
    } = verdict.unwrap_or(Verdict {
        outcome: Outcome::Unknown,
        error: Some("hole punch ended without a verdict".into()),
    });
    let served_only_relays = !served.is_empty() && served.iter().all(is_relayed);
    if outcome == Outcome::NoStream && served_only_relays && has_direct_conns {
        outcome = Outcome::ConnectionReversed;
        error = None;
    }
    Classified {
        connect_started_at,
        connect_ended_at,
        attempts,
        outcome,
        error,
        ended_at,
        open_addresses,
        has_direct_conns,
    }
}

/// The attempt whose stream opened last, while it runs.
#[derive(Debug)]
pub(super) struct RunningAttempt {
    /// DCUtR's number of the attempt.
    pub(super) number: u8,
    opened: Stamp,
    started: Option<Stamp>,
    start_rtt: Option<Duration>,
    pub(super) connect_sent: Option<Instant>,
    /// The remote's direct addresses from its CONNECT.
    offer: Vec<Multiaddr>,
    addresses: Vec<Multiaddr>,
    pub(super) dial_failure: Option<DialFailure>,
    pub(super) handshake_role: Option<HandshakeRole>,
}

impl RunningAttempt {
    pub(super) fn new(number: u8, opened: Stamp) -> Self {
        RunningAttempt {
            number,
            opened,
            started: None,
            start_rtt: None,
            connect_sent: None,
            offer: Vec::new(),
            addresses: Vec::new(),
            dial_failure: None,
            handshake_role: None,
        }
    }

    /// The remote's CONNECT offered `addrs`; the relayed ones are not hole punched.
    pub(super) fn connect_received(&mut self, addrs: &[Multiaddr]) {
        self.offer = addrs.iter().filter(|a| !is_relayed(a)).cloned().collect();
    }

    /// The remote's SYNC: the hole punch starts. The responder's RTT is our CONNECT out, the
    /// remote's SYNC back (as go-libp2p measures).
    pub(super) fn sync_received(&mut self, at: Stamp) {
        self.started = Some(at);
        self.start_rtt = self
            .connect_sent
            .map(|sent| at.at.saturating_duration_since(sent));
        self.addresses = self.offer.clone();
    }

    pub(super) fn end(
        self,
        outcome: AttemptOutcome,
        ended: Stamp,
        error: Option<String>,
    ) -> AttemptRecord {
        let from = self.started.unwrap_or(self.opened);
        AttemptRecord {
            opened_at: self.opened.unix,
            started_at: self.started.map(|s| s.unix),
            ended_at: ended.unix,
            start_rtt: self.start_rtt,
            elapsed: ended.at.saturating_duration_since(from.at),
            outcome,
            error,
            dial_failure: self.dial_failure,
            addresses: self.addresses,
            handshake_role: self.handshake_role,
        }
    }
}
