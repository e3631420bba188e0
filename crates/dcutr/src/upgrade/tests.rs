//! Event sequences fed to [`Upgrades`], checked against the outputs they must produce.

use std::time::Duration;

use libp2p::core::{transport::PortUse, Endpoint};

use super::*;
use crate::roles::{HandshakeRole, RoleStrategy};

/// A dial as the behaviour reports it (client role, as the tests' responders take).
fn started(id: ConnectionId, addrs: Vec<Multiaddr>) -> StartedDial {
    StartedDial {
        id,
        addrs,
        handshake_role: HandshakeRole::Client,
    }
}
use crate::message::Offer;

/// A core with a fixed clock and a timeline of instants 1 ms apart.
struct Script {
    core: Upgrades,
    origin: Instant,
    peer: PeerId,
}

const ORIGIN_UNIX_NANOS: u64 = 1_700_000_000_000_000_000;

impl Script {
    fn new() -> Self {
        let origin = Instant::now();
        Self {
            core: Upgrades::new(
                Clock::with_origin(origin, ORIGIN_UNIX_NANOS),
                RoleStrategy::Spec,
            ),
            origin,
            peer: PeerId::random(),
        }
    }

    fn t(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.core.next_output()).collect()
    }

    /// The kinds of the queued events (commands dropped), with their attempt numbers.
    fn events(&mut self) -> Vec<(u8, EventKind)> {
        self.outputs()
            .into_iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some((e.attempt, e.kind)),
                _ => None,
            })
            .collect()
    }
}

fn id(n: usize) -> ConnectionId {
    ConnectionId::new_unchecked(n)
}

