//! Sequences of inputs for the inbound connection state machine.

use super::*;

const RELAY_A: &str =
    "/ip4/11.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit";
const RELAY_B: &str = "/ip4/11.0.0.2/udp/4001/quic-v1/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8/p2p-circuit";

fn addr(text: &str) -> Multiaddr {
    text.parse().unwrap()
}

fn tracker(max_kept: usize) -> Tracker {
    Tracker::new(TrackerLimits {
        identify_timeout: Duration::from_secs(30),
        max_kept,
        ..TrackerLimits::default()
    })
}

fn identity(dcutr: bool, addrs: &[&str]) -> Identity {
    let mut protocols = vec!["/ipfs/id/1.0.0".to_string()];
    if dcutr {
        protocols.push(DCUTR_PROTOCOL.to_string());
    }
    Identity {
        agent_version: "kubo/0.30.0".into(),
        protocols,
        listen_addrs: addrs.iter().map(|a| addr(a)).collect(),
    }
}

fn conn(n: usize) -> ConnectionId {
    ConnectionId::new_unchecked(n)
}

fn open(tracker: &mut Tracker, n: usize, peer: PeerId, now: Instant) {
    tracker.opened(
        conn(n),
        peer,
        addr("/ip4/198.18.9.9/tcp/50000"),
        1_000 + n as i64,
        now,
    );
}

fn recorded(decision: &Decision) -> Option<(RecordReason, i64, bool)> {
    match decision {
        Decision::Record {
            sighting,
            keep_alive,
        } => Some((sighting.reason, sighting.seen_at, *keep_alive)),
        _ => None,
    }
}

#[test]
fn relay_only_dcutr_peers_are_recorded_and_kept() {
    let now = Instant::now();
    let mut t = tracker(10);
    let peer = PeerId::random();
    open(&mut t, 1, peer, now);
    let decision = t.identified(
        conn(1),
        identity(true, &[RELAY_A, "/ip4/192.168.1.2/tcp/4001"]),
        5_000,
    );
    assert_eq!(
        recorded(&decision),
        Some((RecordReason::Connected, 1_001, true))
    );
    assert!(t.is_kept(conn(1)));
    assert_eq!(
        t.sizes(),
        TrackerSizes {
            connections: 1,
            awaiting: 0,
            kept: 1,
            peers: 1
        }
    );
}

#[test]
fn other_peers_are_skipped_with_their_reason() {
    let now = Instant::now();
    let mut t = tracker(10);
    let cases = [
        (identity(false, &[RELAY_A]), SkipReason::NoDcutr),
        (
            identity(true, &["/ip4/198.18.3.3/tcp/4001"]),
            SkipReason::PublicAddress,
        ),
        (
            identity(true, &["/ip4/10.0.0.2/tcp/4001"]),
            SkipReason::NoRelayAddress,
        ),
        (identity(true, &[]), SkipReason::NoRelayAddress),
    ];
    for (n, (identity, expected)) in cases.into_iter().enumerate() {
        let peer = PeerId::random();
        open(&mut t, n, peer, now);
        assert_eq!(
            t.identified(conn(n), identity, 0),
            Decision::Skip {
                peer,
                reason: expected,
                release: false
            }
        );
    }
    assert_eq!(t.sizes().awaiting, 0);
    assert_eq!(t.sizes().kept, 0);
}

#[test]
fn pushes_with_new_relays_make_new_events_and_repeats_do_not() {
    let now = Instant::now();
    let mut t = tracker(10);
    let peer = PeerId::random();
    open(&mut t, 1, peer, now);
    assert!(recorded(&t.identified(conn(1), identity(true, &[RELAY_A]), 2_000)).is_some());
    assert_eq!(
        t.identified(conn(1), identity(true, &[RELAY_A]), 3_000),
        Decision::None
    );
    let push = t.identified(conn(1), identity(true, &[RELAY_A, RELAY_B]), 4_000);
    assert_eq!(
        recorded(&push),
        Some((RecordReason::NewRelayAddresses, 4_000, true))
    );
    // Losing a relay is not news; regaining it is not either, as the peer was recorded with it.
    assert_eq!(
        t.identified(conn(1), identity(true, &[RELAY_B]), 5_000),
        Decision::None
    );
    assert_eq!(
        t.identified(conn(1), identity(true, &[RELAY_A, RELAY_B]), 6_000),
        Decision::None
    );
}

