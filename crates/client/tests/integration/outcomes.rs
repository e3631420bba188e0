//! Each outcome other than SUCCESS, made by a real libp2p peer that behaves the way such peers
//! do, through the real client (the library the binary runs) and a real server (both engines),
//! down to the stored result: a remote that reverses the connection, one that never opens
//! `/libp2p/dcutr`, relay addresses nobody serves, a relay that holds no reservation for the
//! remote, a remote that opens the stream and stays silent, and one that sends a malformed
//! message. (SUCCESS is `end_to_end.rs`; every value's way over the wire is `wire_values.rs`.)
//!
//! TIMEOUT here is the DCUtR exchange's own deadline (`punchr_dcutr::HANDSHAKE_TIMEOUT`, 10 s),
//! which a silent remote reaches before the client's `--attempt-timeout` (15 s by default).

use std::time::Duration;

use crate::common::{loopback_client_config, seed_sighting, start_server};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use punchr_client::run::Client;
use punchr_store::{AttemptOutcome, HolePunchRecord, Outcome};
use punchr_testutil::libp2p_peers::{spawn_relay, spawn_remote, RemoteConduct};
use punchr_testutil::{fixtures, on_both_engines, TestDb};
use sqlx::Row;
use tokio::sync::watch;

on_both_engines!(
    a_remote_that_dials_back_is_connection_reversed,
    a_remote_without_dcutr_is_no_stream,
    relay_addresses_nobody_listens_on_are_no_connection,
    a_relay_without_the_remotes_reservation_is_no_connection,
    a_silent_dcutr_stream_is_a_timeout,
    a_malformed_dcutr_message_is_a_protocol_error,
);

/// What the store holds of the one punch: the result, and the outcome texts as the database
/// holds them (the result's, then each attempt's).
struct Stored {
    result: HolePunchRecord,
    outcome: String,
    attempts: Vec<String>,
}

/// Serves `remote` at `address` (as if the honeypot had seen it), runs one round of the client
/// with `flags`, and returns what the server stored.
async fn punch_once(db: &TestDb, remote: PeerId, address: Multiaddr, flags: &[&str]) -> Stored {
    let server = start_server(&db.location, 0, &[]).await;
    let (_, key) = db.store.create_api_key("volunteer").await.unwrap();
    seed_sighting(&db.store, &remote, &address).await;
    let outbox = tempfile::tempdir().unwrap();
    let mut all_flags = vec!["--dial-private-relays", "--rounds", "1"];
    all_flags.extend_from_slice(flags);
    let config =
        loopback_client_config(&server, key.expose(), "outcomes", outbox.path(), &all_flags);
    let client = Client::start(config).expect("client starts");
    let (_stop, stopped) = watch::channel(false);
    let summary = tokio::time::timeout(Duration::from_secs(90), client.run(stopped))
        .await
        .expect("the round ends within its deadlines")
        .expect("the client runs");
    assert_eq!(
        (summary.punches, summary.undelivered),
        (1, 0),
        "{summary:?}"
    );
    let row = sqlx::query("SELECT id, outcome FROM hole_punch_results")
        .fetch_one(db.store.pool())
        .await
        .expect("one stored result");
    let id: i64 = row.try_get(0).unwrap();
    let attempts = sqlx::query_scalar(
        "SELECT outcome FROM hole_punch_attempts WHERE result_id = $1 ORDER BY attempt_number",
    )
    .bind(id)
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    let result = db.store.load_hole_punch_result(id).await.unwrap().unwrap();
    server.shutdown().await.unwrap();
    assert_eq!(result.remote_peer_id, remote.to_string());
    Stored {
        result,
        outcome: row.try_get(1).unwrap(),
        attempts,
    }
}

/// Asserts the stored outcome and attempt outcomes, as values and as the database's text.
fn assert_outcome(stored: &Stored, outcome: Outcome, attempts: &[AttemptOutcome]) {
    let result = &stored.result;
    assert_eq!(result.outcome, outcome, "{result:#?}");
    assert_eq!(stored.outcome, outcome.as_str(), "as the database holds it");
    let got: Vec<AttemptOutcome> = result.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(got, attempts, "{result:#?}");
    let texts: Vec<&str> = attempts.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        stored.attempts, texts,
        "attempts as the database holds them"
    );
}

