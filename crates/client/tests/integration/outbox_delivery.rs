//! Results survive a server outage and a client restart, and are stored once.

use crate::common::classify::ScriptedPunch;
use crate::common::start_server;
use punchr_client::delivery::{ServerAddress, ServerLink};
use punchr_client::outbox::Outbox;
use punchr_client::request::{track_hole_punch_request, RequestContext};
use punchr_proto::TrackHolePunchRequest;
use punchr_testutil::{fixtures, on_both_engines, TestDb};
use sqlx::Row;

on_both_engines!(results_wait_out_a_server_restart_and_are_stored_once);

fn result(client: &libp2p_identity::PeerId, api_key: &str, n: i64) -> TrackHolePunchRequest {
    let start = punchr_store::now_unix_nanos() - 60_000_000_000 + n * 1_000_000;
    let relay = fixtures::relay_address(1, &fixtures::peer_id());
    let mut punch = ScriptedPunch::start(start, fixtures::peer_id(), relay.clone());
    punch.relayed_up(1);
    punch.sleep();
    let classified = punch.finish();
    let context = RequestContext {
        client_id: client.to_bytes(),
        remote_id: fixtures::peer_id().to_bytes(),
        served_addresses: vec![relay],
        listen_addresses: vec!["/ip4/198.18.4.4/tcp/12000".parse().unwrap()],
        protocol_filter: vec![],
        latencies: vec![],
        role_strategy: punchr_dcutr::RoleStrategy::Adaptive,
    };
    // As an older client wrote it: with the key inside (the outbox must not keep it).
    TrackHolePunchRequest {
        api_key: api_key.to_owned(),
        ..track_hole_punch_request(&context, &classified)
    }
}

async fn stored_results(db: &TestDb) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM hole_punch_results")
        .fetch_one(db.store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

async fn results_wait_out_a_server_restart_and_are_stored_once(db: TestDb) {
    let server = start_server(&db.location, 0, &[]).await;
    let port = server.grpc_addr().port();
    let (_, key) = db.store.create_api_key("volunteer").await.unwrap();
    let link = ServerLink::new(
        &ServerAddress {
            url: format!("http://127.0.0.1:{port}"),
            ca_pem: None,
            skip_verify: false,
            timeouts: Default::default(),
        },
        key.expose().to_owned(),
    )
    .unwrap();
    let host = fixtures::peer_id();
    link.register(host.to_bytes(), "punchr/test".into(), vec![])
        .await
        .unwrap();

    // The server goes away; the client goes on punching and keeps its results.
    server.shutdown().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
    let requests: Vec<_> = (0..3).map(|n| result(&host, key.expose(), n)).collect();
    for request in &requests {
        outbox.push(request).unwrap();
    }
    assert!(
        link.deliver(&outbox).await.is_err(),
        "nothing can be delivered while the server is down"
    );
    assert_eq!(outbox.pending().unwrap().len(), 3);
    for entry in outbox.pending().unwrap() {
        let bytes = std::fs::read(entry.path()).unwrap();
        assert!(
            !bytes
                .windows(key.expose().len())
                .any(|w| w == key.expose().as_bytes()),
            "{} holds the API key",
            entry.path().display()
        );
    }

    // The client restarts (a new outbox handle on the same directory), the server comes back.
    let outbox = Outbox::open(dir.path()).unwrap();
    let server = start_server(&db.location, port, &[]).await;
    assert_eq!(link.deliver(&outbox).await.unwrap(), 3);
    assert!(outbox.pending().unwrap().is_empty());
    assert_eq!(stored_results(&db).await, 3);

    // An answer got lost and the same result is sent again: it is stored once.
    outbox.push(&requests[1]).unwrap();
    assert_eq!(link.deliver(&outbox).await.unwrap(), 1);
    assert_eq!(stored_results(&db).await, 3);
    server.shutdown().await.unwrap();
}
