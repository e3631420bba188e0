//! Hole punches that cannot work, and direct connections that DCUtR did not make.
//!
//! Both peers offer only a closed TCP port on loopback, so every hole-punch dial is refused at
//! once: the initiator must make exactly three attempts, each on a new stream, and then give up.

use crate::common::{closed_tcp_addr, with_peer, Bed, Dcutr, Peer, Transport};
use libp2p::Multiaddr;
use punchr_dcutr::{AttemptOutcome, EventKind, Role, MAX_ATTEMPTS};

const INITIATOR_STEPS: [&str; 8] = [
    "stream_opened",
    "connect_sent",
    "connect_received",
    "rtt_measured",
    "sync_sent",
    "dial_started",
    "dial_failed",
    "attempt_finished",
];

const RESPONDER_STEPS: [&str; 7] = [
    "stream_opened",
    "connect_received",
    "connect_sent",
    "sync_received",
    "dial_started",
    "dial_failed",
    "attempt_finished",
];

/// A bed where each peer offers only a closed port; returns the bed and the two closed
/// addresses as offered (B's, A's).
async fn unreachable_bed(b: Dcutr, a: Dcutr) -> Bed {
    let mut bed = Bed::new(Transport::Tcp, b, a).await;
    for peer in [&mut bed.b, &mut bed.a] {
        let closed = closed_tcp_addr();
        match peer.dcutr {
            Dcutr::Ours => peer.ours().add_candidate(closed),
            _ => peer.offer(closed),
        }
    }
    bed
}

/// Whether our side has seen all it will see.
fn initiator_done(b: &Peer) -> bool {
    match b.dcutr {
        Dcutr::Ours => b
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::AttemptsExhausted { .. })),
        _ => !b.stock_results.is_empty(),
    }
}

fn responder_done(a: &Peer) -> bool {
    match a.dcutr {
        Dcutr::Ours => a.outcomes().len() == usize::from(MAX_ATTEMPTS),
        // The stock responder reports nothing about failed dials.
        _ => true,
    }
}

/// The addresses a peer sent, or received, in its first CONNECT.
fn first_connect(peer: &Peer, sent: bool) -> Vec<Multiaddr> {
    peer.events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ConnectSent { addrs } if sent => Some(addrs.clone()),
            EventKind::ConnectReceived { addrs, .. } if !sent => Some(addrs.clone()),
            _ => None,
        })
        .expect("a CONNECT each way")
}

fn check_initiator(bed: &mut Bed) {
    let b = &bed.b;
    for attempt in 1..=MAX_ATTEMPTS {
        let mut steps = b.steps(attempt);
        if attempt == MAX_ATTEMPTS {
            assert_eq!(steps.pop(), Some("attempts_exhausted"));
        }
        assert_eq!(steps, INITIATOR_STEPS, "attempt {attempt}: {:#?}", b.events);
    }
    assert!(b.steps(MAX_ATTEMPTS + 1).is_empty(), "no fourth attempt");
    assert!(b.events.iter().all(|e| e.role == Role::Initiator));
    let outcomes = b.outcomes();
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes
        .iter()
        .all(|(_, o)| *o == AttemptOutcome::DialFailed));
    check_dial_errors(b);
}

fn check_responder(bed: &mut Bed) {
    let a = &bed.a;
    for attempt in 1..=MAX_ATTEMPTS {
        assert_eq!(
            a.steps(attempt),
            RESPONDER_STEPS,
            "attempt {attempt}: {:#?}",
            a.events
        );
    }
    assert!(a.events.iter().all(|e| e.role == Role::Responder));
    check_dial_errors(a);
}

