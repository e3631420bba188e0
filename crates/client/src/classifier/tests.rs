//! Event sequences fed to [`Classifier`] as the host's task feeds it: DCUtR events as the
//! behaviour emits them, swarm events with their instants, and deadlines reached by sleeping.
//! One case per overall outcome and per attempt outcome, and the late orders of real runs.

use std::time::{Duration, Instant};

use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use punchr_dcutr::{
    AttemptOutcome as DcutrOutcome, Clock, DialFailure, Event, EventKind, HandshakeRole, Role,
};
use punchr_types::{AttemptOutcome, LatencyKind, Outcome};

use super::attempts::{fate, Fate, Verdict};
use super::*;

const T0: u64 = 1_764_000_000_000_000_000;
const MS: i64 = 1_000_000;

/// Unix nanoseconds `ms` after the start.
fn unix(ms: i64) -> i64 {
    T0 as i64 + ms * MS
}

fn timeouts(pings: Duration) -> PunchTimeouts {
    PunchTimeouts {
        connect: Duration::from_secs(5),
        stream: Duration::from_secs(15),
        attempt: Duration::from_secs(15),
        pings,
    }
}

const RELAYED: usize = 1;
const DIAL: usize = 1;

/// A punch and the time, driven step by step; every step is 10 ms after the previous one.
struct Script {
    classifier: Classifier,
    origin: Instant,
    clock: Clock,
    now: Instant,
    remote: PeerId,
    relay: PeerId,
}

impl Script {
    fn new(served: Served, pings: Duration) -> Script {
        let origin = Instant::now();
        let clock = Clock::with_origin(origin, T0);
        let (remote, relay) = (PeerId::random(), PeerId::random());
        let mut served_addresses = vec![circuit(relay, remote)];
        if served == Served::RelayAndDirect {
            served_addresses.push(direct_address(9));
        }
        Script {
            classifier: Classifier::new(
                origin,
                clock,
                remote,
                served_addresses,
                ConnectionId::new_unchecked(DIAL),
                timeouts(pings),
            ),
            origin,
            clock,
            now: origin,
            remote,
            relay,
        }
    }

    fn tick(&mut self) -> Instant {
        self.now += Duration::from_millis(10);
        self.now
    }

    fn run(&mut self, step: &Step) {
        let now = self.tick();
        let remote = self.remote;
        let c = &mut self.classifier;
        match step {
            Step::RelayedUp => {
                c.connection_established(now, remote, id(RELAYED), &circuit(self.relay, remote))
            }
            Step::RelayedDialFails => c.dial_failed(now, id(DIAL), &refused()),
            Step::DirectUp(n) => c.connection_established(now, remote, id(*n), &direct_address(*n)),
            Step::DirectClosed(n) => c.connection_closed(remote, id(*n)),
            Step::Dcutr(attempt, kind) => {
                let event = self.event(remote, Role::Responder, *attempt, kind.clone());
                self.classifier.dcutr(&event);
            }
            Step::Foreign(kind) => {
                let event = self.event(PeerId::random(), Role::Responder, 1, kind.clone());
                self.classifier.dcutr(&event);
            }
            Step::AsInitiator(kind) => {
                let event = self.event(remote, Role::Initiator, 1, kind.clone());
                self.classifier.dcutr(&event);
            }
            Step::Sleep => {
                let deadline = c.poll_timeout().expect("the punch waits for something");
                self.now = deadline;
                c.handle_timeout(deadline);
            }
            Step::Cancel => c.cancel(now),
        }
    }

    fn event(&self, peer_id: PeerId, role: Role, attempt: u8, kind: EventKind) -> Event {
        Event {
            peer_id,
            relayed_connection: id(RELAYED),
            role,
            attempt,
            at: self.now,
            unix_nanos: self.clock.unix_nanos(self.now),
            kind,
        }
    }

    fn run_all(&mut self, steps: &[Step]) {
        for step in steps {
            self.run(step);
        }
    }

