//! One case per overall outcome and per attempt outcome, each an event sequence.

use super::*;

const T0: UnixNanos = 1_764_000_000_000_000_000;
const MS: UnixNanos = 1_000_000;

#[derive(Debug, Clone)]
enum Step {
    ConnectFails,
    Connected,
    Stream,
    Event(AttemptEvent),
    StreamTimeout,
    AttemptTimeout,
    Cancel,
}

fn relay() -> Multiaddr {
    "/ip4/198.18.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit"
        .parse()
        .unwrap()
}

fn direct() -> Multiaddr {
    "/ip4/198.18.3.4/tcp/4001".parse().unwrap()
}

fn started() -> Step {
    Step::Event(AttemptEvent::Started {
        at: 0,
        rtt: Some(Duration::from_millis(40)),
        addresses: vec![direct()],
    })
}

fn ended(success: bool) -> Step {
    Step::Event(AttemptEvent::Ended {
        at: 0,
        success,
        error: (!success).then(|| "dial failed".to_owned()),
    })
}

/// Runs the steps 10 ms apart and classifies with `open` connections at the end.
fn run(served: Vec<Multiaddr>, steps: &[Step], open: Vec<Multiaddr>) -> Classified {
    let mut punch = HolePunch::new(served, T0);
    let mut at = T0;
    for step in steps {
        at += 10 * MS;
        let timeout = Duration::from_secs(15);
        let next = match step.clone() {
            Step::ConnectFails => punch.connect_failed(at, "no reservation".into()),
            Step::Connected => punch.connected(at),
            Step::Stream => punch.stream_opened(at),
            Step::Event(event) => punch.attempt_event(with_time(event, at)),
            Step::StreamTimeout => punch.stream_timed_out(at, timeout),
            Step::AttemptTimeout => punch.attempt_timed_out(at, timeout),
            Step::Cancel => punch.cancelled(at),
        };
        if next == Next::Done {
            break;
        }
    }
    punch.finish(at + MS, open)
}

fn with_time(event: AttemptEvent, at: UnixNanos) -> AttemptEvent {
    match event {
        AttemptEvent::Started { rtt, addresses, .. } => {
            AttemptEvent::Started { at, rtt, addresses }
        }
        AttemptEvent::DirectDialSucceeded { .. } => AttemptEvent::DirectDialSucceeded { at },
        AttemptEvent::Ended { success, error, .. } => AttemptEvent::Ended { at, success, error },
        AttemptEvent::ProtocolError { error, .. } => AttemptEvent::ProtocolError { at, error },
        other => other,
    }
}

