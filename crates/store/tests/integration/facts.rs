//! The report facts follow their rules (`punchr_store::facts::derive_facts_sql`, the one
//! definition) for results of every shape, and a backfill of rows stored without facts gives the
//! rows the write path gave, on both engines.

use punchr_store::{AttemptOutcome, HolePunchRecord, Outcome};
use punchr_testutil::fixtures::{self, peer_id};
use punchr_testutil::{on_both_engines, TestDb};
use sqlx::Row;

on_both_engines!(facts_follow_the_rules_and_a_backfill_repeats_them);

/// Results of every shape the facts distinguish.
fn results(api_key_id: i64) -> Vec<HolePunchRecord> {
    let (client, remote) = (peer_id(), peer_id());
    let base = |seq| fixtures::hole_punch_result(api_key_id, &client, &remote, seq);
    let mut results = Vec::new();
    // A SUCCESS on attempt 3 with a direct TCP/IPv4 and a relayed connection open.
    results.push(base(1));
    // A SUCCESS whose direct connections are QUIC over IPv6 and a WebSocket, by a direct dial.
    let mut quic = base(2);
    quic.open_addresses = vec![
        "/ip6/2001:db8::2/udp/4001/quic-v1".parse().unwrap(),
        "/ip4/198.51.100.9/tcp/443/wss".parse().unwrap(),
    ];
    quic.attempts[2].outcome = AttemptOutcome::DirectDial;
    results.push(quic);
    // A SUCCESS with only relayed connections left: no transport known.
    let mut relayed = base(3);
    relayed
        .open_addresses
        .retain(|a| a.to_string().contains("p2p-circuit"));
    results.push(relayed);
    // A FAILED after three attempts over TCP and QUIC on IPv4 and IPv6.
    let mut failed = base(4);
    failed.outcome = Outcome::Failed;
    failed.attempts[2].outcome = AttemptOutcome::Failed;
    failed.error = Some("none of the 3 attempts succeeded".into());
    results.push(failed);
    // A NO_STREAM without attempts.
    let mut no_stream = base(5);
    no_stream.outcome = Outcome::NoStream;
    no_stream.attempts.clear();
    no_stream.error = Some("/libp2p/dcutr stream was not opened after 30s".into());
    results.push(no_stream);
    // A CANCELLED whose one attempt had a successful attempt record but no SUCCESS outcome.
    let mut cancelled = base(6);
    cancelled.outcome = Outcome::Cancelled;
    cancelled.attempts.truncate(1);
    cancelled.attempts[0].outcome = AttemptOutcome::Success;
    cancelled.attempts[0].addresses = vec!["/ip4/203.0.113.6/udp/4001/quic-v1".parse().unwrap()];
    results.push(cancelled);
    // A SUCCESS by the original Go client whose successful attempt, from its tracer's clock,
    // ended before the relayed connection was up: no time to direct rather than a negative one.
    let mut early = base(7);
    let before = early.connect_ended_at - 1_000_000;
    for attempt in &mut early.attempts {
        attempt.opened_at = before - 2_000_000;
        attempt.started_at = Some(before - 1_000_000);
        attempt.ended_at = before;
    }
    results.push(early);
    results
}

/// Every fact row's integer columns, by result id.
async fn facts(db: &TestDb) -> Vec<Vec<Option<i64>>> {
    let rows = sqlx::query(
        "SELECT result_id, created_at, api_key_id, client_peer_id, remote_peer_id, transports, \
         ip_versions, attempts, successful_attempt, time_to_direct_ns FROM report_facts \
         ORDER BY result_id",
    )
    .fetch_all(db.store.pool())
    .await
    .expect("read facts");
    rows.iter()
        .map(|row| {
            (0..10)
                .map(|i| row.try_get::<Option<i64>, _>(i).expect("an integer"))
                .collect()
        })
        .collect()
}

/// Every fact row's outcome, by result id.
async fn outcomes(db: &TestDb) -> Vec<String> {
    sqlx::query("SELECT outcome FROM report_facts ORDER BY result_id")
        .fetch_all(db.store.pool())
        .await
        .expect("read outcomes")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn facts_follow_the_rules_and_a_backfill_repeats_them(db: TestDb) {
    let (key, _) = db.store.create_api_key("facts").await.unwrap();
    let written = results(key.id);
    for result in &written {
        db.store.insert_hole_punch_result(result).await.unwrap();
    }
    let by_write_path = facts(&db).await;
    assert_eq!(by_write_path.len(), written.len());
    // Spot checks against the rules: the first SUCCESS came on attempt 3, over TCP/IPv4.
    assert_eq!(by_write_path[0][5..9], [Some(1), Some(1), Some(3), Some(3)]);
    // QUIC/IPv6 and WSS/IPv4.
    assert_eq!(by_write_path[1][5..7], [Some(2 | 16), Some(2 | 1)]);
    // Nothing direct left open: none known.
    assert_eq!(by_write_path[2][5..7], [Some(0), Some(0)]);
    // The FAILED tried TCP and QUIC over both IP versions; no successful attempt.
    assert_eq!(
        by_write_path[3][5..10],
        [Some(3), Some(3), Some(3), None, None]
    );
    // The NO_STREAM tried nothing.
    assert_eq!(
        by_write_path[4][5..10],
        [Some(0), Some(0), Some(0), None, None]
    );
    // The CANCELLED is no SUCCESS, so no successful attempt is counted.
    assert_eq!(by_write_path[5][5..8], [Some(2), Some(1), Some(1)]);
    assert_eq!(by_write_path[5][8..10], [None, None]);
    // The SUCCESS whose direct connection predates its relayed one has no time to direct.
    assert_eq!(by_write_path[6][8..10], [Some(3), None]);

    let outcomes_before = outcomes(&db).await;
    sqlx::query("DELETE FROM report_facts")
        .execute(db.store.pool())
        .await
        .unwrap();
    let derived = db
        .store
        .backfill_report_facts()
        .await
        .expect("the backfill runs");
    assert_eq!(derived, written.len() as u64);
    assert_eq!(facts(&db).await, by_write_path);
    assert_eq!(
        db.store.backfill_report_facts().await.unwrap(),
        0,
        "nothing twice"
    );
    let outcomes_after = outcomes(&db).await;
    assert_eq!(outcomes_after, outcomes_before);
}