/// Every dial failure names the one address dialed and says why it failed.
fn check_dial_errors(peer: &Peer) {
    let remote_offer = peer.events.iter().find_map(|e| match &e.kind {
        EventKind::ConnectReceived { addrs, .. } => Some(addrs.clone()),
        _ => None,
    });
    let remote_offer = remote_offer.expect("a CONNECT was received");
    let failures: Vec<_> = peer
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::DialFailed { failure, .. } => {
                Some((failure.error.clone(), failure.address_errors.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 3);
    for (error, address_errors) in failures {
        assert!(!error.is_empty());
        let [(addr, cause)] = address_errors.as_slice() else {
            panic!("one address, one error: {address_errors:?}")
        };
        // The swarm dials the offered address with `/p2p/<remote>` (already there).
        assert_eq!(vec![addr.clone()], remote_offer);
        assert!(!cause.is_empty());
    }
}

#[tokio::test]
async fn failed_dials_ours_initiator_with_stock_responder() {
    let mut bed = unreachable_bed(Dcutr::Ours, Dcutr::Stock).await;
    bed.connect().await;
    bed.run_until(|b, a| initiator_done(b) && responder_done(a))
        .await;
    check_initiator(&mut bed);
    assert!(bed.b.direct.is_empty() && bed.a.direct.is_empty());
    // The stock responder stays silent about its failed dials.
    assert!(bed.a.stock_results.is_empty());
}

#[tokio::test]
async fn failed_dials_stock_initiator_with_ours_responder() {
    let mut bed = unreachable_bed(Dcutr::Stock, Dcutr::Ours).await;
    bed.connect().await;
    bed.run_until(|b, a| initiator_done(b) && responder_done(a))
        .await;
    check_responder(&mut bed);
    let [Err(error)] = bed.b.stock_results.as_slice() else {
        panic!("stock initiator: {:?}", bed.b.stock_results)
    };
    assert!(error.contains("AttemptsExceeded(3)"), "{error}");
    assert!(bed.b.direct.is_empty() && bed.a.direct.is_empty());
}

#[tokio::test]
async fn failed_dials_ours_with_ours() {
    let mut bed = unreachable_bed(Dcutr::Ours, Dcutr::Ours).await;
    bed.connect().await;
    bed.run_until(|b, a| initiator_done(b) && responder_done(a))
        .await;
    check_initiator(&mut bed);
    check_responder(&mut bed);
    // What one side sent is what the other received, and it is the closed port.
    let (b, a) = (&bed.b, &bed.a);
    assert_eq!(first_connect(b, true), first_connect(a, false));
    assert_eq!(first_connect(a, true), first_connect(b, false));
    let [closed] = first_connect(a, true).try_into().unwrap();
    assert!(closed
        .to_string()
        .ends_with(&format!("/p2p/{}", a.peer_id())));
    assert!(bed.b.direct.is_empty() && bed.a.direct.is_empty());
}

/// The remote (B) does not speak DCUtR and dials us (A) directly instead, as go-libp2p's
/// "unilateral upgrade" does: we report a connection reversal before any attempt.
#[tokio::test]
async fn direct_connection_without_dcutr_is_reported_as_unsolicited() {
    let mut bed = Bed::new(Transport::Tcp, Dcutr::Without, Dcutr::Ours).await;
    bed.connect().await;
    bed.run_until(|b, _| !b.relayed.is_empty()).await;
    let a_addr = with_peer(&bed.a_addr, bed.a.peer_id());
    bed.b.swarm.dial(a_addr).unwrap();
    bed.run_until(|_, a| !a.events.is_empty() && !a.direct.is_empty())
        .await;

    let [event] = bed.a.events.as_slice() else {
        panic!("{:#?}", bed.a.events)
    };
    assert_eq!(event.role, Role::Responder);
    assert_eq!(event.attempt, 0, "no DCUtR stream was opened");
    assert_eq!(event.peer_id, bed.b.peer_id());
    let EventKind::UnsolicitedDirectConnection {
        connection_id,
        inbound,
        ..
    } = &event.kind
    else {
        panic!("{event:?}")
    };
    assert!(*inbound);
    assert!(bed.a.direct.contains(connection_id));
}