fn addr(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

fn relayed_listener() -> ConnectedPoint {
    ConnectedPoint::Listener {
        local_addr: addr("/ip4/9.9.9.9/tcp/1/p2p-circuit"),
        send_back_addr: addr("/p2p-circuit"),
    }
}

fn relayed_dialer() -> ConnectedPoint {
    ConnectedPoint::Dialer {
        address: addr("/ip4/9.9.9.9/tcp/1/p2p-circuit"),
        role_override: Endpoint::Dialer,
        port_use: PortUse::Reuse,
    }
}

fn direct_dialer(a: &str) -> ConnectedPoint {
    ConnectedPoint::Dialer {
        address: addr(a),
        role_override: Endpoint::Listener,
        port_use: PortUse::Reuse,
    }
}

fn direct_listener(a: &str) -> ConnectedPoint {
    ConnectedPoint::Listener {
        local_addr: addr("/ip4/10.0.0.2/tcp/2"),
        send_back_addr: addr(a),
    }
}

fn dial_error() -> DialFailure {
    DialFailure {
        error: "refused".into(),
        address_errors: vec![(addr("/ip4/10.0.0.1/tcp/1"), "Connection refused".into())],
    }
}

/// Runs an initiator exchange on `relayed` from stream opening to the dial request, at `ms`.
fn initiator_exchange(s: &mut Script, relayed: ConnectionId, ms: u64) -> Output {
    s.core.stream_opened(relayed, s.t(ms));
    s.core.step(
        relayed,
        Step::ConnectSent {
            addrs: vec![addr("/ip4/10.0.0.2/tcp/2")],
            at: s.t(ms + 1),
        },
    );
    s.core.step(
        relayed,
        Step::ConnectReceived {
            offer: Offer {
                addrs: vec![addr("/ip4/10.0.0.1/tcp/1")],
                unparsable: 0,
            },
            at: s.t(ms + 11),
        },
    );
    s.core.step(
        relayed,
        Step::RttMeasured {
            rtt: Duration::from_millis(10),
            at: s.t(ms + 11),
        },
    );
    s.core.step(relayed, Step::SyncSent { at: s.t(ms + 12) });
    s.core
        .exchange_done(relayed, vec![addr("/ip4/10.0.0.1/tcp/1")]);
    let outputs = s.outputs();
    outputs
        .into_iter()
        .find(|o| matches!(o, Output::Dial { .. }))
        .expect("a dial request")
}

#[test]
fn initiator_opens_a_stream_as_soon_as_the_relayed_connection_is_up() {
    let mut s = Script::new();
    s.core
        .connection_established(id(1), s.peer, &relayed_listener(), s.t(0));
    assert_eq!(
        s.outputs(),
        vec![Output::OpenStream {
            peer_id: s.peer,
            relayed_connection: id(1)
        }]
    );
}

#[test]
fn responder_waits_for_the_remote() {
    let mut s = Script::new();
    s.core
        .connection_established(id(1), s.peer, &relayed_dialer(), s.t(0));
    assert!(s.outputs().is_empty());
}

#[test]
fn initiator_success_reports_every_step_with_consistent_times() {
    let mut s = Script::new();
    s.core
        .connection_established(id(1), s.peer, &relayed_listener(), s.t(0));
    s.outputs();
    // Collect the events too, not only the dial request.
    s.core.stream_opened(id(1), s.t(5));
    s.core.step(
        id(1),
        Step::RttMeasured {
            rtt: Duration::from_millis(10),
            at: s.t(16),
        },
    );
    s.core
        .exchange_done(id(1), vec![addr("/ip4/10.0.0.1/tcp/1")]);
    let outputs = s.outputs();
    let Some(Output::Event(opened)) = outputs.first() else {
        panic!("{outputs:?}")
    };
    assert_eq!(opened.kind, EventKind::StreamOpened);
    assert_eq!(opened.role, Role::Initiator);
    assert_eq!(opened.attempt, 1);
    assert_eq!(opened.unix_nanos, ORIGIN_UNIX_NANOS + 5_000_000);
    assert_eq!(
        outputs.last(),
        Some(&Output::Dial {
            peer_id: s.peer,
            relayed_connection: id(1),
            attempt: 1,
            addrs: vec![addr("/ip4/10.0.0.1/tcp/1")],
            handshake_role: HandshakeRole::Server,
        })
    );

    s.core.dial_started(
        id(1),
        1,
        StartedDial {
            id: id(7),
            addrs: vec![addr("/ip4/10.0.0.1/tcp/1")],
            handshake_role: HandshakeRole::Server,
        },
        s.t(22),
    );
    s.core.connection_established(
        id(7),
        s.peer,
        &direct_dialer("/ip4/10.0.0.1/tcp/1"),
        s.t(30),
    );
    assert_eq!(
        s.events(),
        vec![
            (
                1,
                EventKind::DialStarted {
                    connection_id: id(7),
                    addrs: vec![addr("/ip4/10.0.0.1/tcp/1")],
                    handshake_role: HandshakeRole::Server,
                }
            ),
            (
                1,
                EventKind::DialSucceeded {
                    connection_id: id(7),
                    address: addr("/ip4/10.0.0.1/tcp/1")
                }
            ),
            (
                1,
                EventKind::AttemptFinished {
                    outcome: AttemptOutcome::Succeeded {
                        connection_id: id(7)
                    },
                    // Measured from the stream request at t = 0.
                    duration: Duration::from_millis(30),
                }
            ),
        ]
    );
}

#[test]
fn initiator_retries_after_failed_dials_then_gives_up_after_three() {
    let mut s = Script::new();
    s.core
        .connection_established(id(1), s.peer, &relayed_listener(), s.t(0));
    let mut stream_requests = s
        .outputs()
        .iter()
        .filter(|o| matches!(o, Output::OpenStream { .. }))
        .count();
    for attempt in 1..=3u8 {
        let start = u64::from(attempt) * 100;
        let dial = initiator_exchange(&mut s, id(1), start);
        assert!(matches!(dial, Output::Dial { attempt: a, .. } if a == attempt));
        let dial_id = id(10 + usize::from(attempt));
        s.core
            .dial_started(id(1), attempt, started(dial_id, vec![]), s.t(start + 20));
        s.core.dial_failed(dial_id, dial_error(), s.t(start + 30));
        let outputs = s.outputs();
        stream_requests += outputs
            .iter()
            .filter(|o| matches!(o, Output::OpenStream { .. }))
            .count();
        let kinds: Vec<_> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some((e.attempt, e.kind.clone())),
                _ => None,
            })
            .collect();
        assert!(matches!(kinds[1].1, EventKind::DialFailed { .. }));
        assert_eq!(
            kinds[2],
            (
                attempt,
                EventKind::AttemptFinished {
                    outcome: AttemptOutcome::DialFailed,
                    // Attempt 1 began at connection setup (t = 0), later ones when the previous
                    // dial failed (t = 130, 230).
                    duration: Duration::from_millis(if attempt == 1 { 130 } else { 100 }),
                }
            )
        );
        if attempt == 3 {
            assert_eq!(kinds[3], (3, EventKind::AttemptsExhausted { attempts: 3 }));
        }
    }
    // One stream per attempt: the first at connection setup, two retries.
    assert_eq!(stream_requests, 3);
    // Nothing more happens after giving up.
    s.core.stream_opened(id(1), s.t(1000));
    assert!(s.outputs().is_empty());
}

