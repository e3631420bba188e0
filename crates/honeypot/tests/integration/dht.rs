//! The honeypot in a simulated DHT of 30 rust-libp2p nodes on loopback: one walk reaches every
//! DHT server, NATed DCUtR peers that find the honeypot through the DHT are recorded with their
//! relay addresses in the real store (on both engines), other peers are not, and an identify
//! push with a new relay address becomes a new connection event.

use std::collections::{BTreeSet, HashSet};

use crate::support::{dht, first_walk, http_get, observations_of, shutdown_all, within};
use futures::future::join_all;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use punchr_honeypot::inbound::{RecordReason, SkipReason};
use punchr_honeypot::Observation;
use punchr_testutil::sim::{NodeSpec, SimNode};
use punchr_testutil::{on_both_engines, TestDb};
use sqlx::Row;

on_both_engines!(the_honeypot_walks_the_dht_and_records_nated_dcutr_peers);

/// Events stored for a peer, oldest first, each with its advertised addresses.
async fn stored_events(db: &TestDb, peer: &PeerId) -> Vec<(i64, BTreeSet<String>, String, String)> {
    let rows = sqlx::query(
        "SELECT ce.id, p.agent_version, p.protocols FROM connection_events ce \
         JOIN peers p ON p.id = ce.remote_peer_id WHERE p.peer_id = $1 ORDER BY ce.id",
    )
    .bind(peer.to_base58())
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    let mut events = Vec::new();
    for row in rows {
        let id: i64 = row.try_get(0).unwrap();
        let addresses = sqlx::query(
            "SELECT m.maddr FROM connection_event_addresses a JOIN multi_addresses m ON m.id = a.multi_address_id \
             WHERE a.connection_event_id = $1",
        )
        .bind(id)
        .fetch_all(db.store.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.try_get::<String, _>(0).unwrap())
        .collect();
        events.push((
            id,
            addresses,
            row.try_get(1).unwrap(),
            row.try_get(2).unwrap(),
        ));
    }
    events
}

fn via(relay: &PeerId, addresses: &BTreeSet<String>) -> bool {
    let relay = format!("/p2p/{relay}/p2p-circuit");
    addresses.iter().any(|a| a.contains(&relay))
}