struct Case {
    name: &'static str,
    served: Vec<Multiaddr>,
    steps: Vec<Step>,
    open: Vec<Multiaddr>,
    outcome: Outcome,
    attempts: Vec<AttemptOutcome>,
    error: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    use AttemptOutcome as A;
    use Step::*;
    let relayed = vec![relay()];
    vec![
        Case {
            name: "relay dial fails",
            served: relayed.clone(),
            steps: vec![ConnectFails],
            open: vec![],
            outcome: Outcome::NoConnection,
            attempts: vec![],
            error: Some("no reservation"),
        },
        Case {
            name: "remote never opens the stream",
            served: relayed.clone(),
            steps: vec![Connected, StreamTimeout],
            open: vec![relay()],
            outcome: Outcome::NoStream,
            attempts: vec![],
            error: Some("/libp2p/dcutr stream was not opened after 15s"),
        },
        Case {
            name: "no stream but a direct connection: the remote dialled us",
            served: relayed.clone(),
            steps: vec![Connected, StreamTimeout],
            open: vec![relay(), direct()],
            outcome: Outcome::ConnectionReversed,
            attempts: vec![],
            error: None,
        },
        Case {
            name: "no stream, direct connection, but a direct address was served",
            served: vec![relay(), direct()],
            steps: vec![Connected, StreamTimeout],
            open: vec![direct()],
            outcome: Outcome::NoStream,
            attempts: vec![],
            error: Some("/libp2p/dcutr stream was not opened after 15s"),
        },
        Case {
            name: "first attempt punches through",
            served: relayed.clone(),
            steps: vec![Connected, Stream, started(), ended(true)],
            open: vec![direct()],
            outcome: Outcome::Success,
            attempts: vec![A::Success],
            error: None,
        },
        Case {
            name: "a plain direct dial succeeds",
            served: relayed.clone(),
            steps: vec![
                Connected,
                Stream,
                Event(AttemptEvent::DirectDialSucceeded { at: 0 }),
            ],
            open: vec![direct()],
            outcome: Outcome::Success,
            attempts: vec![A::DirectDial],
            error: None,
        },
        Case {
            name: "protocol error ends the punch",
            served: relayed.clone(),
            steps: vec![
                Connected,
                Stream,
                Event(AttemptEvent::ProtocolError {
                    at: 0,
                    error: "unexpected message type".into(),
                }),
            ],
            open: vec![relay()],
            outcome: Outcome::Failed,
            attempts: vec![A::ProtocolError],
            error: Some("unexpected message type"),
        },
        Case {
            name: "an attempt without events times out",
            served: relayed.clone(),
            steps: vec![Connected, Stream, started(), AttemptTimeout],
            open: vec![relay()],
            outcome: Outcome::Failed,
            attempts: vec![A::Timeout],
            error: Some("no hole punch event after 15s"),
        },
        Case {
            name: "three failed attempts",
            served: relayed.clone(),
            steps: vec![
                Connected,
                Stream,
                started(),
                ended(false),
                Stream,
                started(),
                ended(false),
                Stream,
                started(),
                ended(false),
            ],
            open: vec![relay()],
            outcome: Outcome::Failed,
            attempts: vec![A::Failed, A::Failed, A::Failed],
            error: Some("none of the 3 attempts succeeded"),
        },
        Case {
            name: "third time lucky",
            served: relayed.clone(),
            steps: vec![
                Connected,
                Stream,
                started(),
                ended(false),
                Stream,
                started(),
                ended(false),
                Stream,
                started(),
                ended(true),
            ],
            open: vec![direct(), relay()],
            outcome: Outcome::Success,
            attempts: vec![A::Failed, A::Failed, A::Success],
            error: None,
        },
        Case {
            name: "a failed attempt and no further stream (the original's quirk)",
            served: relayed.clone(),
            steps: vec![Connected, Stream, started(), ended(false), StreamTimeout],
            open: vec![relay()],
            outcome: Outcome::NoStream,
            attempts: vec![A::Failed],
            error: Some("/libp2p/dcutr stream was not opened after 15s"),
        },
        Case {
            name: "stopped during an attempt",
            served: relayed.clone(),
            steps: vec![Connected, Stream, started(), Cancel],
            open: vec![relay()],
            outcome: Outcome::Cancelled,
            attempts: vec![A::Cancelled],
            error: Some("cancelled"),
        },
        Case {
            name: "stopped while waiting for the stream",
            served: relayed.clone(),
            steps: vec![Connected, Cancel],
            open: vec![],
            outcome: Outcome::Cancelled,
            attempts: vec![],
            error: Some("cancelled"),
        },
        Case {
            name: "the loop ends while an attempt runs",
            served: relayed,
            steps: vec![Connected, Stream, started()],
            open: vec![],
            outcome: Outcome::Unknown,
            attempts: vec![A::Unknown],
            error: Some("unknown hole punch attempt outcome"),
        },
    ]
}

#[test]
fn every_outcome_follows_the_original_rules() {
    for case in cases() {
        let classified = run(case.served, &case.steps, case.open.clone());
        assert_eq!(classified.outcome, case.outcome, "{}", case.name);
        let attempts: Vec<AttemptOutcome> = classified.attempts.iter().map(|a| a.outcome).collect();
        assert_eq!(attempts, case.attempts, "{}", case.name);
        assert_eq!(classified.error.as_deref(), case.error, "{}", case.name);
        assert_eq!(
            classified.has_direct_conns,
            case.open.iter().any(|a| !is_relayed(a)),
            "{}",
            case.name
        );
    }
}

#[test]
fn attempts_carry_their_timing_and_addresses() {
    let classified = run(
        vec![relay()],
        &[
            Step::Connected,
            Step::Stream,
            Step::Event(AttemptEvent::DirectDialFailed {
                error: "connection refused".into(),
            }),
            started(),
            ended(true),
        ],
        vec![direct()],
    );
    let attempt = &classified.attempts[0];
    assert_eq!(attempt.opened_at, T0 + 20 * MS);
    assert_eq!(attempt.started_at, Some(T0 + 40 * MS));
    assert_eq!(attempt.ended_at, T0 + 50 * MS);
    assert_eq!(attempt.elapsed, Duration::from_millis(10));
    assert_eq!(attempt.start_rtt, Some(Duration::from_millis(40)));
    assert_eq!(
        attempt.direct_dial_error.as_deref(),
        Some("connection refused")
    );
    assert_eq!(attempt.addresses, vec![direct()]);
    assert_eq!(classified.connect_ended_at, T0 + 10 * MS);
}

#[test]
fn events_after_the_verdict_change_nothing() {
    let mut punch = HolePunch::new(vec![relay()], T0);
    punch.connected(T0);
    punch.stream_opened(T0 + MS);
    assert_eq!(
        punch.attempt_event(AttemptEvent::Ended {
            at: T0 + 2 * MS,
            success: true,
            error: None
        }),
        Next::Done
    );
    assert_eq!(punch.stream_opened(T0 + 3 * MS), Next::Done);
    assert_eq!(
        punch.finish(T0 + 4 * MS, vec![direct()]).outcome,
        Outcome::Success
    );
}
