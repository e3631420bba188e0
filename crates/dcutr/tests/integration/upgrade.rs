//! Successful upgrades on loopback, over TCP and QUIC, against the stock `libp2p-dcutr` in both
//! roles and against ourselves.
//!
//! On loopback TCP only the responder's (A's) dial can succeed. There is no NAT to drop the first
//! SYN, so there is never a simultaneous open: the initiator's (B's) dial reaches A's listener
//! (directly, or after libp2p-tcp re-dials from a fresh port because A's connection already
//! holds the 4-tuple), and since B dials with the role overridden both ends wait as responders
//! of the security handshake until the 10 s transport timeout. The stock crate behaves the same
//! (it then retries and reports `AttemptsExceeded(3)` although a direct connection exists). So
//! over TCP the tests check B's steps up to its dial plus the direct connection that A's dial
//! made (reported to B as unsolicited), and over QUIC, where both dials succeed, everything.

use crate::common::{assert_consistent_times, with_peer, Bed, Dcutr, Peer, Transport};
use punchr_dcutr::{AttemptOutcome, EventKind, Role};

const INITIATOR_STEPS: [&str; 8] = [
    "stream_opened",
    "connect_sent",
    "connect_received",
    "rtt_measured",
    "sync_sent",
    "dial_started",
    "dial_succeeded",
    "attempt_finished",
];

const RESPONDER_STEPS: [&str; 7] = [
    "stream_opened",
    "connect_received",
    "connect_sent",
    "sync_received",
    "dial_started",
    "dial_succeeded",
    "attempt_finished",
];

/// Whether a side got what it can get on `transport`: its own dial's success, or over TCP for
/// the initiator, the direct connection that the responder's dial made.
fn finished(peer: &Peer, transport: Transport) -> bool {
    let initiator_on_tcp = transport == Transport::Tcp && peer.reserved;
    match peer.dcutr {
        Dcutr::Ours if initiator_on_tcp => peer.steps(1).contains(&"unsolicited_direct_connection"),
        Dcutr::Ours => peer.succeeded(),
        // The stock initiator reports only after its third failed dial (30 s): do not wait.
        Dcutr::Stock if initiator_on_tcp => true,
        Dcutr::Stock => peer.stock_results.iter().any(|r| r.is_ok()),
        Dcutr::Without => true,
    }
}

/// Runs the bed until both sides finished and a direct connection exists on both.
async fn punch(bed: &mut Bed, transport: Transport) {
    bed.connect().await;
    bed.run_until(|b, a| {
        finished(b, transport)
            && finished(a, transport)
            && !b.direct.is_empty()
            && !a.direct.is_empty()
    })
    .await;
}

/// The steps of our first successful attempt, without reports of connections we did not dial.
fn successful_attempt(peer: &Peer) -> (u8, Vec<&'static str>) {
    let (attempt, _) = peer
        .outcomes()
        .into_iter()
        .find(|(_, o)| {
            matches!(
                o,
                AttemptOutcome::Succeeded { .. } | AttemptOutcome::RemoteDialSucceeded { .. }
            )
        })
        .unwrap_or_else(|| panic!("no successful attempt: {:#?}", peer.events));
    let steps = peer
        .steps(attempt)
        .into_iter()
        .filter(|s| *s != "unsolicited_direct_connection")
        .collect();
    (attempt, steps)
}

/// Checks a successful attempt's steps against `expected` (which ends in our dial's success and
/// the attempt's end). Both sides dial, so the remote's connection may be established first: the
/// attempt then ends before our own dial reports (if it ever does).
fn assert_steps(steps: &[&str], expected: &[&str], events: &[punchr_dcutr::Event]) {
    let (before, after) = expected.split_at(expected.len() - 2);
    assert_eq!(
        &steps[..before.len().min(steps.len())],
        before,
        "{events:#?}"
    );
    let tail = &steps[before.len()..];
    let remote_won = [
        vec!["attempt_finished"],
        vec!["attempt_finished", "dial_succeeded"],
    ];
    assert!(
        tail == after || remote_won.iter().any(|t| t == tail),
        "{tail:?} after {before:?}: {events:#?}"
    );
}

