//! Inbound connections at the edges: identify that never comes, churn, connection limits, and
//! several connections of one peer. Engine-independent, so on SQLite only.

use std::time::Duration;

use crate::support::{observations_of, visitor_spec, within};
use futures::StreamExt;
use punchr_honeypot::inbound::{RecordReason, SkipReason, TrackerSizes};
use punchr_honeypot::{Observation, RunningHoneypot};
use punchr_testutil::sim::SimNode;
use punchr_testutil::TestDb;

async fn honeypot(
    db: &TestDb,
    dir: &std::path::Path,
    adjust: impl FnOnce(&mut punchr_honeypot::HoneypotConfig),
) -> RunningHoneypot {
    let mut config = crate::support::config(dir, &db.location, &[]);
    adjust(&mut config);
    punchr_honeypot::start(&config)
        .await
        .expect("honeypot starts")
}

/// Polls the honeypot's state sizes until `done` holds.
async fn sizes_until(honeypot: &RunningHoneypot, what: &str, done: impl Fn(TrackerSizes) -> bool) {
    within(what, async {
        while !done(honeypot.metrics().tracker_sizes()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_identify_is_given_up_after_the_deadline() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let honeypot = honeypot(&db, dir.path(), |c| {
        c.identify_timeout = Duration::from_secs(1)
    })
    .await;
    let mut observations = honeypot.observe();
    let mut spec = visitor_spec(true);
    spec.identify = false;
    let silent = SimNode::start(spec).await.unwrap();
    within("a connection", silent.connect(honeypot.tcp_addr().unwrap()))
        .await
        .unwrap();
    let seen = observations_of(&mut observations, &[silent.peer_id()], 1).await;
    let peer = silent.peer_id();
    assert_eq!(
        seen[&peer],
        vec![Observation::Skipped {
            peer,
            reason: SkipReason::IdentifyTimeout
        }]
    );
    sizes_until(&honeypot, "nothing awaiting identify", |s| {
        s.awaiting == 0 && s.connections == 1
    })
    .await;
    silent.shutdown().await;
    sizes_until(&honeypot, "the connection forgotten", |s| {
        s == TrackerSizes::default()
    })
    .await;
    honeypot.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_of_a_peer_is_identified_on_its_own() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let honeypot = honeypot(&db, dir.path(), |_| {}).await;
    let mut observations = honeypot.observe();
    let visitor = SimNode::start(visitor_spec(true)).await.unwrap();
    let addr = honeypot.tcp_addr().unwrap();
    within("a connection", visitor.connect(addr.clone()))
        .await
        .unwrap();
    let first = observations_of(&mut observations, &[visitor.peer_id()], 1).await;
    // The second connection's identify finishes while the first one is long done; the original
    // honeypot missed such events and waited forever (punchr-original.md §14.8).
    within("a second connection", visitor.connect(addr))
        .await
        .unwrap();
    let second = observations_of(&mut observations, &[visitor.peer_id()], 1).await;
    for seen in [first, second] {
        assert!(matches!(
            seen[&visitor.peer_id()][0],
            Observation::Recorded {
                reason: RecordReason::Connected,
                ..
            }
        ));
    }
    sizes_until(&honeypot, "two kept connections of one peer", |s| {
        s.kept == 2 && s.peers == 1
    })
    .await;
    visitor.shutdown().await;
    sizes_until(&honeypot, "the peer forgotten", |s| {
        s == TrackerSizes::default()
    })
    .await;
    honeypot.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_leaves_no_state_behind() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let honeypot = honeypot(&db, dir.path(), |_| {}).await;
    let addr = honeypot.tcp_addr().unwrap();
    let honeypot_ref = &honeypot;
    // Each peer connects, stays until the honeypot has decided about it, and leaves. (A peer
    // that hangs up right after identify may be gone before the honeypot reads its answer;
    // libp2p drops a closed connection's unread streams.)
    let visits = futures::stream::iter(0..120)
        .map(|i| {
            let addr = addr.clone();
            async move {
                let dcutr = i % 3 != 0;
                let mut observations = honeypot_ref.observe();
                let node = SimNode::start(visitor_spec(dcutr)).await.unwrap();
                within("a connection", node.connect(addr)).await.unwrap();
                let seen = observations_of(&mut observations, &[node.peer_id()], 1).await;
                node.shutdown().await;
                (dcutr, seen.into_values().next().unwrap().remove(0))
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for (dcutr, observation) in &visits {
        let recorded = matches!(observation, Observation::Recorded { .. });
        assert_eq!(recorded, *dcutr, "{observation:?}");
    }
    sizes_until(&honeypot, "every connection forgotten", |s| {
        s == TrackerSizes::default()
    })
    .await;
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM connection_events")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(events, 80);
    honeypot.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_connections_are_limited() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let honeypot = honeypot(&db, dir.path(), |c| c.max_incoming = 3).await;
    let addr = honeypot.tcp_addr().unwrap();
    let mut holders = Vec::new();
    for _ in 0..3 {
        let node = SimNode::start(visitor_spec(false)).await.unwrap();
        within("a connection", node.connect(addr.clone()))
            .await
            .unwrap();
        holders.push(node);
    }
    sizes_until(&honeypot, "three tracked connections", |s| {
        s.connections == 3
    })
    .await;
    let late = SimNode::start(visitor_spec(true)).await.unwrap();
    let refused = within("a refused visit", late.visit(addr.clone()))
        .await
        .expect_err("a fourth connection is refused");
    // Refused by the honeypot's limit: connected, then closed by it before identify; not a dial
    // that failed (refused, timed out) for another reason.
    assert!(
        refused
            .0
            .contains("connection closed before identify finished"),
        "the fourth connection failed for another reason than the limit: {}",
        refused.0
    );
    holders.pop().unwrap().shutdown().await;
    sizes_until(&honeypot, "a free slot", |s| s.connections == 2).await;
    within("a visit", late.visit(addr))
        .await
        .expect("a free slot is used");
    honeypot.shutdown().await.unwrap();
    late.shutdown().await;
    crate::support::shutdown_all(holders).await;
}