#[test]
fn every_qualifying_connection_is_an_event_but_pushes_count_per_peer() {
    let now = Instant::now();
    let mut t = tracker(10);
    let peer = PeerId::random();
    open(&mut t, 1, peer, now);
    open(&mut t, 2, peer, now);
    assert!(recorded(&t.identified(conn(1), identity(true, &[RELAY_A]), 0)).is_some());
    assert!(recorded(&t.identified(conn(2), identity(true, &[RELAY_A]), 0)).is_some());
    assert!(recorded(&t.identified(conn(1), identity(true, &[RELAY_A, RELAY_B]), 0)).is_some());
    // The other connection's periodic identify sees B, already recorded for the peer.
    assert_eq!(
        t.identified(conn(2), identity(true, &[RELAY_A, RELAY_B]), 0),
        Decision::None
    );
    assert_eq!(t.sizes().peers, 1);
}

/// go-libp2p with AutoNAT v2 (kubo) announces the address its NAT maps beside its relay
/// addresses until AutoNAT v2 servers found it unreachable: it is recorded, with the relay
/// addresses alone.
#[test]
fn a_relayed_peer_with_an_unverified_public_address_is_recorded() {
    let now = Instant::now();
    let mut t = tracker(10);
    let peer = PeerId::random();
    open(&mut t, 1, peer, now);
    let decision = t.identified(
        conn(1),
        identity(true, &[RELAY_A, "/ip4/11.129.0.10/udp/4001/quic-v1"]),
        0,
    );
    let Decision::Record { sighting, .. } = decision else {
        panic!("not recorded: {decision:?}");
    };
    assert_eq!(sighting.identity.listen_addrs, vec![addr(RELAY_A)]);
}

#[test]
fn a_peer_that_turns_public_is_released() {
    let now = Instant::now();
    let mut t = tracker(10);
    let peer = PeerId::random();
    open(&mut t, 1, peer, now);
    t.identified(conn(1), identity(true, &[RELAY_A]), 0);
    let decision = t.identified(conn(1), identity(true, &["/ip4/198.18.5.5/tcp/4001"]), 0);
    assert_eq!(
        decision,
        Decision::Skip {
            peer,
            reason: SkipReason::PublicAddress,
            release: true
        }
    );
    assert!(!t.is_kept(conn(1)));
    assert_eq!(t.sizes().kept, 0);
    // Back behind its NAT it is recorded again.
    assert!(recorded(&t.identified(conn(1), identity(true, &[RELAY_A]), 0)).is_some());
}

#[test]
fn keeping_connections_open_is_bounded() {
    let now = Instant::now();
    let mut t = tracker(2);
    let keeps: Vec<bool> = (0..4)
        .map(|n| {
            open(&mut t, n, PeerId::random(), now);
            recorded(&t.identified(conn(n), identity(true, &[RELAY_A]), 0))
                .unwrap()
                .2
        })
        .collect();
    assert_eq!(keeps, vec![true, true, false, false]);
    t.closed(conn(0));
    open(&mut t, 9, PeerId::random(), now);
    assert!(
        recorded(&t.identified(conn(9), identity(true, &[RELAY_A]), 0))
            .unwrap()
            .2
    );
}

#[test]
fn identify_that_never_comes_times_out_once() {
    let now = Instant::now();
    let mut t = tracker(10);
    let peer = PeerId::random();
    open(&mut t, 1, peer, now);
    assert!(t.expire(now + Duration::from_secs(29)).is_empty());
    let expired = t.expire(now + Duration::from_secs(30));
    assert_eq!(
        expired,
        vec![(
            conn(1),
            Decision::Skip {
                peer,
                reason: SkipReason::IdentifyTimeout,
                release: false
            }
        )]
    );
    assert!(t.expire(now + Duration::from_secs(60)).is_empty());
    // A late identify is still classified.
    assert!(recorded(&t.identified(conn(1), identity(true, &[RELAY_A]), 0)).is_some());
}

#[test]
fn closing_forgets_connections_and_peers() {
    let now = Instant::now();
    let mut t = tracker(10);
    let peer = PeerId::random();
    open(&mut t, 1, peer, now);
    open(&mut t, 2, peer, now);
    t.identified(conn(1), identity(true, &[RELAY_A]), 0);
    assert_eq!(
        t.closed(conn(2)),
        Decision::Skip {
            peer,
            reason: SkipReason::ClosedEarly,
            release: false
        }
    );
    assert_eq!(t.closed(conn(1)), Decision::None);
    assert_eq!(
        t.closed(conn(1)),
        Decision::None,
        "closing twice is harmless"
    );
    assert_eq!(t.sizes(), TrackerSizes::default());
    // After the peer is forgotten its relays count as new again.
    open(&mut t, 3, peer, now);
    assert_eq!(
        recorded(&t.identified(conn(3), identity(true, &[RELAY_A]), 0))
            .unwrap()
            .0,
        RecordReason::Connected
    );
}

