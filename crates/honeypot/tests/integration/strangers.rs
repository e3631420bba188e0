//! What strangers make the honeypot record (issue 15, points 4 and 8), against the honeypot
//! started as the binary starts it, with real libp2p peers on loopback: relay addresses whose
//! relay hop is not public are not kept, fresh peer IDs from one address are limited, identify
//! pushes with ever new relay addresses on a kept connection make a bounded number of events and
//! addresses, an agent version with a NUL is stored without it (PostgreSQL refuses NUL in
//! text), and old connection events are deleted by the retention setting while it runs.

use std::collections::BTreeSet;

use crate::support::{observations_of, visitor_spec, within};
use libp2p::{Multiaddr, PeerId};
use punchr_honeypot::inbound::{SkipReason, TrackerLimits, MAX_RELAYS_PER_PEER};
use punchr_honeypot::{HoneypotConfig, Observation, RunningHoneypot};
use punchr_testutil::sim::SimNode;
use punchr_testutil::{on_both_engines, TestDb};
use sqlx::Row;

on_both_engines!(
    relay_addresses_into_private_networks_are_not_recorded,
    fresh_peer_ids_from_one_address_are_limited,
    identify_pushes_with_new_relay_addresses_are_bounded,
    an_agent_version_with_a_nul_is_stored_without_it,
    old_connection_events_are_deleted_by_the_retention,
);

async fn honeypot(
    db: &TestDb,
    dir: &std::path::Path,
    adjust: impl FnOnce(&mut HoneypotConfig),
) -> RunningHoneypot {
    let mut config = crate::support::config(dir, &db.location, &[]);
    adjust(&mut config);
    punchr_honeypot::start(&config)
        .await
        .expect("honeypot starts")
}

fn circuit(hop: &str) -> Multiaddr {
    format!("{hop}/p2p/{}/p2p-circuit", PeerId::random())
        .parse()
        .unwrap()
}

/// A visitor announcing `addrs` as its relay addresses.
async fn visitor(addrs: Vec<Multiaddr>, agent: Option<&str>) -> SimNode {
    let mut spec = visitor_spec(true);
    spec.external_addrs = addrs;
    if let Some(agent) = agent {
        spec.agent_version = agent.to_owned();
    }
    SimNode::start(spec).await.unwrap()
}

async fn stored_addresses(db: &TestDb, peer: &PeerId) -> BTreeSet<String> {
    sqlx::query(
        "SELECT m.maddr FROM connection_events ce \
         JOIN peers p ON p.id = ce.remote_peer_id \
         JOIN connection_event_addresses a ON a.connection_event_id = ce.id \
         JOIN multi_addresses m ON m.id = a.multi_address_id WHERE p.peer_id = $1",
    )
    .bind(peer.to_base58())
    .fetch_all(db.store.pool())
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get(0).unwrap())
    .collect()
}

async fn relay_addresses_into_private_networks_are_not_recorded(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let honeypot = honeypot(&db, dir.path(), |c| c.record_private_relays = false).await;
    let mut observations = honeypot.observe();
    let public = circuit("/ip4/11.0.5.5/tcp/4001");
    let mixed = visitor(
        vec![
            circuit("/ip4/192.168.1.1/tcp/80"),
            circuit("/ip4/127.0.0.1/tcp/22"),
            public.clone(),
        ],
        None,
    )
    .await;
    let lure = visitor(vec![circuit("/ip4/10.0.0.1/tcp/4001")], None).await;
    for node in [&mixed, &lure] {
        within("a connection", node.connect(honeypot.tcp_addr().unwrap()))
            .await
            .unwrap();
    }
    let seen = observations_of(&mut observations, &[mixed.peer_id(), lure.peer_id()], 1).await;
    assert!(
        matches!(&seen[&mixed.peer_id()][0], Observation::Recorded { relay_addresses, .. } if *relay_addresses == vec![public.clone()]),
        "{seen:?}"
    );
    assert_eq!(
        seen[&lure.peer_id()][0],
        Observation::Skipped {
            peer: lure.peer_id(),
            reason: SkipReason::NoPublicRelay
        }
    );
    assert_eq!(
        stored_addresses(&db, &mixed.peer_id()).await,
        BTreeSet::from([public.to_string()])
    );
    assert!(stored_addresses(&db, &lure.peer_id()).await.is_empty());
    honeypot.shutdown().await.unwrap();
}

