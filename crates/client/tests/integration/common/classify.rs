//! Drives the client's [`Classifier`] as a host's task does, with made-up events at chosen
//! times, for tests that need a classified punch without a network.

use std::time::{Duration, Instant};

use libp2p::swarm::ConnectionId;
use multiaddr::Multiaddr;
use punchr_client::classifier::{Classified, Classifier, PunchTimeouts};
use punchr_dcutr::{AttemptOutcome, Clock, DialFailure, Event, EventKind, Role};

/// The waits of these punches: a missing stream or attempt event ends them after 15 s.
pub const TIMEOUTS: PunchTimeouts = PunchTimeouts {
    connect: Duration::from_secs(5),
    stream: Duration::from_secs(15),
    attempt: Duration::from_secs(15),
    pings: Duration::ZERO,
};

const RELAYED: usize = 1;

/// A punch towards `remote` through `relayed` (the one address served), started at a Unix time;
/// every step is given in milliseconds after that start.
pub struct ScriptedPunch {
    classifier: Classifier,
    origin: Instant,
    now: Instant,
    clock: Clock,
    remote: libp2p_identity::PeerId,
    relayed: Multiaddr,
}

impl ScriptedPunch {
    /// A punch whose relayed dial starts at Unix nanoseconds `start`.
    pub fn start(start: i64, remote: libp2p_identity::PeerId, relayed: Multiaddr) -> Self {
        let origin = Instant::now();
        let clock = Clock::with_origin(origin, u64::try_from(start).expect("after 1970"));
        ScriptedPunch {
            classifier: Classifier::new(
                origin,
                clock,
                remote,
                vec![relayed.clone()],
                ConnectionId::new_unchecked(RELAYED),
                TIMEOUTS,
            ),
            origin,
            now: origin,
            clock,
            remote,
            relayed,
        }
    }

    fn at(&mut self, ms: u64) -> Instant {
        self.now = self.origin + Duration::from_millis(ms);
        self.now
    }

    /// The relayed connection is up.
    pub fn relayed_up(&mut self, ms: u64) {
        let at = self.at(ms);
        let relayed = self.relayed.clone();
        self.classifier.connection_established(
            at,
            self.remote,
            ConnectionId::new_unchecked(RELAYED),
            &relayed,
        );
    }

    /// The relayed dial failed with `error`.
    pub fn relayed_dial_fails(&mut self, ms: u64, error: &str) {
        let at = self.at(ms);
        let failure = DialFailure {
            error: error.to_owned(),
            address_errors: vec![],
        };
        self.classifier
            .dial_failed(at, ConnectionId::new_unchecked(RELAYED), &failure);
    }

    /// A direct connection `n` to the remote at `address` is up.
    pub fn direct_up(&mut self, ms: u64, n: usize, address: &Multiaddr) {
        let at = self.at(ms);
        self.classifier.connection_established(
            at,
            self.remote,
            ConnectionId::new_unchecked(n),
            address,
        );
    }

    /// The remote's DCUtR step `kind` of `attempt`.
    pub fn dcutr(&mut self, ms: u64, attempt: u8, kind: EventKind) {
        let at = self.at(ms);
        self.classifier.dcutr(&Event {
            peer_id: self.remote,
            relayed_connection: ConnectionId::new_unchecked(RELAYED),
            role: Role::Responder,
            attempt,
            at,
            unix_nanos: self.clock.unix_nanos(at),
            kind,
        });
    }

    /// The remote's stream, CONNECT (offering `offer`) and SYNC of `attempt`, 1 ms apart.
    pub fn exchange(&mut self, ms: u64, attempt: u8, offer: Vec<Multiaddr>) {
        self.dcutr(ms, attempt, EventKind::StreamOpened);
        let connect = EventKind::ConnectReceived {
            addrs: offer,
            unparsable: 0,
        };
        self.dcutr(ms + 1, attempt, connect);
        self.dcutr(ms + 2, attempt, EventKind::ConnectSent { addrs: vec![] });
        self.dcutr(ms + 3, attempt, EventKind::SyncReceived);
    }

    /// DCUtR ends `attempt` as `outcome`.
    pub fn finished(&mut self, ms: u64, attempt: u8, outcome: AttemptOutcome) {
        // DCUtR's attempt duration; the classifier measures the hole punch from the instants.
        let duration = Duration::ZERO;
        self.dcutr(
            ms,
            attempt,
            EventKind::AttemptFinished { outcome, duration },
        );
    }

    /// Sleeps until the punch's deadline, as the host does.
    pub fn sleep(&mut self) {
        let deadline = self.classifier.poll_timeout().expect("a wait");
        self.now = deadline;
        self.classifier.handle_timeout(deadline);
    }

    /// The user stops the client.
    pub fn cancel(&mut self, ms: u64) {
        let at = self.at(ms);
        self.classifier.cancel(at);
    }

    /// The classification, 1 ms after the last step.
    pub fn finish(self) -> Classified {
        let at = self.now + Duration::from_millis(1);
        self.classifier
            .finish(at, |_| (String::new(), vec![]))
            .classified
    }
}
