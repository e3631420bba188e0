//! The storage layer's behaviour, checked on SQLite and on a real PostgreSQL server alike.

use std::collections::BTreeMap;

use multiaddr::Multiaddr;
use punchr_store::sql::flag;
use punchr_store::{
    ApiKeySecret, ConnectionEventRecord, HolePunchRecord, Outcome, PeerInfo, Store, StoreError,
};
use punchr_testutil::fixtures::{self, peer_id, relay_address};
use punchr_testutil::{on_both_engines, TestDb};
use sqlx::Row;

on_both_engines!(
    migrations_are_applied_once,
    api_keys_are_stored_hashed,
    revoked_keys_no_longer_authenticate,
    anonymous_keys_register_once,
    hosts_are_bound_to_their_key,
    connection_events_keep_advertised_addresses,
    results_read_back_as_written,
    failed_results_leave_nothing_behind,
    duplicate_addresses_are_linked_once,
    listen_address_sets_are_shared,
    concurrent_writers_lose_nothing,
    reports_delivered_twice_are_stored_once,
    peer_facts_survive_bare_upserts,
    old_connection_events_are_deleted_with_their_addresses,
);

/// The honeypot's retention setting: events opened before the cutoff go, with their address
/// links; newer ones and the peers stay.
async fn old_connection_events_are_deleted_with_their_addresses(db: TestDb) {
    let remote = peer_id();
    let event = |opened_at: i64| punchr_store::ConnectionEventRecord {
        local: punchr_store::PeerInfo::bare(peer_id().to_base58()),
        remote: punchr_store::PeerInfo::bare(remote.to_base58()),
        connection_address: "/ip4/11.0.0.9/tcp/4001".parse().unwrap(),
        advertised_addresses: vec![relay_address(1, &remote), relay_address(2, &remote)],
        opened_at,
    };
    let now = punchr_store::now_unix_nanos();
    for age in [3, 2, 1] {
        db.store
            .record_connection_event(&event(now - age * 3_600_000_000_000))
            .await
            .unwrap();
    }
    let cutoff = now - 90 * 60_000_000_000;
    assert_eq!(
        db.store
            .delete_connection_events_before(cutoff)
            .await
            .unwrap(),
        2
    );
    assert_eq!(count(&db.store, "connection_events").await, 1);
    assert_eq!(count(&db.store, "connection_event_addresses").await, 2);
    assert!(db
        .store
        .peer_db_id(&remote.to_base58())
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        db.store
            .delete_connection_events_before(cutoff)
            .await
            .unwrap(),
        0
    );
}

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

async fn migrations_are_applied_once(db: TestDb) {
    let applied = count(&db.store, "_sqlx_migrations").await;
    assert!(applied >= 2, "{applied} migrations");
    db.store.migrate().await.unwrap();
    let again = Store::open(&db.location).await.unwrap();
    assert_eq!(again.engine(), db.engine());
    assert_eq!(count(&again, "_sqlx_migrations").await, applied);
    assert_eq!(count(&again, "hole_punch_results").await, 0);
}

async fn api_keys_are_stored_hashed(db: TestDb) {
    let (key, secret) = db.store.create_api_key("alice").await.unwrap();
    assert_eq!(key.name, "alice");
    let found = db.store.authenticate(&secret).await.unwrap().unwrap();
    assert_eq!(found, key);
    assert!(db
        .store
        .authenticate(&ApiKeySecret::generate())
        .await
        .unwrap()
        .is_none());

    // The key appears nowhere in the table, neither as text nor as bytes.
    let row = sqlx::query("SELECT name, key_hash FROM api_keys")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    let stored_hash: Vec<u8> = row.try_get("key_hash").unwrap();
    assert_eq!(stored_hash.len(), 32);
    assert!(!stored_hash
        .windows(8)
        .any(|w| secret.expose().as_bytes().windows(8).any(|s| s == w)));

    let duplicate = db.store.create_api_key("alice").await.unwrap_err();
    assert!(
        matches!(duplicate, StoreError::DuplicateApiKeyName(_)),
        "{duplicate}"
    );
    let empty = db.store.create_api_key("  ").await.unwrap_err();
    assert!(
        matches!(empty, StoreError::InvalidValue { field: "name", .. }),
        "{empty}"
    );
}