async fn fresh_peer_ids_from_one_address_are_limited(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let honeypot = honeypot(&db, dir.path(), |c| c.max_peers_per_address = 3).await;
    let mut observations = honeypot.observe();
    let mut sybils = Vec::new();
    for _ in 0..6 {
        let node = visitor(vec![circuit("/ip4/11.0.5.5/tcp/4001")], None).await;
        within("a connection", node.connect(honeypot.tcp_addr().unwrap()))
            .await
            .unwrap();
        sybils.push(node);
    }
    let peers: Vec<PeerId> = sybils.iter().map(SimNode::peer_id).collect();
    let seen = observations_of(&mut observations, &peers, 1).await;
    let recorded = peers
        .iter()
        .filter(|p| matches!(seen[p][0], Observation::Recorded { .. }))
        .count();
    let limited = peers
        .iter()
        .filter(|p| {
            seen[p][0]
                == Observation::Skipped {
                    peer: **p,
                    reason: SkipReason::WriteLimited,
                }
        })
        .count();
    assert_eq!((recorded, limited), (3, 3), "{seen:?}");
    let events: i64 = sqlx::query("SELECT COUNT(*) FROM connection_events")
        .fetch_one(db.store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(events, 3);
    honeypot.shutdown().await.unwrap();
}

async fn events_of(db: &TestDb, peer: &PeerId) -> i64 {
    sqlx::query(
        "SELECT COUNT(*) FROM connection_events ce JOIN peers p ON p.id = ce.remote_peer_id \
         WHERE p.peer_id = $1",
    )
    .bind(peer.to_base58())
    .fetch_one(db.store.pool())
    .await
    .unwrap()
    .try_get(0)
    .unwrap()
}

/// `width` relay addresses never announced before, each through a relay of its own.
fn new_relays(width: usize) -> Vec<Multiaddr> {
    (0..width)
        .map(|_| circuit("/ip4/11.0.5.5/tcp/4001"))
        .collect()
}

/// Identify results the honeypot has received so far (the first identify and every push).
fn identifies_received(honeypot: &RunningHoneypot) -> f64 {
    punchr_testutil::http::metric_sample(
        &honeypot.metrics().encode(),
        "libp2p_identify_received_total",
    )
    .unwrap_or(0.0)
}

/// A recorded peer keeps its connection and pushes identify 30 times, each push announcing only
/// relay addresses the honeypot has never seen. One attacker announces one new address per push
/// (the events per peer are the bound), the other four (the relay addresses per peer are).
async fn identify_pushes_with_new_relay_addresses_are_bounded(db: TestDb) {
    const PUSHES: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    let honeypot = honeypot(&db, dir.path(), |_| {}).await;
    let mut observations = honeypot.observe();
    let mut attackers = Vec::new();
    for width in [1, 4] {
        let node = visitor(new_relays(width), None).await;
        within("a connection", node.connect(honeypot.tcp_addr().unwrap()))
            .await
            .unwrap();
        let seen = observations_of(&mut observations, &[node.peer_id()], 1).await;
        assert!(
            matches!(seen[&node.peer_id()][0], Observation::Recorded { .. }),
            "{seen:?}"
        );
        for push in 0..PUSHES {
            let received = identifies_received(&honeypot);
            within("an identify push", node.announce(new_relays(width)))
                .await
                .unwrap();
            within("the honeypot to receive the push", async {
                while identifies_received(&honeypot) <= received {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
            .await;
            assert_eq!(
                honeypot.metrics().tracker_sizes().kept,
                attackers.len() + 1,
                "push {push}: the attacker's connection is still kept"
            );
        }
        attackers.push((width, node));
    }
    // Shutting down writes what is queued.
    honeypot.shutdown().await.unwrap();
    let max_events = i64::from(TrackerLimits::default().max_events_per_peer);
    let mut found = Vec::new();
    for (width, node) in &attackers {
        let peer = node.peer_id();
        found.push((
            *width,
            events_of(&db, &peer).await,
            stored_addresses(&db, &peer).await.len(),
        ));
    }
    // One new address per push: events stop at the per-peer limit, one address each.
    // Four per push: addresses stop at the cap after 16 / 4 = 4 events.
    let expected = vec![
        (1, max_events, max_events as usize),
        (4, (MAX_RELAYS_PER_PEER / 4) as i64, MAX_RELAYS_PER_PEER),
    ];
    assert_eq!(
        found, expected,
        "(relay addresses per push, events stored, distinct relay addresses stored)"
    );
}

async fn an_agent_version_with_a_nul_is_stored_without_it(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let honeypot = honeypot(&db, dir.path(), |_| {}).await;
    let mut observations = honeypot.observe();
    let node = visitor(
        vec![circuit("/ip4/11.0.5.5/tcp/4001")],
        Some("go-ipfs\0/0.1"),
    )
    .await;
    within("a connection", node.connect(honeypot.tcp_addr().unwrap()))
        .await
        .unwrap();
    let seen = observations_of(&mut observations, &[node.peer_id()], 1).await;
    assert!(
        matches!(seen[&node.peer_id()][0], Observation::Recorded { .. }),
        "{seen:?}"
    );
    let agent: Option<String> = sqlx::query("SELECT agent_version FROM peers WHERE peer_id = $1")
        .bind(node.peer_id().to_base58())
        .fetch_one(db.store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(agent.as_deref(), Some("go-ipfs/0.1"));
    honeypot.shutdown().await.unwrap();
}

/// Whether the connection event `id` is still stored.
async fn event_stored(db: &TestDb, id: i64) -> bool {
    sqlx::query("SELECT COUNT(*) FROM connection_events WHERE id = $1")
        .bind(id)
        .fetch_one(db.store.pool())
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
        > 0
}

/// Waits until the connection event `id` is deleted.
async fn deleted(db: &TestDb, what: &str, id: i64) {
    within(what, async {
        while event_stored(db, id).await {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
}

/// A connection event of a fresh peer opened `age` ago, written as the honeypot writes one.
async fn seed_event(db: &TestDb, age: std::time::Duration) -> i64 {
    let remote = PeerId::random();
    let relay = format!(
        "/ip4/11.0.5.5/tcp/4001/p2p/{}/p2p-circuit",
        PeerId::random()
    );
    let opened_at = punchr_store::now_unix_nanos() - i64::try_from(age.as_nanos()).unwrap();
    db.store
        .record_connection_event(&punchr_store::ConnectionEventRecord {
            local: punchr_store::PeerInfo::bare(PeerId::random().to_base58()),
            remote: punchr_store::PeerInfo::bare(remote.to_base58()),
            connection_address: "/ip4/11.0.0.9/tcp/4001".parse().unwrap(),
            advertised_addresses: vec![relay.parse().unwrap()],
            opened_at,
        })
        .await
        .unwrap()
}

/// `--event-retention`: at start the honeypot deletes the events older than the retention and
/// keeps the newer ones; while it runs, events it recorded itself go once they are older.
async fn old_connection_events_are_deleted_by_the_retention(db: TestDb) {
    use std::time::Duration;
    let minutes = |m: u64| Duration::from_secs(m * 60);
    let dir = tempfile::tempdir().unwrap();
    let old = seed_event(&db, minutes(120)).await;
    let recent = seed_event(&db, minutes(10)).await;
    let hourly = honeypot(&db, dir.path(), |c| c.event_retention = minutes(60)).await;
    deleted(&db, "the 2 h old event to be deleted at start", old).await;
    assert!(
        event_stored(&db, recent).await,
        "an event within the retention is kept"
    );
    hourly.shutdown().await.unwrap();

    let short = honeypot(&db, dir.path(), |c| {
        c.event_retention = Duration::from_secs(2)
    })
    .await;
    let mut observations = short.observe();
    let node = visitor(vec![circuit("/ip4/11.0.5.5/tcp/4001")], None).await;
    within("a connection", node.connect(short.tcp_addr().unwrap()))
        .await
        .unwrap();
    let seen = observations_of(&mut observations, &[node.peer_id()], 1).await;
    let Observation::Recorded { event_id, .. } = seen[&node.peer_id()][0] else {
        panic!("the visitor is recorded: {seen:?}");
    };
    deleted(
        &db,
        "the visitor's event to be deleted while running",
        event_id,
    )
    .await;
    assert!(!event_stored(&db, recent).await);
    short.shutdown().await.unwrap();
}