#[test]
fn initiator_does_not_retry_a_failed_exchange() {
    let mut s = Script::new();
    s.core
        .connection_established(id(1), s.peer, &relayed_listener(), s.t(0));
    s.outputs();
    s.core.exchange_failed(id(1), Failure::Unsupported, s.t(3));
    assert_eq!(
        s.events(),
        vec![(
            1,
            EventKind::AttemptFinished {
                outcome: AttemptOutcome::Unsupported,
                duration: Duration::from_millis(3)
            }
        )]
    );

    let mut s = Script::new();
    s.core
        .connection_established(id(1), s.peer, &relayed_listener(), s.t(0));
    s.core.stream_opened(id(1), s.t(1));
    s.core.exchange_failed(id(1), Failure::Timeout, s.t(10_001));
    let outputs = s.outputs();
    assert!(!outputs
        .iter()
        .skip(1)
        .any(|o| matches!(o, Output::OpenStream { .. })));
    assert!(matches!(
        outputs.last(),
        Some(Output::Event(Event {
            kind: EventKind::AttemptFinished {
                outcome: AttemptOutcome::Timeout,
                ..
            },
            ..
        }))
    ));
}

#[test]
fn responder_counts_streams_and_attributes_late_dial_results() {
    let mut s = Script::new();
    s.core
        .connection_established(id(1), s.peer, &relayed_dialer(), s.t(0));
    // Attempt 1: exchange done, dial running (slow, e.g. a SYN into the void).
    s.core.stream_opened(id(1), s.t(10));
    s.core.step(id(1), Step::SyncReceived { at: s.t(20) });
    s.core
        .exchange_done(id(1), vec![addr("/ip4/10.0.0.2/tcp/2")]);
    let dial = s.outputs().pop().unwrap();
    assert!(matches!(
        dial,
        Output::Dial {
            attempt: 1,
            handshake_role: HandshakeRole::Client,
            ..
        }
    ));
    s.core
        .dial_started(id(1), 1, started(id(5), vec![]), s.t(20));
    // Attempt 2 starts while attempt 1's dial still runs, and its exchange stalls.
    s.core.stream_opened(id(1), s.t(50));
    // Attempt 3 replaces the stalled exchange.
    s.core.stream_opened(id(1), s.t(60));
    // Attempt 1's dial fails late: it is still attempt 1's, and the responder does not retry.
    s.core.dial_failed(id(5), dial_error(), s.t(70));
    let outputs = s.outputs();
    assert!(!outputs
        .iter()
        .any(|o| matches!(o, Output::OpenStream { .. })));
    let events: Vec<_> = outputs
        .into_iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some((e.attempt, e.kind)),
            _ => None,
        })
        .collect();
    assert_eq!(
        events[0].1,
        EventKind::DialStarted {
            connection_id: id(5),
            addrs: vec![],
            handshake_role: HandshakeRole::Client,
        }
    );
    assert_eq!(events[1], (2, EventKind::StreamOpened));
    assert_eq!(
        events[2],
        (
            2,
            EventKind::AttemptFinished {
                outcome: AttemptOutcome::Superseded,
                duration: Duration::from_millis(10)
            }
        )
    );
    assert_eq!(events[3], (3, EventKind::StreamOpened));
    assert!(matches!(events[4], (1, EventKind::DialFailed { .. })));
    assert_eq!(
        events[5],
        (
            1,
            EventKind::AttemptFinished {
                outcome: AttemptOutcome::DialFailed,
                duration: Duration::from_millis(60)
            }
        )
    );
    assert_eq!(events.len(), 6);
}

