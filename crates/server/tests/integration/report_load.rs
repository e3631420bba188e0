//! Strangers hammering the dashboard's `/api/report` with distinct parameters while volunteers
//! store results (issue 15, point 1): the real `punchr-server` binary stays under 200 MB RSS,
//! every TrackHolePunch succeeds and every result is stored.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{count, http_get, new_api_key, register_host, seed_remote, track_request};
use punchr_loadgen::ServerProcess;
use punchr_testutil::TestDb;
use sqlx::Row;

const MB: u64 = 1024 * 1024;

/// Doubles the stored results `times` times, each copy stored a minute apart, so that a report
/// of 1 s buckets would hold one bucket per result.
async fn multiply_results(db: &TestDb, times: u32) {
    let columns: Vec<String> = sqlx::query("PRAGMA table_info(hole_punch_results)")
        .fetch_all(db.store.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>(1))
        .filter(|name| name != "id" && name != "report_id")
        .collect();
    let list = columns.join(", ");
    let select = list.replace(
        "created_at",
        "created_at - (id + (SELECT MAX(id) FROM hole_punch_results)) * 60000000000",
    );
    for _ in 0..times {
        sqlx::query(&format!(
            "INSERT INTO hole_punch_results ({list}) SELECT {select} FROM hole_punch_results"
        ))
        .execute(db.store.pool())
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_hammering_leaves_result_collection_alone() {
    let db = TestDb::sqlite().await;
    let key = new_api_key(&db.store, "volunteer").await;
    let remote = seed_remote(&db.store).await;
    {
        let (server, mut client) = crate::common::serve(&db, &[]).await;
        let host = register_host(&mut client, &key).await;
        client
            .track_hole_punch(track_request(&key, &host, &remote.peer))
            .await
            .unwrap();
        server.shutdown().await.unwrap();
    }
    multiply_results(&db, 17).await;
    let seeded = count(&db.store, "hole_punch_results").await;

    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_punchr-server")),
        &db.location,
        &["--rate-limit".to_owned(), "0".to_owned()],
        &dir.path().join("server.log"),
    )
    .await
    .expect("start punchr-server");
    let baseline = server.live_rss_bytes().unwrap();
    let dashboard = server.dashboard_addr();
    let mut client = punchr_proto::punchr_service_client::PunchrServiceClient::connect(format!(
        "http://{}",
        server.grpc_addr()
    ))
    .await
    .unwrap();
    let host = register_host(&mut client, &key).await;

    let hammering = Arc::new(AtomicBool::new(true));
    let mut hammers = Vec::new();
    for worker in 0..8 {
        let hammering = hammering.clone();
        hammers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut n = 0;
            while hammering.load(Ordering::SeqCst) {
                // 1 s buckets written ever differently, and ever different time ranges.
                let zeros = "0".repeat(n % 6);
                let path = match n % 3 {
                    0 => format!("/api/report?bucket={zeros}1s"),
                    1 => format!(
                        "/api/report?since={}h&bucket={zeros}{}s",
                        10_000 + worker * 1000 + n,
                        1 + n % 5
                    ),
                    _ => format!("/api/report?since={}m", 100_000 + worker * 10_000 + n),
                };
                statuses.push(http_get(dashboard, &path).await.0);
                n += 1;
            }
            statuses
        }));
    }

    let started = Instant::now();
    let mut peak = baseline;
    let mut latencies = Vec::new();
    while started.elapsed() < Duration::from_secs(30) {
        let sent = Instant::now();
        let answer = client
            .track_hole_punch(track_request(&key, &host, &remote.peer))
            .await;
        latencies.push(sent.elapsed());
        answer.expect("TrackHolePunch keeps working while reports are hammered");
        peak = peak.max(server.live_rss_bytes().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hammering.store(false, Ordering::SeqCst);
    let mut statuses = Vec::new();
    for hammer in hammers {
        statuses.extend(hammer.await.unwrap());
    }
    peak = peak.max(server.live_rss_bytes().unwrap());
    latencies.sort();
    let stored = count(&db.store, "hole_punch_results").await - seeded;
    let by_status = |code: u16| statuses.iter().filter(|s| **s == code).count();
    eprintln!(
        "{seeded} results; {} report requests (200: {}, 400: {}, 503: {}); server RSS {} MB before, peak {} MB; \
         {} TrackHolePunch, latency p50 {:?}, max {:?}; {stored} stored",
        statuses.len(),
        by_status(200),
        by_status(400),
        by_status(503),
        baseline / MB,
        peak / MB,
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );
    assert_eq!(
        stored,
        latencies.len() as i64,
        "every result sent is stored"
    );
    assert!(peak < 200 * MB, "server RSS peaked at {} MB", peak / MB);
    server.stop().await.unwrap();
}