    fn finish(self) -> Classified {
        let at = self.now + Duration::from_millis(1);
        self.classifier
            .finish(at, |_| (String::new(), vec![]))
            .classified
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    OnlyRelay,
    RelayAndDirect,
}

#[derive(Debug, Clone)]
enum Step {
    /// The relayed connection to the remote is up.
    RelayedUp,
    /// The relayed dial failed.
    RelayedDialFails,
    /// A direct connection `n` to the remote is up.
    DirectUp(usize),
    /// Direct connection `n` closed.
    DirectClosed(usize),
    /// The remote's DCUtR step of an attempt, on our (responder) side.
    Dcutr(u8, EventKind),
    /// A DCUtR step about another peer.
    Foreign(EventKind),
    /// A DCUtR step where we are the initiator.
    AsInitiator(EventKind),
    /// Sleep until the classifier's deadline.
    Sleep,
    Cancel,
}

fn id(n: usize) -> ConnectionId {
    ConnectionId::new_unchecked(n)
}

fn circuit(relay: PeerId, remote: PeerId) -> Multiaddr {
    format!("/ip4/198.18.0.1/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{remote}")
        .parse()
        .unwrap()
}

fn direct_address(n: usize) -> Multiaddr {
    format!("/ip4/198.18.3.{n}/tcp/4001").parse().unwrap()
}

fn refused() -> DialFailure {
    DialFailure {
        error: "Failed to negotiate transport protocol(s): connection refused".into(),
        address_errors: vec![(
            direct_address(4),
            "Connection refused (os error 111)".into(),
        )],
    }
}

/// The remote's stream, CONNECT and SYNC of `attempt` (offering a direct and a relayed address),
/// and the start of our dial.
fn exchange(attempt: u8) -> Vec<Step> {
    let offer = vec![
        direct_address(4),
        "/ip4/198.18.0.1/tcp/4001/p2p-circuit".parse().unwrap(),
    ];
    vec![
        Step::Dcutr(attempt, EventKind::StreamOpened),
        Step::Dcutr(
            attempt,
            EventKind::ConnectReceived {
                addrs: offer,
                unparsable: 0,
            },
        ),
        Step::Dcutr(attempt, EventKind::ConnectSent { addrs: vec![] }),
        Step::Dcutr(attempt, EventKind::SyncReceived),
        Step::Dcutr(
            attempt,
            EventKind::DialStarted {
                connection_id: id(10 + usize::from(attempt)),
                addrs: vec![direct_address(4)],
                handshake_role: HandshakeRole::Client,
            },
        ),
    ]
}

fn finished(attempt: u8, outcome: DcutrOutcome) -> Step {
    Step::Dcutr(
        attempt,
        EventKind::AttemptFinished {
            outcome,
            duration: Duration::from_millis(30),
        },
    )
}

fn dial_failed(attempt: u8) -> Step {
    Step::Dcutr(
        attempt,
        EventKind::DialFailed {
            connection_id: id(10 + usize::from(attempt)),
            failure: refused(),
        },
    )
}

/// Our dial of `attempt` failed and the attempt with it.
fn failed(attempt: u8) -> Vec<Step> {
    let mut steps = exchange(attempt);
    steps.push(dial_failed(attempt));
    steps.push(finished(attempt, DcutrOutcome::DialFailed));
    steps
}

/// Our dial of `attempt` made direct connection `n`.
fn punched(attempt: u8, n: usize) -> Vec<Step> {
    let mut steps = exchange(attempt);
    steps.push(Step::DirectUp(n));
    steps.push(Step::Dcutr(
        attempt,
        EventKind::DialSucceeded {
            connection_id: id(n),
            address: direct_address(n),
        },
    ));
    steps.push(finished(
        attempt,
        DcutrOutcome::Succeeded {
            connection_id: id(n),
        },
    ));
    steps
}

fn concat(parts: &[Vec<Step>]) -> Vec<Step> {
    parts.concat()
}

struct Case {
    name: &'static str,
    served: Served,
    steps: Vec<Step>,
    outcome: Outcome,
    attempts: Vec<AttemptOutcome>,
    error: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    use AttemptOutcome as A;
    use Step::*;
    let only_relay = Served::OnlyRelay;
    let up = || vec![RelayedUp];
    let refused_text = "Failed to negotiate transport protocol(s): connection refused";
    vec![
        Case {
            name: "relay dial fails",
            served: only_relay,
            steps: vec![RelayedDialFails],
            outcome: Outcome::NoConnection,
            attempts: vec![],
            error: Some(refused_text),
        },
        Case {
            name: "no relayed connection in time",
            served: only_relay,
            steps: vec![Sleep],
            outcome: Outcome::NoConnection,
            attempts: vec![],
            error: Some("no relayed connection within 5s"),
        },
        Case {
            name: "remote never opens the stream",
            served: only_relay,
            steps: vec![RelayedUp, Sleep],
            outcome: Outcome::NoStream,
            attempts: vec![],
            error: Some("/libp2p/dcutr stream was not opened after 15s"),
        },
        Case {
            name: "no stream but a direct connection: the remote dialled us",
            served: only_relay,
            steps: vec![RelayedUp, DirectUp(7), Sleep],
            outcome: Outcome::ConnectionReversed,
            attempts: vec![],
            error: None,
        },
        Case {
            name: "the remote dials us before any stream: reversed at once, no wait",
            served: only_relay,
            steps: vec![
                RelayedUp,
                DirectUp(7),
                Dcutr(
                    0,
                    EventKind::UnsolicitedDirectConnection {
                        connection_id: id(7),
                        address: direct_address(7),
                        inbound: true,
                    },
                ),
            ],
            outcome: Outcome::ConnectionReversed,
            attempts: vec![],
            error: None,
        },
        Case {
            name: "a reversal whose connection closed before the end is no reversal",
            served: only_relay,
            steps: vec![RelayedUp, DirectUp(7), DirectClosed(7), Sleep],
            outcome: Outcome::NoStream,
            attempts: vec![],
            error: Some("/libp2p/dcutr stream was not opened after 15s"),
        },
        Case {
            name: "no stream, direct connection, but a direct address was served",
            served: Served::RelayAndDirect,
            steps: vec![RelayedUp, DirectUp(7), Sleep],
            outcome: Outcome::NoStream,
            attempts: vec![],
            error: Some("/libp2p/dcutr stream was not opened after 15s"),
        },
        Case {
            name: "first attempt punches through",
            served: only_relay,
            steps: concat(&[up(), punched(1, 7)]),
            outcome: Outcome::Success,
            attempts: vec![A::Success],
            error: None,
        },
        Case {
            name: "the remote's dial makes the direct connection first",
            served: only_relay,
            steps: concat(&[
                up(),
                exchange(1),
                vec![
                    DirectUp(7),
                    Dcutr(
                        1,
                        EventKind::UnsolicitedDirectConnection {
                            connection_id: id(7),
                            address: direct_address(7),
                            inbound: true,
                        },
                    ),
                    finished(
                        1,
                        DcutrOutcome::RemoteDialSucceeded {
                            connection_id: id(7),
                        },
                    ),
                ],
            ]),
            outcome: Outcome::Success,
            attempts: vec![A::Success],
            error: None,
        },
        Case {
            name: "our dial fails but the remote's got through",
            served: only_relay,
            steps: concat(&[
                up(),
                exchange(1),
                vec![
                    DirectUp(7),
                    dial_failed(1),
                    finished(1, DcutrOutcome::DialFailed),
                ],
            ]),
            outcome: Outcome::Success,
            attempts: vec![A::Success],
            error: None,
        },
        Case {
            name: "protocol error ends the punch",
            served: only_relay,
            steps: vec![
                RelayedUp,
                Dcutr(1, EventKind::StreamOpened),
                finished(
                    1,
                    DcutrOutcome::ProtocolError {
                        error: "unexpected message type".into(),
                    },
                ),
            ],
            outcome: Outcome::Failed,
            attempts: vec![A::ProtocolError],
            error: Some("unexpected message type"),
        },
        Case {
            name: "the relayed connection closes during the exchange",
            served: only_relay,
            steps: vec![
                RelayedUp,
                Dcutr(1, EventKind::StreamOpened),
                finished(1, DcutrOutcome::ConnectionClosed),
            ],
            outcome: Outcome::Failed,
            attempts: vec![A::ProtocolError],
            error: Some("relayed connection closed during the exchange"),
        },
        Case {
            name: "DCUtR's exchange deadline passes",
            served: only_relay,
            steps: vec![
                RelayedUp,
                Dcutr(1, EventKind::StreamOpened),
                finished(1, DcutrOutcome::Timeout),
            ],
            outcome: Outcome::Failed,
            attempts: vec![A::Timeout],
            error: Some("no hole punch event after 10s"),
        },
        Case {
            name: "an attempt without events times out",
            served: only_relay,
            steps: concat(&[up(), exchange(1), vec![Sleep]]),
            outcome: Outcome::Failed,
            attempts: vec![A::Timeout],
            error: Some("no hole punch event after 15s"),
        },
        Case {
            name: "three failed attempts",
            served: only_relay,
            steps: concat(&[up(), failed(1), failed(2), failed(3)]),
            outcome: Outcome::Failed,
            attempts: vec![A::Failed, A::Failed, A::Failed],
            error: Some("none of the 3 attempts succeeded"),
        },
        Case {
            name: "third time lucky",
            served: only_relay,
            steps: concat(&[up(), failed(1), failed(2), punched(3, 7)]),
            outcome: Outcome::Success,
            attempts: vec![A::Failed, A::Failed, A::Success],
            error: None,
        },
        Case {
            name: "a failed attempt and no further stream (the original's quirk)",
            served: only_relay,
            steps: concat(&[up(), failed(1), vec![Sleep]]),
            outcome: Outcome::NoStream,
            attempts: vec![A::Failed],
            error: Some("/libp2p/dcutr stream was not opened after 15s"),
        },
        Case {
            name: "a new stream supersedes a running exchange",
            served: only_relay,
            steps: concat(&[
                up(),
                vec![
                    Dcutr(1, EventKind::StreamOpened),
                    finished(1, DcutrOutcome::Superseded),
                ],
                punched(2, 7),
            ]),
            outcome: Outcome::Success,
            attempts: vec![A::Failed, A::Success],
            error: None,
        },
        Case {
            name: "stopped during an attempt",
            served: only_relay,
            steps: concat(&[up(), exchange(1), vec![Cancel]]),
            outcome: Outcome::Cancelled,
            attempts: vec![A::Cancelled],
            error: Some("cancelled"),
        },
        Case {
            name: "stopped while waiting for the stream",
            served: only_relay,
            steps: vec![RelayedUp, Cancel],
            outcome: Outcome::Cancelled,
            attempts: vec![],
            error: Some("cancelled"),
        },
        Case {
            name: "stopped while connecting",
            served: only_relay,
            steps: vec![Cancel],
            outcome: Outcome::Cancelled,
            attempts: vec![],
            error: Some("cancelled"),
        },
        Case {
            name: "the loop ends while an attempt runs",
            served: only_relay,
            steps: concat(&[up(), exchange(1)]),
            outcome: Outcome::Unknown,
            attempts: vec![A::Unknown],
            error: Some("unknown hole punch attempt outcome"),
        },
        Case {
            name: "steps of other peers and as initiator change nothing",
            served: only_relay,
            steps: vec![
                RelayedUp,
                Foreign(EventKind::StreamOpened),
                AsInitiator(EventKind::StreamOpened),
                Foreign(EventKind::AttemptFinished {
                    outcome: DcutrOutcome::Succeeded {
                        connection_id: id(8),
                    },
                    duration: Duration::from_millis(5),
                }),
                Sleep,
            ],
            outcome: Outcome::NoStream,
            attempts: vec![],
            error: Some("/libp2p/dcutr stream was not opened after 15s"),
        },
        Case {
            name: "steps before the relayed connection is up change nothing",
            served: only_relay,
            steps: concat(&[punched(1, 7), vec![Sleep]]),
            outcome: Outcome::NoConnection,
            attempts: vec![],
            error: Some("no relayed connection within 5s"),
        },
    ]
}

/// Whether the steps leave a direct connection open.
fn direct_open_at_end(steps: &[Step]) -> bool {
    let mut open = std::collections::HashSet::new();
    for step in steps {
        match step {
            Step::DirectUp(n) => open.insert(*n),
            Step::DirectClosed(n) => open.remove(n),
            _ => false,
        };
    }
    !open.is_empty()
}

#[test]
fn every_outcome_follows_the_original_rules() {
    for case in cases() {
        let mut script = Script::new(case.served, Duration::ZERO);
        script.run_all(&case.steps);
        let classified = script.finish();
        assert_eq!(classified.outcome, case.outcome, "{}", case.name);
        let attempts: Vec<AttemptOutcome> = classified.attempts.iter().map(|a| a.outcome).collect();
        assert_eq!(attempts, case.attempts, "{}", case.name);
        assert_eq!(classified.error.as_deref(), case.error, "{}", case.name);
        assert_eq!(
            classified.has_direct_conns,
            direct_open_at_end(&case.steps),
            "{}",
            case.name
        );
    }
}

#[test]
fn each_attempt_outcome_decides_the_punch_as_the_original() {
    let decided = |outcome, error: Option<&str>| {
        Fate::Verdict(Verdict {
            outcome,
            error: error.map(str::to_owned),
        })
    };
    for &attempt in AttemptOutcome::ALL {
        let error = Some("why".to_owned());
        let expected = match attempt {
            // DIRECT_DIAL comes from go-libp2p's initiator, which original clients report.
            AttemptOutcome::Success | AttemptOutcome::DirectDial => decided(Outcome::Success, None),
            AttemptOutcome::ProtocolError | AttemptOutcome::Timeout => {
                decided(Outcome::Failed, Some("why"))
            }
            AttemptOutcome::Cancelled => decided(Outcome::Cancelled, Some("why")),
            AttemptOutcome::Unknown => {
                decided(Outcome::Unknown, Some("unknown hole punch attempt outcome"))
            }
            AttemptOutcome::Failed => Fate::NextStream,
        };
        assert_eq!(fate(attempt, error.clone(), 1), expected, "{attempt}");
    }
    assert_eq!(
        fate(AttemptOutcome::Failed, None, 3),
        decided(Outcome::Failed, Some("none of the 3 attempts succeeded"))
    );
}

#[test]
fn attempts_carry_their_timing_addresses_and_dial_failure() {
    let mut script = Script::new(Served::OnlyRelay, Duration::ZERO);
    script.run_all(&concat(&[
        vec![Step::RelayedUp],
        exchange(1),
        vec![dial_failed(1), Step::DirectUp(7)],
        vec![finished(1, DcutrOutcome::DialFailed)],
    ]));
    let classified = script.finish();
    let (opened, sync, ended) = (unix(20), unix(50), unix(90));
    assert_eq!(classified.connect_ended_at, unix(10));
    let attempt = &classified.attempts[0];
    assert_eq!(attempt.outcome, AttemptOutcome::Success);
    assert_eq!(attempt.opened_at, opened);
    assert_eq!(attempt.started_at, Some(sync));
    assert_eq!(attempt.ended_at, ended);
    assert_eq!(attempt.elapsed, Duration::from_millis(40));
    // CONNECT sent at 40 ms, SYNC received at 50 ms.
    assert_eq!(attempt.start_rtt, Some(Duration::from_millis(10)));
    assert_eq!(
        attempt.dial_failure,
        Some(refused()),
        "kept as DCUtR reported it"
    );
    assert_eq!(
        attempt.addresses,
        vec![direct_address(4)],
        "relayed offers dropped"
    );
    assert_eq!(attempt.handshake_role, Some(HandshakeRole::Client));
}

#[test]
fn an_attempt_that_never_started_lasts_from_its_stream() {
    let mut script = Script::new(Served::OnlyRelay, Duration::ZERO);
    script.run_all(&[
        Step::RelayedUp,
        Step::Dcutr(1, EventKind::StreamOpened),
        finished(
            1,
            DcutrOutcome::ProtocolError {
                error: "bad".into(),
            },
        ),
    ]);
    let attempt = &script.finish().attempts[0];
    assert_eq!(attempt.started_at, None);
    assert_eq!(attempt.elapsed, Duration::from_millis(10));
    assert_eq!(attempt.dial_failure, None);
}

#[test]
fn a_late_end_of_an_earlier_attempt_does_not_close_the_running_one() {
    // The flake of a SUCCESS attempt without `started_at`: the remote gives up on attempt 1 and
    // opens attempt 2 while our dial of attempt 1 still runs; then that dial ends.
    for late in [
        finished(
            1,
            DcutrOutcome::Succeeded {
                connection_id: id(7),
            },
        ),
        finished(1, DcutrOutcome::DialFailed),
        dial_failed(1),
        Step::Dcutr(1, EventKind::SyncReceived),
    ] {
        let mut script = Script::new(Served::OnlyRelay, Duration::ZERO);
        script.run_all(&concat(&[
            vec![Step::RelayedUp],
            exchange(1),
            vec![Step::Dcutr(2, EventKind::StreamOpened), late.clone()],
        ]));
        assert!(
            !script.classifier.is_done(),
            "attempt 2 still runs after {late:?}"
        );
        script.run_all(&exchange(2)[1..]);
        script.run_all(&punched(2, 8)[exchange(2).len()..]);
        assert!(script.classifier.is_done());
        let classified = script.finish();
        let attempts = &classified.attempts;
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        assert_eq!(attempts[0].outcome, AttemptOutcome::Failed);
        assert_eq!(
            attempts[0].error.as_deref(),
            Some("superseded by a new stream")
        );
        let last = &attempts[1];
        assert!(last.started_at.is_some(), "{last:?}");
        assert_eq!(last.outcome, AttemptOutcome::Success, "{last:?}");
        assert_eq!(last.addresses.len(), 1, "{last:?}");
        assert_eq!(
            last.dial_failure, None,
            "attempt 1's dial is not attempt 2's"
        );
        assert_eq!(classified.outcome, Outcome::Success);
    }
}

#[test]
fn steps_of_the_running_attempt_are_applied() {
    let mut script = Script::new(Served::OnlyRelay, Duration::ZERO);
    script.run_all(&concat(&[vec![Step::RelayedUp], punched(1, 7)]));
    assert!(script.classifier.is_done());
    let classified = script.finish();
    assert_eq!(classified.attempts.len(), 1);
    assert_eq!(classified.attempts[0].outcome, AttemptOutcome::Success);
}

#[test]
fn events_after_the_verdict_change_nothing() {
    let mut script = Script::new(Served::OnlyRelay, Duration::ZERO);
    script.run_all(&concat(&[
        vec![Step::RelayedUp],
        exchange(1),
        vec![
            Step::DirectUp(7),
            finished(
                1,
                DcutrOutcome::RemoteDialSucceeded {
                    connection_id: id(7),
                },
            ),
        ],
    ]));
    assert!(script.classifier.is_done());
    let decided = script.classifier.attempts.clone();
    // Our own dial gives up later, the remote tries again, the user stops the client.
    script.run_all(&concat(&[
        vec![dial_failed(1), finished(1, DcutrOutcome::DialFailed)],
        failed(2),
        vec![Step::RelayedDialFails, Step::Cancel],
    ]));
    assert_eq!(script.classifier.poll_timeout(), None);
    assert_eq!(script.classifier.attempts, decided);
    let classified = script.finish();
    assert_eq!(classified.outcome, Outcome::Success);
    assert_eq!(classified.error, None);
}

#[test]
fn a_superseded_last_attempt_ends_the_punch() {
    let mut script = Script::new(Served::OnlyRelay, Duration::ZERO);
    script.run_all(&concat(&[
        vec![Step::RelayedUp],
        failed(1),
        failed(2),
        exchange(3),
        vec![Step::Dcutr(4, EventKind::StreamOpened)],
    ]));
    assert!(script.classifier.is_done());
    let classified = script.finish();
    assert_eq!(classified.outcome, Outcome::Failed);
    assert_eq!(classified.attempts.len(), 3);
}

#[test]
fn each_wait_has_its_deadline() {
    let mut script = Script::new(Served::OnlyRelay, Duration::from_secs(3));
    let origin = script.origin;
    let secs = Duration::from_secs;
    assert_eq!(script.classifier.poll_timeout(), Some(origin + secs(5)));
    script.run(&Step::RelayedUp);
    assert_eq!(
        script.classifier.poll_timeout(),
        Some(script.now + secs(15))
    );
    for step in exchange(1) {
        script.run(&step);
        let rearmed = matches!(
            step,
            Step::Dcutr(_, EventKind::StreamOpened | EventKind::SyncReceived)
        );
        if rearmed {
            assert_eq!(
                script.classifier.poll_timeout(),
                Some(script.now + secs(15))
            );
        }
    }
    let before_deadline = script.classifier.poll_timeout().unwrap() - Duration::from_millis(1);
    script.classifier.handle_timeout(before_deadline);
    assert!(
        script.classifier.running.is_some(),
        "no timeout before the deadline"
    );

    // A direct connection: after the verdict, pings are collected for 3 s, then it is done.
    script.run_all(&punched(1, 7)[exchange(1).len()..]);
    assert!(!script.classifier.is_done());
    let pings_end = script.now + secs(3);
    assert_eq!(script.classifier.poll_timeout(), Some(pings_end));
    script.run(&Step::Cancel);
    assert!(
        !script.classifier.is_done(),
        "a stop does not cut the pings short"
    );
    script.run(&Step::Sleep);
    assert!(script.classifier.is_done());
    assert_eq!(script.classifier.poll_timeout(), None);
    assert_eq!(script.finish().outcome, Outcome::Success);
}

#[test]
fn latencies_are_measured_on_the_relay_the_relayed_and_the_direct_connection() {
    let mut script = Script::new(Served::OnlyRelay, Duration::ZERO);
    let now = script.tick();
    let relay = script.relay;
    let relay_address: Multiaddr = "/ip4/198.18.0.1/tcp/4001".parse().unwrap();
    let c = &mut script.classifier;
    c.connection_established(now, relay, id(20), &relay_address);
    c.connection_established(now, PeerId::random(), id(21), &relay_address);
    script.run_all(&concat(&[vec![Step::RelayedUp], punched(1, 7)]));
    let c = &mut script.classifier;
    for connection in [20, 21, RELAYED, 7] {
        c.ping(id(connection), Ok(Duration::from_millis(connection as u64)));
    }
    let output = script
        .classifier
        .finish(script.now, |_| ("agent".into(), vec![]));
    let kinds: Vec<(LatencyKind, usize)> = output
        .latencies
        .iter()
        .map(|l| (l.kind, l.samples.len()))
        .collect();
    assert_eq!(
        kinds,
        [
            (LatencyKind::ToRelay, 1),
            (LatencyKind::ToRemoteThroughRelay, 1),
            (LatencyKind::ToRemoteAfterHolePunch, 1)
        ]
    );
}

#[test]
fn relays_are_found_in_circuit_addresses() {
    let relay = PeerId::random();
    let remote = PeerId::random();
    assert_eq!(relay_of(&circuit(relay, remote)), Some(relay));
    let direct: Multiaddr = format!("/ip4/198.18.0.1/tcp/4001/p2p/{remote}")
        .parse()
        .unwrap();
    assert_eq!(relay_of(&direct), None);
}