#[test]
fn direct_connections_we_did_not_dial_are_reported_while_relayed() {
    let mut s = Script::new();
    // No relayed connection: nothing to report.
    s.core.connection_established(
        id(2),
        s.peer,
        &direct_listener("/ip4/10.0.0.1/tcp/1"),
        s.t(0),
    );
    assert!(s.outputs().is_empty());

    s.core
        .connection_established(id(3), s.peer, &relayed_dialer(), s.t(1));
    s.core.connection_established(
        id(4),
        s.peer,
        &direct_listener("/ip4/10.0.0.1/tcp/1"),
        s.t(2),
    );
    let outputs = s.outputs();
    let [Output::Event(e)] = outputs.as_slice() else {
        panic!("{outputs:?}")
    };
    assert_eq!(e.relayed_connection, id(3));
    assert_eq!(
        e.attempt, 0,
        "before any DCUtR stream: a connection reversal"
    );
    assert_eq!(
        e.kind,
        EventKind::UnsolicitedDirectConnection {
            connection_id: id(4),
            address: addr("/ip4/10.0.0.1/tcp/1"),
            inbound: true
        }
    );

    // Another peer's direct connection is not this upgrade's business.
    s.core.connection_established(
        id(5),
        PeerId::random(),
        &direct_listener("/ip4/10.0.0.9/tcp/1"),
        s.t(3),
    );
    assert!(s.outputs().is_empty());
}

#[test]
fn closing_the_relayed_connection_ends_exchanges_but_not_running_dials() {
    let mut s = Script::new();
    s.core
        .connection_established(id(1), s.peer, &relayed_dialer(), s.t(0));
    s.core.stream_opened(id(1), s.t(1));
    s.core.exchange_done(id(1), vec![]);
    s.core
        .dial_started(id(1), 1, started(id(9), vec![]), s.t(2));
    s.core.stream_opened(id(1), s.t(3));
    s.outputs();

    s.core.connection_closed(id(1), s.t(4));
    assert_eq!(
        s.events(),
        vec![(
            2,
            EventKind::AttemptFinished {
                outcome: AttemptOutcome::ConnectionClosed,
                duration: Duration::from_millis(1)
            }
        )]
    );
    // Attempt 1's dial still lands.
    s.core
        .connection_established(id(9), s.peer, &direct_dialer("/ip4/10.0.0.2/tcp/2"), s.t(5));
    let events = s.events();
    assert_eq!(events.len(), 2);
    assert!(matches!(
        events[1].1,
        EventKind::AttemptFinished {
            outcome: AttemptOutcome::Succeeded { .. },
            ..
        }
    ));
    // Then the connection is forgotten.
    assert!(s.core.relayed.is_empty());
    assert!(s.core.dials.is_empty());
}

#[test]
fn initiator_does_not_retry_on_a_closed_relayed_connection() {
    let mut s = Script::new();
    s.core
        .connection_established(id(1), s.peer, &relayed_listener(), s.t(0));
    initiator_exchange(&mut s, id(1), 1);
    s.core
        .dial_started(id(1), 1, started(id(8), vec![]), s.t(20));
    s.core.connection_closed(id(1), s.t(21));
    s.core.dial_failed(id(8), dial_error(), s.t(22));
    let outputs = s.outputs();
    assert!(!outputs
        .iter()
        .any(|o| matches!(o, Output::OpenStream { .. })));
    assert!(s.core.relayed.is_empty());
}

#[test]
fn unknown_ids_are_ignored() {
    let mut s = Script::new();
    s.core.stream_opened(id(1), s.t(0));
    s.core.step(id(1), Step::SyncSent { at: s.t(0) });
    s.core.exchange_done(id(1), vec![]);
    s.core.exchange_failed(id(1), Failure::Timeout, s.t(0));
    s.core.dial_failed(id(2), dial_error(), s.t(0));
    s.core.connection_closed(id(3), s.t(0));
    assert!(s.outputs().is_empty());
}

/// A responder's exchange on relayed connection 1: its stream opens at `stream_ms`, SYNC arrives
/// at `sync_ms`, and the exchange asks to dial the remote; returns the outputs.
fn responder_exchange(s: &mut Script, stream_ms: u64, sync_ms: u64) -> Vec<Output> {
    s.core.stream_opened(id(1), s.t(stream_ms));
    s.core.step(id(1), Step::SyncReceived { at: s.t(sync_ms) });
    s.core
        .exchange_done(id(1), vec![addr("/ip4/11.0.1.10/tcp/4001")]);
    s.outputs()
}