/// Checks our initiator's record: the steps in order, the addresses both sides offered, the RTT.
fn check_initiator(bed: &mut Bed, transport: Transport) {
    let attempt = match transport {
        Transport::Quic => {
            let (attempt, steps) = successful_attempt(&bed.b);
            assert_steps(&steps, &INITIATOR_STEPS, &bed.b.events);
            attempt
        }
        Transport::Tcp => {
            let steps = bed.b.steps(1);
            assert_eq!(steps[..6], INITIATOR_STEPS[..6], "{:#?}", bed.b.events);
            let reversed = bed.b.events.iter().find_map(|e| match &e.kind {
                EventKind::UnsolicitedDirectConnection { inbound, .. } => Some(*inbound),
                _ => None,
            });
            assert_eq!(reversed, Some(true), "A's dial arrives at B's listener");
            1
        }
    };
    let own = with_peer(&bed.b_addr, bed.b.peer_id());
    let remote = with_peer(&bed.a_addr, bed.a.peer_id());
    for e in bed.b.events.iter().filter(|e| e.attempt == attempt) {
        assert_eq!(e.role, Role::Initiator);
        assert_eq!(e.peer_id, bed.a.peer_id());
        match &e.kind {
            EventKind::ConnectSent { addrs } => assert_eq!(addrs, &vec![own.clone()]),
            EventKind::ConnectReceived { addrs, unparsable } => {
                assert_eq!(addrs, &vec![remote.clone()]);
                assert_eq!(*unparsable, 0);
            }
            EventKind::RttMeasured { rtt } => assert!(!rtt.is_zero()),
            EventKind::DialStarted { addrs, .. } => assert_eq!(addrs, &vec![remote.clone()]),
            _ => {}
        }
    }
    assert_consistent_times(&mut bed.b);
}

/// Checks our responder's record.
fn check_responder(bed: &mut Bed) {
    let (attempt, steps) = successful_attempt(&bed.a);
    assert_steps(&steps, &RESPONDER_STEPS, &bed.a.events);
    let own = with_peer(&bed.a_addr, bed.a.peer_id());
    let remote = with_peer(&bed.b_addr, bed.b.peer_id());
    for e in bed.a.events.iter().filter(|e| e.attempt == attempt) {
        assert_eq!(e.role, Role::Responder);
        match &e.kind {
            EventKind::ConnectSent { addrs } => assert_eq!(addrs, &vec![own.clone()]),
            EventKind::ConnectReceived { addrs, .. } => assert_eq!(addrs, &vec![remote.clone()]),
            EventKind::DialStarted { addrs, .. } => assert_eq!(addrs, &vec![remote.clone()]),
            EventKind::RttMeasured { .. } | EventKind::SyncSent => {
                panic!("the responder neither measures the RTT nor sends SYNC")
            }
            _ => {}
        }
    }
    assert_consistent_times(&mut bed.a);
}

fn check_stock_succeeded(peer: &Peer) {
    assert!(
        peer.stock_results.iter().any(|r| r.is_ok()),
        "stock DCUtR reported {:?}",
        peer.stock_results
    );
}

async fn ours_initiator_with_stock_responder(transport: Transport) {
    let mut bed = Bed::new(transport, Dcutr::Ours, Dcutr::Stock).await;
    let (b_addr, a_addr) = (bed.b_addr.clone(), bed.a_addr.clone());
    bed.b.offer(b_addr);
    bed.a.offer(a_addr);
    punch(&mut bed, transport).await;
    check_initiator(&mut bed, transport);
    check_stock_succeeded(&bed.a);
}

async fn stock_initiator_with_ours_responder(transport: Transport) {
    let mut bed = Bed::new(transport, Dcutr::Stock, Dcutr::Ours).await;
    let (b_addr, a_addr) = (bed.b_addr.clone(), bed.a_addr.clone());
    bed.b.offer(b_addr);
    bed.a.offer(a_addr);
    punch(&mut bed, transport).await;
    check_responder(&mut bed);
    if transport == Transport::Quic {
        check_stock_succeeded(&bed.b);
    }
}

/// Ours on both sides, with the two candidate sources the stock crate does not have: a confirmed
/// external address (B) and an address added through the API (A).
async fn ours_with_ours(transport: Transport) {
    let mut bed = Bed::new(transport, Dcutr::Ours, Dcutr::Ours).await;
    let (b_addr, a_addr) = (bed.b_addr.clone(), bed.a_addr.clone());
    bed.b.confirm(b_addr);
    bed.a.ours().add_candidate(a_addr);
    punch(&mut bed, transport).await;
    check_initiator(&mut bed, transport);
    check_responder(&mut bed);
}

#[tokio::test]
async fn tcp_ours_initiator_with_stock_responder() {
    ours_initiator_with_stock_responder(Transport::Tcp).await;
}

#[tokio::test]
async fn tcp_stock_initiator_with_ours_responder() {
    stock_initiator_with_ours_responder(Transport::Tcp).await;
}

#[tokio::test]
async fn tcp_ours_with_ours() {
    ours_with_ours(Transport::Tcp).await;
}

#[tokio::test]
async fn quic_ours_initiator_with_stock_responder() {
    ours_initiator_with_stock_responder(Transport::Quic).await;
}

#[tokio::test]
async fn quic_stock_initiator_with_ours_responder() {
    stock_initiator_with_ours_responder(Transport::Quic).await;
}

#[tokio::test]
async fn quic_ours_with_ours() {
    ours_with_ours(Transport::Quic).await;
}
