//! The client refuses, before dialing, relay addresses whose relay hop is not a public IP
//! (issue 15, point 4): what the server serves came from strangers through the honeypot, and a
//! stranger must not send volunteers into their own networks or at a victim.

use std::time::Duration;

use crate::common::{loopback_client_config, start_server};
use punchr_client::run::Client;
use punchr_store::{ConnectionEventRecord, PeerInfo};
use punchr_testutil::fixtures;
use punchr_testutil::TestDb;
use sqlx::Row;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A server (serving what the database holds, as one that stored it before relay hops were
/// checked would) hands out a "relay" on the volunteer's loopback, where a service listens: the
/// client must not connect to it, and reports nothing for a punch it did not make.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_address_into_the_volunteers_network_is_never_dialed() {
    let db = TestDb::sqlite().await;
    let server = start_server(&db.location, 0, &[]).await;
    let (_, key) = db.store.create_api_key("volunteer").await.unwrap();
    let victim = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = victim.local_addr().unwrap().port();
    let (remote, relay) = (fixtures::peer_id(), fixtures::peer_id());
    let lure = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{relay}/p2p-circuit/p2p/{remote}");
    db.store
        .record_connection_event(&ConnectionEventRecord {
            local: PeerInfo::bare(fixtures::peer_id().to_string()),
            remote: PeerInfo {
                peer_id: remote.to_string(),
                agent_version: Some("stranger".into()),
                protocols: vec!["/libp2p/dcutr".into()],
            },
            connection_address: "/ip4/11.0.9.9/tcp/4001".parse().unwrap(),
            advertised_addresses: vec![lure.parse().unwrap()],
            opened_at: punchr_store::now_unix_nanos(),
        })
        .await
        .unwrap();

    let outbox = tempfile::tempdir().unwrap();
    let config = loopback_client_config(
        &server,
        key.expose(),
        "relay-scope",
        outbox.path(),
        &["--rounds", "1", "--no-peer-wait", "100ms"],
    );
    let client = Client::start(config).expect("client starts");
    let (_stop, stopped) = watch::channel(false);
    let summary = tokio::time::timeout(Duration::from_secs(90), client.run(stopped))
        .await
        .expect("the round ends")
        .expect("the client runs");
    assert_eq!(summary.undelivered, 0);
    // A connection made during the run waits in the listener's backlog.
    let dialed = tokio::time::timeout(Duration::from_secs(1), victim.accept()).await;
    assert!(
        dialed.is_err(),
        "the client connected to the address behind the lure: {dialed:?}"
    );
    let results: i64 = sqlx::query("SELECT COUNT(*) FROM hole_punch_results")
        .fetch_one(db.store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(results, 0, "no result for a punch that was not made");
    server.shutdown().await.unwrap();
}