/// One 30-node DHT at a time: the two engines' runs side by side on a loaded 2-core CI machine
/// missed servers in the walk and the honeypot in lookups.
static ONE_DHT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn the_honeypot_walks_the_dht_and_records_nated_dcutr_peers(db: TestDb) {
    let _one = ONE_DHT.lock().await;
    // 20 public DHT servers: 0 and 1 are relays, 2 and 3 speak DCUtR.
    let servers = dht(20, 2, 2).await;
    let addr = |i: usize| servers[i].addr().unwrap().clone();
    let (relay_a, relay_b) = (servers[0].peer_id(), servers[1].peer_id());
    let unreachable: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{}", PeerId::random())
        .parse()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::config(dir.path(), &db.location, &[addr(5), unreachable]);
    let honeypot = punchr_honeypot::start(&config)
        .await
        .expect("honeypot starts");
    let mut observations = honeypot.observe();

    // One walk reaches every DHT server, from one of them, past a dead bootstrap peer.
    let report = first_walk(&honeypot).await;
    let reached: HashSet<PeerId> = report.reached.iter().copied().collect();
    for server in &servers {
        assert!(
            reached.contains(&server.peer_id()),
            "walk missed {}: {report:?}",
            server.peer_id()
        );
    }
    assert_eq!(
        reached.len(),
        servers.len(),
        "only DHT servers answer: {report:?}"
    );
    assert!(
        report.failed >= 1,
        "the unreachable bootstrap peer counts as failed: {report:?}"
    );
    assert!(!report.interrupted);

    // Ten NATed peers and the two public DCUtR servers look the honeypot up in the DHT.
    let start = |dcutr: bool, relay: Option<Multiaddr>| async move {
        let node = SimNode::start(NodeSpec::nated(dcutr)).await.unwrap();
        if let Some(relay) = relay {
            within("a reservation", node.reserve(relay)).await.unwrap();
        }
        node
    };
    let nated_dcutr = join_all((0..6).map(|_| start(true, Some(addr(0))))).await;
    let mut others: Vec<(PeerId, SkipReason, SimNode)> =
        join_all((0..3).map(|_| start(false, Some(addr(0)))))
            .await
            .into_iter()
            .map(|node| (node.peer_id(), SkipReason::NoDcutr, node))
            .collect();
    let no_relay = start(true, None).await;
    others.push((no_relay.peer_id(), SkipReason::NoRelayAddress, no_relay));
    within("a reservation", servers[3].reserve(addr(1)))
        .await
        .unwrap();
    let visitors: Vec<&SimNode> = nated_dcutr
        .iter()
        .chain(others.iter().map(|(_, _, n)| n))
        .collect();
    join_all(visitors.iter().map(|node| async {
        node.add_peers(vec![addr(6), addr(7), addr(8)])
            .await
            .unwrap();
        let closest = within("a lookup", node.lookup(honeypot.peer_id()))
            .await
            .unwrap();
        assert!(
            closest.contains(&honeypot.peer_id()),
            "the DHT hands out the honeypot after its walk"
        );
    }))
    .await;
    // Servers are already connected to the honeypot from its walk; they open a new connection.
    let honeypot_addr = honeypot.tcp_addr().unwrap();
    for server in &servers[2..4] {
        within("a connection", server.connect(honeypot_addr.clone()))
            .await
            .unwrap();
    }

    let mut watched: Vec<PeerId> = visitors.iter().map(|n| n.peer_id()).collect();
    watched.extend(servers[2..4].iter().map(SimNode::peer_id));
    let seen = observations_of(&mut observations, &watched, 1).await;
    for node in &nated_dcutr {
        match &seen[&node.peer_id()][0] {
            Observation::Recorded {
                reason,
                relay_addresses,
                ..
            } => {
                assert_eq!(*reason, RecordReason::Connected);
                assert!(relay_addresses
                    .iter()
                    .all(|a| a.iter().any(|p| p == Protocol::P2p(relay_a))));
            }
            other => panic!("NATed DCUtR peer not recorded: {other:?}"),
        }
    }
    for (peer, reason, _) in &others {
        assert_eq!(
            seen[peer][0],
            Observation::Skipped {
                peer: *peer,
                reason: *reason
            }
        );
    }
    // A public DCUtR server is skipped; one that holds a reservation advertises a relay address
    // beside its public one, as a NATed kubo does before AutoNAT v2 found its mapped address
    // unreachable, and identify cannot tell the two apart: it is recorded.
    let public = servers[2].peer_id();
    assert_eq!(
        seen[&public][0],
        Observation::Skipped {
            peer: public,
            reason: SkipReason::PublicAddress
        }
    );
    // Its connection from the walk came before the new one.
    let reserved = servers[3].peer_id();
    let mut reserved_seen = seen[&reserved].clone();
    let is_record = |o: &Observation| matches!(o, Observation::Recorded { .. });
    if !reserved_seen.iter().any(is_record) {
        let more = observations_of(&mut observations, &[reserved], 1).await;
        reserved_seen.extend(more.into_values().flatten());
    }
    assert!(
        reserved_seen.iter().any(
            |o| matches!(o, Observation::Recorded { relay_addresses, .. }
            if via(&relay_b, &relay_addresses.iter().map(|a| a.to_string()).collect()))
        ),
        "{reserved_seen:?}"
    );

    // In the database: exactly the NATed DCUtR peers, with agent, protocols and relay addresses.
    let stored: BTreeSet<String> = sqlx::query(
        "SELECT DISTINCT p.peer_id FROM connection_events ce JOIN peers p ON p.id = ce.remote_peer_id",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.try_get::<String, _>(0).unwrap())
    .collect();
    let expected: BTreeSet<String> = nated_dcutr
        .iter()
        .map(|n| n.peer_id().to_base58())
        .chain([reserved.to_base58()])
        .collect();
    assert_eq!(stored, expected);
    for node in &nated_dcutr {
        let events = stored_events(&db, &node.peer_id()).await;
        assert_eq!(events.len(), 1);
        let (_, addresses, agent, protocols) = &events[0];
        assert!(via(&relay_a, addresses), "{addresses:?}");
        assert!(agent.starts_with("punchr-sim/"), "{agent}");
        assert!(protocols.contains("/libp2p/dcutr"), "{protocols}");
    }

    // A second reservation reaches the honeypot as an identify push: a new event.
    let pushed = &nated_dcutr[0];
    within("a second reservation", pushed.reserve(addr(1)))
        .await
        .unwrap();
    let seen = observations_of(&mut observations, &[pushed.peer_id()], 1).await;
    assert!(
        matches!(
            &seen[&pushed.peer_id()][0],
            Observation::Recorded {
                reason: RecordReason::NewRelayAddresses,
                ..
            }
        ),
        "{seen:?}"
    );
    let events = stored_events(&db, &pushed.peer_id()).await;
    assert_eq!(events.len(), 2);
    assert!(
        !via(&relay_b, &events[0].1) && via(&relay_b, &events[1].1),
        "{events:?}"
    );

    // The walk and the events are exported.
    let (status, metrics) = http_get(honeypot.telemetry_addr(), "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("honeypot_completed_walks_total 1"),
        "{metrics}"
    );
    // Every event written is counted. (The reserved public server may be recorded on one or two
    // of its connections, as they come, so the count is read from the database.)
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM connection_events")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert!(events >= 8, "{events} connection events");
    assert!(
        metrics.contains(&format!(
            r#"honeypot_handled_connections_total{{status="ok"}} {events}"#
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("honeypot_walk_reached_peers {}", servers.len())),
        "{metrics}"
    );
    assert_eq!(http_get(honeypot.telemetry_addr(), "/readyz").await.0, 200);

    honeypot.shutdown().await.unwrap();
    shutdown_all(nated_dcutr).await;
    shutdown_all(others.into_iter().map(|(_, _, n)| n).collect()).await;
    shutdown_all(servers).await;
}