#[test]
fn identify_errors_and_unknown_connections() {
    let now = Instant::now();
    let mut t = tracker(10);
    let peer = PeerId::random();
    open(&mut t, 1, peer, now);
    assert_eq!(
        t.identify_failed(conn(1)),
        Decision::Skip {
            peer,
            reason: SkipReason::IdentifyError,
            release: false
        }
    );
    assert_eq!(t.identify_failed(conn(1)), Decision::None);
    assert_eq!(
        t.identified(conn(7), identity(true, &[RELAY_A]), 0),
        Decision::None,
        "outbound connections are not tracked"
    );
}

fn sighting_addrs(decision: &Decision) -> Vec<Multiaddr> {
    match decision {
        Decision::Record { sighting, .. } => sighting.identity.listen_addrs.clone(),
        other => panic!("not recorded: {other:?}"),
    }
}

fn skipped(decision: &Decision) -> Option<SkipReason> {
    match decision {
        Decision::Skip { reason, .. } => Some(*reason),
        _ => None,
    }
}

const PRIVATE_HOP: &str =
    "/ip4/192.168.1.1/tcp/80/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit";

#[test]
fn only_relay_addresses_with_a_public_hop_are_kept() {
    let now = Instant::now();
    let mut t = tracker(10);
    let peer = PeerId::random();
    open(&mut t, 1, peer, now);
    let decision = t.identified(
        conn(1),
        identity(true, &[PRIVATE_HOP, RELAY_A, "/ip4/192.168.1.2/tcp/4001"]),
        5_000,
    );
    assert_eq!(sighting_addrs(&decision), vec![addr(RELAY_A)]);
    let other = PeerId::random();
    open(&mut t, 2, other, now);
    let decision = t.identified(conn(2), identity(true, &[PRIVATE_HOP]), 5_000);
    assert_eq!(skipped(&decision), Some(SkipReason::NoPublicRelay));
}

fn relays(count: usize, base: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let relay = PeerId::random();
            format!(
                "/ip4/11.9.{}.{}/tcp/4001/p2p/{relay}/p2p-circuit",
                (base + i) / 250,
                (base + i) % 250 + 1
            )
        })
        .collect()
}

#[test]
fn a_peer_gets_a_bounded_number_of_relay_addresses() {
    let now = Instant::now();
    let mut t = tracker(10);
    let peer = PeerId::random();
    open(&mut t, 1, peer, now);
    let many = relays(100, 0);
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let decision = t.identified(conn(1), identity(true, &many), 5_000);
    assert_eq!(sighting_addrs(&decision).len(), MAX_RELAYS_PER_PEER);
    // A push with yet more relays finds no room: nothing new to write.
    let more = relays(10, 500);
    let more: Vec<&str> = more.iter().map(String::as_str).collect();
    assert_eq!(
        t.identified(conn(1), identity(true, &more), 6_000),
        Decision::None
    );
}

#[test]
fn identify_pushes_with_new_relays_are_limited_per_peer() {
    let now = Instant::now();
    let mut t = Tracker::new(TrackerLimits {
        max_events_per_peer: 3,
        ..TrackerLimits::default()
    });
    let peer = PeerId::random();
    open(&mut t, 1, peer, now);
    let mut written = 0;
    for push in 0..10 {
        let fresh = relays(1, push);
        if recorded(&t.identified(conn(1), identity(true, &[&fresh[0]]), 5_000 + push as i64))
            .is_some()
        {
            written += 1;
        }
    }
    assert_eq!(written, 3);
    // The next window allows writes again.
    let fresh = relays(1, 100);
    let later = 5_000 + WRITE_WINDOW_NS;
    assert!(recorded(&t.identified(conn(1), identity(true, &[&fresh[0]]), later)).is_some());
}

#[test]
fn fresh_peer_ids_from_one_address_are_limited() {
    let now = Instant::now();
    let mut t = Tracker::new(TrackerLimits {
        max_peers_per_address: 4,
        ..TrackerLimits::default()
    });
    let mut reasons = Vec::new();
    for n in 0..10 {
        open(&mut t, n, PeerId::random(), now);
        let decision = t.identified(conn(n), identity(true, &[RELAY_A]), 5_000);
        reasons.push(skipped(&decision));
    }
    let limited = reasons
        .iter()
        .filter(|r| **r == Some(SkipReason::WriteLimited))
        .count();
    assert_eq!(limited, 6, "{reasons:?}");
    assert_eq!(t.sizes().awaiting, 0);
}
