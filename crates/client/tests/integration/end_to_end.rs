//! The whole flow on loopback: a real server (both engines), a relay, a NATed-style remote with
//! the stock DCUtR, and the client; then what the database holds.

use std::time::Duration;

use crate::common::{loopback_client_config, seed_honeypot_sighting, start_server};
use punchr_client::config::ClientConfig;
use punchr_client::run::Client;
use punchr_store::{AttemptOutcome, LatencyKind, Outcome};
use punchr_testutil::http::{http_get, metric_sample};
use punchr_testutil::libp2p_peers::{spawn_nated_remote, spawn_relay};
use punchr_testutil::{on_both_engines, TestDb};
use sqlx::Row;
use tokio::sync::watch;

on_both_engines!(
    a_round_punches_through_and_is_stored,
    no_peer_means_waiting_not_exiting
);

fn client_config(
    server: &punchr_server::RunningServer,
    key: &str,
    outbox: &std::path::Path,
    extra: &[&str],
) -> ClientConfig {
    let mut flags = vec!["--dial-private-relays"];
    flags.extend_from_slice(extra);
    loopback_client_config(server, key, "end-to-end", outbox, &flags)
}

async fn a_round_punches_through_and_is_stored(db: TestDb) {
    let server = start_server(&db.location, 0, &[]).await;
    let (_, key) = db.store.create_api_key("volunteer").await.unwrap();
    let relay = spawn_relay().await;
    let remote = spawn_nated_remote(&relay).await;
    seed_honeypot_sighting(&db.store, &remote).await;

    let outbox = tempfile::tempdir().unwrap();
    let config = client_config(
        &server,
        key.expose(),
        outbox.path(),
        &[
            "--rounds",
            "1",
            "--bootstrap-peers",
            &relay.address.to_string(),
        ],
    );
    let client = Client::start(config).expect("client starts");
    let (_stop, stopped) = watch::channel(false);
    let summary = tokio::time::timeout(Duration::from_secs(90), client.run(stopped))
        .await
        .expect("the round ends within its deadlines")
        .expect("the client runs");
    assert_eq!(summary.punches, 1);
    assert_eq!(summary.undelivered, 0);

    let id: i64 = sqlx::query("SELECT id FROM hole_punch_results")
        .fetch_one(db.store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    let stored = db.store.load_hole_punch_result(id).await.unwrap().unwrap();
    assert_eq!(stored.remote_peer_id, remote.peer_id.to_string());
    assert_eq!(stored.outcome, Outcome::Success, "{stored:#?}");
    assert!(stored.has_direct_conns);
    let last = stored.attempts.last().expect("at least one attempt");
    assert_eq!(last.outcome, AttemptOutcome::Success);
    assert!(
        last.started_at.is_some() && last.start_rtt_seconds.is_some(),
        "{last:?}"
    );
    assert!(
        !last.addresses.is_empty(),
        "the remote's CONNECT addresses are recorded"
    );
    assert_eq!(stored.remote_addresses, vec![remote.address.clone()]);
    assert!(stored
        .open_addresses
        .iter()
        .any(|a| !a.to_string().contains("p2p-circuit")));
    assert!(
        stored.connect_started_at <= stored.connect_ended_at
            && stored.connect_ended_at <= stored.ended_at
    );
    let kinds: Vec<LatencyKind> = stored.latency_measurements.iter().map(|m| m.kind).collect();
    assert!(
        kinds.contains(&LatencyKind::ToRemoteAfterHolePunch),
        "{kinds:?}"
    );
    server.shutdown().await.unwrap();
}

async fn no_peer_means_waiting_not_exiting(db: TestDb) {
    let server = start_server(&db.location, 0, &[]).await;
    let (_, key) = db.store.create_api_key("volunteer").await.unwrap();
    let outbox = tempfile::tempdir().unwrap();
    let config = client_config(
        &server,
        key.expose(),
        outbox.path(),
        &["--no-peer-wait", "200ms"],
    );
    let client = Client::start(config).expect("client starts");
    let (stop, stopped) = watch::channel(false);
    let run = tokio::spawn(client.run(stopped));
    // Several NOT_FOUND answers later the client is still running and still asking (a client
    // that hung after the first would not get the later ones).
    let not_found =
        "grpc_server_handled_total{grpc_method=\"GetAddrInfo\",grpc_code=\"NOT_FOUND\"}";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(!run.is_finished(), "NOT_FOUND must not end the client");
        let (_, metrics) = http_get(server.telemetry_addr(), "/metrics").await;
        if metric_sample(&metrics, not_found).unwrap_or(0.0) >= 3.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the client stopped asking:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(summary.punches, 0);
    server.shutdown().await.unwrap();
}