fn error_of(stored: &Stored) -> &str {
    stored.result.error.as_deref().unwrap_or("")
}

async fn a_remote_that_dials_back_is_connection_reversed(db: TestDb) {
    let relay = spawn_relay().await;
    let remote = spawn_remote(&relay, RemoteConduct::DialsBack).await;
    let stored = punch_once(&db, remote.peer_id, remote.address.clone(), &[]).await;
    assert_outcome(&stored, Outcome::ConnectionReversed, &[]);
    assert!(stored.result.has_direct_conns, "{:#?}", stored.result);
    assert_eq!(stored.result.error, None);
}

async fn a_remote_without_dcutr_is_no_stream(db: TestDb) {
    let relay = spawn_relay().await;
    let remote = spawn_remote(&relay, RemoteConduct::WithoutDcutr).await;
    let stored = punch_once(
        &db,
        remote.peer_id,
        remote.address.clone(),
        &["--stream-timeout", "2s"],
    )
    .await;
    assert_outcome(&stored, Outcome::NoStream, &[]);
    assert!(!stored.result.has_direct_conns, "{:#?}", stored.result);
    assert_eq!(
        error_of(&stored),
        "/libp2p/dcutr stream was not opened after 2s"
    );
}

/// A relay address on a loopback port nobody listens on (bound a moment ago, then closed).
fn closed_relay_address(remote: &PeerId) -> Multiaddr {
    let port = punchr_testutil::free_port();
    Multiaddr::empty()
        .with(Protocol::Ip4([127, 0, 0, 1].into()))
        .with(Protocol::Tcp(port))
        .with(Protocol::P2p(fixtures::peer_id()))
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(*remote))
}

async fn relay_addresses_nobody_listens_on_are_no_connection(db: TestDb) {
    let remote = fixtures::peer_id();
    let address = closed_relay_address(&remote);
    let stored = punch_once(&db, remote, address.clone(), &[]).await;
    assert_outcome(&stored, Outcome::NoConnection, &[]);
    // rust-libp2p's relay transport reports a refused relay dial as a cancelled response, so
    // the error can only name the address whose dial failed.
    let error = error_of(&stored);
    assert!(
        error.starts_with("Failed to negotiate transport protocol(s)")
            && error.contains(&address.to_string()),
        "{error}"
    );
}

async fn a_relay_without_the_remotes_reservation_is_no_connection(db: TestDb) {
    let relay = spawn_relay().await;
    let remote = fixtures::peer_id();
    let address = relay
        .address
        .clone()
        .with(Protocol::P2p(relay.peer_id))
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(remote));
    let stored = punch_once(&db, remote, address, &[]).await;
    assert_outcome(&stored, Outcome::NoConnection, &[]);
    assert!(
        error_of(&stored).contains("no reservation"),
        "{:#?}",
        stored.result
    );
}

async fn a_silent_dcutr_stream_is_a_timeout(db: TestDb) {
    let relay = spawn_relay().await;
    let remote = spawn_remote(&relay, RemoteConduct::SilentStream).await;
    let stored = punch_once(&db, remote.peer_id, remote.address.clone(), &[]).await;
    assert_outcome(&stored, Outcome::Failed, &[AttemptOutcome::Timeout]);
    assert_eq!(error_of(&stored), "no hole punch event after 10s");
}

async fn a_malformed_dcutr_message_is_a_protocol_error(db: TestDb) {
    let relay = spawn_relay().await;
    let remote = spawn_remote(&relay, RemoteConduct::MalformedMessage).await;
    let stored = punch_once(&db, remote.peer_id, remote.address.clone(), &[]).await;
    assert_outcome(&stored, Outcome::Failed, &[AttemptOutcome::ProtocolError]);
    assert!(
        error_of(&stored).contains("malformed HolePunch message"),
        "{:#?}",
        stored.result
    );
}
