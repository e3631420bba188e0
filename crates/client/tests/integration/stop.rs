//! SIGTERM while a punch is in flight: the punch is reported as CANCELLED and the process exits 0.

use std::process::Stdio;
use std::time::Duration;

use crate::common::{seed_honeypot_sighting, start_server};
use punchr_store::Outcome;
use punchr_testutil::libp2p_peers::{spawn_nated_remote_without_dcutr, spawn_relay};
use punchr_testutil::TestDb;
use sqlx::Row;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_reports_the_punch_in_flight_as_cancelled() {
    let db = TestDb::sqlite().await;
    let server = start_server(&db.location, 0, &[]).await;
    let (_, key) = db.store.create_api_key("volunteer").await.unwrap();
    let relay = spawn_relay().await;
    // This remote never opens a DCUtR stream, so the client waits: the punch is in flight.
    let remote = spawn_nated_remote_without_dcutr(&relay).await;
    seed_honeypot_sighting(&db.store, &remote).await;

    let outbox = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_punchr-client"))
        .args([
            "--server-host",
            "127.0.0.1",
            "--server-port",
            &server.grpc_addr().port().to_string(),
        ])
        .args([
            "--host-count",
            "1",
            "--seed",
            "stop-test",
            "--assume-public",
            "--dial-private-relays",
            "--bootstrap-peers",
            "none",
            "--listen",
            "127.0.0.1",
        ])
        .args([
            "--telemetry-port",
            "0",
            "--stream-timeout",
            "60s",
            "--outbox",
        ])
        .arg(outbox.path())
        .env("API_KEY", key.expose())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let punching = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("hole punching") {
                return true;
            }
        }
        false
    })
    .await
    .expect("the client starts a punch");
    assert!(punching);

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits promptly")
        .unwrap();
    assert!(status.success(), "{status:?}");

    let row = sqlx::query("SELECT outcome FROM hole_punch_results")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    let outcome: String = row.try_get(0).unwrap();
    assert_eq!(Outcome::from_stored(&outcome), Some(Outcome::Cancelled));
    assert!(
        std::fs::read_dir(outbox.path())
            .unwrap()
            .filter_map(Result::ok)
            .all(|e| e.path().is_dir()),
        "outbox flushed"
    );
    server.shutdown().await.unwrap();
}
