//! Client hosts belong to the API key that registered them: Register binds them, TrackHolePunch
//! only accepts results of the key's own hosts, and GetAddrInfo only serves registered hosts.

use crate::common::*;
use punchr_testutil::fixtures::peer_id;
use punchr_testutil::{on_both_engines, TestDb};
use tonic::Code;

on_both_engines!(
    register_binds_the_host_to_the_key,
    registering_again_keeps_one_binding,
    register_rejects_a_malformed_client_id,
    results_for_a_host_of_another_key_are_refused_and_not_stored,
    results_for_an_unregistered_host_are_refused,
    get_addr_info_for_unknown_hosts_asks_to_restart_the_client,
    get_addr_info_for_a_host_of_another_key_asks_to_restart_the_client,
    register_never_rewrites_what_the_honeypot_recorded,
    register_never_rewrites_another_keys_host,
);

/// The agent version and protocols stored for `peer`.
async fn stored_facts(db: &TestDb, peer: &libp2p_identity::PeerId) -> (Option<String>, String) {
    let row = sqlx::query("SELECT agent_version, protocols FROM peers WHERE peer_id = $1")
        .bind(peer.to_base58())
        .fetch_one(db.store.pool())
        .await
        .expect("the peer is stored");
    use sqlx::Row;
    (row.try_get(0).unwrap(), row.try_get(1).unwrap())
}

const HTML_AGENT: &str = "<script>alert(1)</script>";

/// A key registers a remote the honeypot recorded as if it were its own host, with protocols
/// lacking /libp2p/dcutr and an HTML agent version: the remote stays selectable and its facts
/// stay what the honeypot saw.
async fn register_never_rewrites_what_the_honeypot_recorded(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let remote = seed_remote(&db.store).await;
    let before = stored_facts(&db, &remote.peer).await;
    let attacker = new_api_key(&db.store, "mallory").await;
    client
        .register(punchr_proto::RegisterRequest {
            client_id: remote.peer.to_bytes(),
            agent_version: HTML_AGENT.into(),
            protocols: vec!["/ipfs/id/1.0.0".into()],
            api_key: attacker.clone(),
        })
        .await
        .expect("Register answers as for any host");
    assert_eq!(stored_facts(&db, &remote.peer).await, before);
    let (key, host) = new_client(&db.store, &mut client, "alice").await;
    let answer = ask(&mut client, &key, &host)
        .await
        .expect("the remote is still served");
    assert_eq!(decode_peer(&answer.remote_id), remote.peer);
}

/// A key registers another key's host with other facts: the owner's facts stay.
async fn register_never_rewrites_another_keys_host(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let (_alice, host) = new_client(&db.store, &mut client, "alice").await;
    let before = stored_facts(&db, &host).await;
    assert_eq!(before.0.as_deref(), Some(CLIENT_AGENT));
    let mallory = new_api_key(&db.store, "mallory").await;
    client
        .register(punchr_proto::RegisterRequest {
            client_id: host.to_bytes(),
            agent_version: HTML_AGENT.into(),
            protocols: Vec::new(),
            api_key: mallory,
        })
        .await
        .expect("Register answers as for any host");
    assert_eq!(stored_facts(&db, &host).await, before);
}

async fn register_binds_the_host_to_the_key(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let alice = new_api_key(&db.store, "alice").await;
    let bob = new_api_key(&db.store, "bob").await;
    let host = peer_id();

    let response = client
        .register(register_request(&alice, &host))
        .await
        .expect("register")
        .into_inner();

    let alice_id = api_key_id(&db.store, &alice).await;
    let bob_id = api_key_id(&db.store, &bob).await;
    assert_eq!(
        db.store
            .registered_host(alice_id, &host.to_base58())
            .await
            .unwrap(),
        Some(response.db_peer_id)
    );
    assert_eq!(
        db.store
            .registered_host(bob_id, &host.to_base58())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.store.peer_db_id(&host.to_base58()).await.unwrap(),
        Some(response.db_peer_id)
    );
}

async fn registering_again_keeps_one_binding(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let key = new_api_key(&db.store, "alice").await;
    let host = peer_id();
    let first = client
        .register(register_request(&key, &host))
        .await
        .unwrap()
        .into_inner();
    let second = client
        .register(register_request(&key, &host))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.db_peer_id, second.db_peer_id);
    assert_eq!(count(&db.store, "client_hosts").await, 1);
}

async fn register_rejects_a_malformed_client_id(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let key = new_api_key(&db.store, "alice").await;
    let mut request = register_request(&key, &peer_id());
    request.client_id = b"not a peer id".to_vec();
    assert_status(
        client.register(request).await,
        Code::InvalidArgument,
        "client_id",
    );
    assert_eq!(count(&db.store, "client_hosts").await, 0);
    assert_eq!(count(&db.store, "peers").await, 0);
}

async fn results_for_a_host_of_another_key_are_refused_and_not_stored(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let (_alice, alice_host) = new_client(&db.store, &mut client, "alice").await;
    let (bob, _bob_host) = new_client(&db.store, &mut client, "bob").await;
    let peers_before = count(&db.store, "peers").await;

    let result = client
        .track_hole_punch(track_request(&bob, &alice_host, &peer_id()))
        .await;

    assert_status(result, Code::PermissionDenied, "not registered");
    assert_eq!(count(&db.store, "hole_punch_results").await, 0);
    assert_eq!(count(&db.store, "peers").await, peers_before);
}

async fn results_for_an_unregistered_host_are_refused(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let key = new_api_key(&db.store, "alice").await;
    let result = client
        .track_hole_punch(track_request(&key, &peer_id(), &peer_id()))
        .await;
    assert_status(result, Code::PermissionDenied, "not registered");
    assert_eq!(count(&db.store, "hole_punch_results").await, 0);
    assert_eq!(count(&db.store, "peers").await, 0);
}

async fn get_addr_info_for_unknown_hosts_asks_to_restart_the_client(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    seed_remote(&db.store).await;
    let key = new_api_key(&db.store, "alice").await;
    let (a, b) = (peer_id(), peer_id());
    let result = client
        .get_addr_info(get_addr_info_request(&key, &a, &[a, b]))
        .await;
    assert_status(
        result,
        Code::FailedPrecondition,
        "please restart the client",
    );
    assert_eq!(count(&db.store, "handouts").await, 0);
}

async fn get_addr_info_for_a_host_of_another_key_asks_to_restart_the_client(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    seed_remote(&db.store).await;
    let (_alice, alice_host) = new_client(&db.store, &mut client, "alice").await;
    let bob = new_api_key(&db.store, "bob").await;
    assert_status(
        ask(&mut client, &bob, &alice_host).await,
        Code::FailedPrecondition,
        "please restart the client",
    );
    assert_eq!(count(&db.store, "handouts").await, 0);
}