/// Runs a responder attempt `n` on relayed connection 1 up to its dial request; returns the
/// handshake role the dial asks for.
fn responder_attempt(s: &mut Script, n: u64) -> HandshakeRole {
    let role = responder_exchange(s, n * 100, n * 100 + 5)
        .into_iter()
        .find_map(|o| match o {
            Output::Dial { handshake_role, .. } => Some(handshake_role),
            _ => None,
        })
        .expect("a dial request");
    s.core.dial_started(
        id(1),
        n as u8,
        StartedDial {
            id: id(10 + n as usize),
            addrs: vec![],
            handshake_role: role,
        },
        s.t(n * 100 + 6),
    );
    s.core
        .dial_failed(id(10 + n as usize), dial_error(), s.t(n * 100 + 50));
    role
}

#[test]
fn an_adaptive_responder_takes_its_role_from_the_agent_and_else_switches_on_attempt_three() {
    use HandshakeRole::{Client, Server};
    let cases = [
        (RoleStrategy::Spec, None, [Client, Client, Client]),
        (RoleStrategy::Adaptive, None, [Client, Client, Server]),
        (
            RoleStrategy::Adaptive,
            Some("go-libp2p/0.40.0 (punchr-lab remote)"),
            [Server, Server, Server],
        ),
        (
            RoleStrategy::Adaptive,
            Some("rust-libp2p/0.57.1"),
            [Client, Client, Client],
        ),
        (
            RoleStrategy::Spec,
            Some("go-libp2p/0.40.0 (punchr-lab remote)"),
            [Client, Client, Client],
        ),
    ];
    for (strategy, agent, expected) in cases {
        let mut s = Script::new();
        s.core.set_strategy(strategy);
        s.core
            .connection_established(id(1), s.peer, &relayed_dialer(), s.t(0));
        if let Some(agent) = agent {
            s.core
                .set_remote_roles(s.peer, RemoteRoles::from_agent_version(agent));
        }
        let roles: Vec<_> = (1..=3).map(|n| responder_attempt(&mut s, n)).collect();
        assert_eq!(roles, expected, "{strategy:?} against {agent:?}");
    }
}

#[test]
fn an_attempt_ends_when_the_remotes_dial_makes_the_direct_connection_first() {
    let mut s = Script::new();
    s.core
        .connection_established(id(1), s.peer, &relayed_dialer(), s.t(0));
    responder_exchange(&mut s, 10, 20);
    s.core
        .dial_started(id(1), 1, started(id(5), vec![]), s.t(20));
    s.outputs();
    // The remote's dial arrives 45 ms later as an inbound connection; ours is still running.
    s.core.connection_established(
        id(6),
        s.peer,
        &direct_listener("/ip4/11.0.1.10/tcp/4001"),
        s.t(65),
    );
    let events = s.events();
    assert!(
        matches!(
            events.as_slice(),
            [
                (1, EventKind::UnsolicitedDirectConnection { inbound: true, .. }),
                (
                    1,
                    EventKind::AttemptFinished {
                        outcome: AttemptOutcome::RemoteDialSucceeded { .. },
                        duration,
                    }
                ),
            ] if *duration == Duration::from_millis(55)
        ),
        "{events:?}"
    );
    // Our own dial gives up 5 s later: its failure is reported, but the attempt stays ended.
    s.core.dial_failed(id(5), dial_error(), s.t(5020));
    let late = s.events();
    assert!(
        matches!(late.as_slice(), [(1, EventKind::DialFailed { .. })]),
        "{late:?}"
    );
}

#[test]
fn a_direct_connection_before_any_stream_ends_no_attempt() {
    let mut s = Script::new();
    s.core
        .connection_established(id(1), s.peer, &relayed_dialer(), s.t(0));
    s.core.connection_established(
        id(6),
        s.peer,
        &direct_listener("/ip4/11.0.1.10/tcp/4001"),
        s.t(5),
    );
    let events = s.events();
    assert!(
        matches!(
            events.as_slice(),
            [(
                0,
                EventKind::UnsolicitedDirectConnection { inbound: true, .. }
            )]
        ),
        "{events:?}"
    );
}