async fn revoked_keys_no_longer_authenticate(db: TestDb) {
    let (_, secret) = db.store.create_api_key("bob").await.unwrap();
    let revoked = db.store.revoke_api_key("bob").await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(db.store.authenticate(&secret).await.unwrap().is_none());
    let listed = db.store.list_api_keys().await.unwrap();
    assert_eq!(listed, vec![revoked]);
    let unknown = db.store.revoke_api_key("bob").await.unwrap_err();
    assert!(matches!(unknown, StoreError::UnknownApiKey(_)), "{unknown}");
    // The name is free again for a new key.
    db.store.create_api_key("bob").await.unwrap();
}

async fn anonymous_keys_register_once(db: TestDb) {
    let secret = ApiKeySecret::new("6b0c6d5e-8f7a-4f55-9d0e-1f1d1d2c3b4a");
    let first = db.store.register_anonymous_api_key(&secret).await.unwrap();
    let second = db.store.register_anonymous_api_key(&secret).await.unwrap();
    assert_eq!(first, second);
    assert!(first.anonymous);
    assert_eq!(count(&db.store, "api_keys").await, 1);
}

async fn hosts_are_bound_to_their_key(db: TestDb) {
    let (alice, _) = db.store.create_api_key("alice").await.unwrap();
    let (mallory, _) = db.store.create_api_key("mallory").await.unwrap();
    let host = PeerInfo {
        peer_id: peer_id().to_string(),
        agent_version: Some("punchr/client/0.1.0".into()),
        protocols: vec!["/ipfs/id/1.0.0".into(), "/libp2p/dcutr".into()],
    };
    let peer_db_id = db.store.register_host(alice.id, &host).await.unwrap();
    assert_eq!(
        db.store.register_host(alice.id, &host).await.unwrap(),
        peer_db_id
    );
    assert_eq!(
        db.store
            .registered_host(alice.id, &host.peer_id)
            .await
            .unwrap(),
        Some(peer_db_id)
    );
    assert_eq!(
        db.store
            .registered_host(mallory.id, &host.peer_id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(count(&db.store, "client_hosts").await, 1);
}

async fn connection_events_keep_advertised_addresses(db: TestDb) {
    let remote = peer_id();
    let relay = relay_address(1, &remote);
    let private: Multiaddr = "/ip4/192.168.178.20/udp/4001/quic-v1".parse().unwrap();
    let connection: Multiaddr = "/ip4/11.18.5.5/tcp/40123".parse().unwrap();
    let event = ConnectionEventRecord {
        local: PeerInfo::bare(peer_id().to_string()),
        remote: PeerInfo {
            peer_id: remote.to_string(),
            agent_version: Some("kubo/0.25.0".into()),
            protocols: vec!["/libp2p/dcutr".into(), "/ipfs/kad/1.0.0".into()],
        },
        connection_address: connection.clone(),
        advertised_addresses: vec![relay.clone(), private.clone(), relay.clone()],
        opened_at: 1_764_000_000_000_000_000,
    };
    db.store.record_connection_event(&event).await.unwrap();
    db.store.record_connection_event(&event).await.unwrap();
    assert_eq!(count(&db.store, "connection_events").await, 2);
    assert_eq!(count(&db.store, "connection_event_addresses").await, 4);

    let rows = sqlx::query(
        "SELECT m.maddr, m.is_relay, m.is_public, m.ip_version, m.transport FROM multi_addresses m ORDER BY m.maddr",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    let facts: BTreeMap<String, (bool, bool, Option<i64>, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("maddr").unwrap(),
                (
                    flag(r, "is_relay").unwrap(),
                    flag(r, "is_public").unwrap(),
                    r.try_get::<Option<i64>, _>("ip_version").unwrap(),
                    r.try_get("transport").unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(
        facts[&relay.to_string()],
        (true, true, Some(4), Some("tcp".into()))
    );
    assert_eq!(
        facts[&private.to_string()],
        (false, false, Some(4), Some("quic-v1".into()))
    );
    assert_eq!(
        facts[&connection.to_string()],
        (false, true, Some(4), Some("tcp".into()))
    );

    let row = sqlx::query("SELECT supports_dcutr FROM peers WHERE peer_id = $1")
        .bind(remote.to_string())
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert!(flag(&row, "supports_dcutr").unwrap());
}

/// The result as the store gives it back: address lists sorted and deduplicated.
fn normalised(mut result: HolePunchRecord) -> HolePunchRecord {
    fn sort(addresses: &mut Vec<Multiaddr>) {
        addresses.sort_by_key(|a| a.to_string());
        addresses.dedup();
    }
    sort(&mut result.remote_addresses);
    sort(&mut result.open_addresses);
    sort(&mut result.listen_addresses);
    for attempt in &mut result.attempts {
        sort(&mut attempt.addresses);
    }
    for measurement in &mut result.latency_measurements {
        measurement.peer.protocols.sort();
    }
    result
}

async fn results_read_back_as_written(db: TestDb) {
    let (key, _) = db.store.create_api_key("alice").await.unwrap();
    let written = fixtures::hole_punch_result(key.id, &peer_id(), &peer_id(), 7);
    let id = db
        .store
        .insert_hole_punch_result(&written)
        .await
        .unwrap()
        .id;
    let read = db.store.load_hole_punch_result(id).await.unwrap().unwrap();
    assert_eq!(read, normalised(written));
    assert_eq!(
        db.store.load_hole_punch_result(id + 1000).await.unwrap(),
        None
    );

    // A minimal result (no relay connection) has no optional parts.
    let mut minimal = fixtures::hole_punch_result(key.id, &peer_id(), &peer_id(), 8);
    minimal.outcome = Outcome::NoConnection;
    minimal.error = Some("failed to dial: no addresses".into());
    minimal.has_direct_conns = false;
    minimal.open_addresses.clear();
    minimal.listen_addresses.clear();
    minimal.attempts.clear();
    minimal.latency_measurements.clear();
    minimal.network_information = None;
    minimal.nat_mappings.clear();
    minimal.protocol_filters.clear();
    let id = db
        .store
        .insert_hole_punch_result(&minimal)
        .await
        .unwrap()
        .id;
    let read = db.store.load_hole_punch_result(id).await.unwrap().unwrap();
    assert_eq!(read, normalised(minimal));

    let stats = sqlx::query(
        "SELECT samples_ok, samples_failed, rtt_min, rtt_max FROM latency_measurements WHERE kind = 'TO_RELAY'",
    )
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    assert_eq!(stats.try_get::<i64, _>("samples_ok").unwrap(), 2);
    assert_eq!(stats.try_get::<i64, _>("samples_failed").unwrap(), 1);
    assert_eq!(stats.try_get::<f64, _>("rtt_min").unwrap(), 0.03125);
    assert_eq!(stats.try_get::<f64, _>("rtt_max").unwrap(), 0.0390625);
}

const RESULT_TABLES: [&str; 11] = [
    "peers",
    "multi_addresses",
    "listen_address_sets",
    "listen_address_set_members",
    "hole_punch_results",
    "hole_punch_result_addresses",
    "hole_punch_attempts",
    "hole_punch_attempt_addresses",
    "latency_measurements",
    "nat_mappings",
    "network_information",
];

async fn failed_results_leave_nothing_behind(db: TestDb) {
    // The unknown API key fails the result row, after peers, addresses and the listen set
    // were written in the same transaction: all of them must be rolled back.
    let result = fixtures::hole_punch_result(4242, &peer_id(), &peer_id(), 1);
    let err = db
        .store
        .insert_hole_punch_result(&result)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err}");
    for table in RESULT_TABLES {
        assert_eq!(
            count(&db.store, table).await,
            0,
            "{table} after a failed write"
        );
    }
}

async fn duplicate_addresses_are_linked_once(db: TestDb) {
    let (key, _) = db.store.create_api_key("alice").await.unwrap();
    let mut result = fixtures::hole_punch_result(key.id, &peer_id(), &peer_id(), 3);
    result
        .remote_addresses
        .extend(result.remote_addresses.clone());
    result.open_addresses.extend(result.open_addresses.clone());
    let attempt_addresses = result.attempts[0].addresses.clone();
    result.attempts[0].addresses.extend(attempt_addresses);
    db.store.insert_hole_punch_result(&result).await.unwrap();
    assert_eq!(count(&db.store, "hole_punch_result_addresses").await, 4);
}

async fn listen_address_sets_are_shared(db: TestDb) {
    let (key, _) = db.store.create_api_key("alice").await.unwrap();
    let client = peer_id();
    let first = fixtures::hole_punch_result(key.id, &client, &peer_id(), 10);
    let mut second = fixtures::hole_punch_result(key.id, &client, &peer_id(), 20);
    second.listen_addresses = first.listen_addresses.iter().rev().cloned().collect();
    db.store.insert_hole_punch_result(&first).await.unwrap();
    db.store.insert_hole_punch_result(&second).await.unwrap();
    assert_eq!(count(&db.store, "listen_address_sets").await, 1);
    assert_eq!(count(&db.store, "listen_address_set_members").await, 2);
}

async fn concurrent_writers_lose_nothing(db: TestDb) {
    let (key, _) = db.store.create_api_key("alice").await.unwrap();
    let client = peer_id();
    let remote = peer_id();
    let writers: Vec<_> = (0..24u32)
        .map(|seq| {
            let store = db.store.clone();
            // Same client, remote and relays, overlapping addresses: the writers race on upserts.
            let mut result = fixtures::hole_punch_result(key.id, &client, &remote, seq % 3);
            result.report_id = Some(seq.to_be_bytes().to_vec());
            tokio::spawn(async move { store.insert_hole_punch_result(&result).await })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    assert_eq!(count(&db.store, "hole_punch_results").await, 24);
    assert_eq!(count(&db.store, "hole_punch_attempts").await, 72);
}

async fn peer_facts_survive_bare_upserts(db: TestDb) {
    let known = PeerInfo {
        peer_id: peer_id().to_string(),
        agent_version: Some("kubo/0.25.0".into()),
        protocols: vec!["/libp2p/dcutr".into()],
    };
    let id = db.store.upsert_peer(&known).await.unwrap();
    assert_eq!(
        db.store
            .upsert_peer(&PeerInfo::bare(&known.peer_id))
            .await
            .unwrap(),
        id
    );
    let row =
        sqlx::query("SELECT agent_version, protocols, supports_dcutr FROM peers WHERE id = $1")
            .bind(id)
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    assert_eq!(
        row.try_get::<String, _>("agent_version").unwrap(),
        "kubo/0.25.0"
    );
    assert_eq!(
        row.try_get::<String, _>("protocols").unwrap(),
        r#"["/libp2p/dcutr"]"#
    );
    assert!(flag(&row, "supports_dcutr").unwrap());
    assert_eq!(db.store.peer_db_id(&known.peer_id).await.unwrap(), Some(id));
}

async fn reports_delivered_twice_are_stored_once(db: TestDb) {
    let (key, _) = db.store.create_api_key("alice").await.unwrap();
    let result = fixtures::hole_punch_result(key.id, &peer_id(), &peer_id(), 5);
    let first = db.store.insert_hole_punch_result(&result).await.unwrap();
    let again = db.store.insert_hole_punch_result(&result).await.unwrap();
    assert!(first.new && !again.new);
    assert_eq!(first.id, again.id);
    // Racing deliveries of one report also store it once.
    let racing = fixtures::hole_punch_result(key.id, &peer_id(), &peer_id(), 6);
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let store = db.store.clone();
            let result = racing.clone();
            tokio::spawn(async move { store.insert_hole_punch_result(&result).await })
        })
        .collect();
    let mut ids = Vec::new();
    for writer in writers {
        ids.push(writer.await.unwrap().unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(count(&db.store, "hole_punch_results").await, 2);
    // Results without a report id are never merged.
    let mut anonymous = fixtures::hole_punch_result(key.id, &peer_id(), &peer_id(), 7);
    anonymous.report_id = None;
    db.store.insert_hole_punch_result(&anonymous).await.unwrap();
    db.store.insert_hole_punch_result(&anonymous).await.unwrap();
    assert_eq!(count(&db.store, "hole_punch_results").await, 4);
    // The same report id from another API key is another result.
    let (other, _) = db.store.create_api_key("bob").await.unwrap();
    let mut same_id = result.clone();
    same_id.api_key_id = other.id;
    assert!(
        db.store
            .insert_hole_punch_result(&same_id)
            .await
            .unwrap()
            .new
    );
}
