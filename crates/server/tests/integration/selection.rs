//! GetAddrInfo's choice of a remote: seen by the honeypot within the freshness window,
//! DCUtR-capable, only relay addresses served, at most `--remote-limit` handouts of a remote per
//! window across clients, no (remote, relay address) pair repeated to the same client within
//! `--repeat-window`, chosen at random, with the original's random protocol filter.

use std::collections::{BTreeSet, HashSet};

use crate::common::*;
use multiaddr::{Multiaddr, Protocol};
use punchr_store::Engine;
use punchr_testutil::{on_both_engines, TestDb};
use tonic::Code;

on_both_engines!(
    without_candidates_there_are_no_peers_to_hole_punch,
    a_fresh_dcutr_remote_is_served_with_only_its_relay_addresses,
    remotes_without_dcutr_are_never_served,
    remotes_seen_more_than_ten_minutes_ago_are_never_served,
    fresh_window_flag_widens_the_window,
    a_client_does_not_get_the_same_remote_and_address_again,
    a_new_relay_address_of_a_known_remote_is_served_again,
    a_remote_seen_right_after_an_answer_is_served_at_once,
    addresses_from_stale_connections_are_not_served,
    repeat_window_flag_lets_a_client_get_a_remote_again,
    a_remote_is_handed_out_at_most_ten_times_per_minute,
    the_limit_holds_when_clients_ask_at_once,
    remote_limit_flag_changes_the_limit,
    remotes_are_chosen_at_random,
    protocol_filter_follows_the_original_choices,
    no_protocol_filter_flag_sends_no_filter,
    only_relay_addresses_with_a_public_relay_hop_are_served,
    a_handout_carries_a_bounded_number_of_addresses,
    a_key_ignoring_back_off_costs_no_write_per_fresh_remote,
    one_key_cannot_use_up_a_remotes_budget,
    a_key_gets_at_most_its_handouts_per_window,
);

/// One remote per call: a fresh API key with a fresh host asks once.
async fn ask_as_new_client(
    db: &TestDb,
    client: &mut Client,
    name: &str,
) -> Result<punchr_proto::GetAddrInfoResponse, tonic::Status> {
    let (key, host) = new_client(&db.store, client, name).await;
    ask(client, &key, &host).await
}

async fn without_candidates_there_are_no_peers_to_hole_punch(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let result = ask_as_new_client(&db, &mut client, "alice").await;
    assert_status(result, Code::NotFound, "no peers to hole punch");
    assert_eq!(count(&db.store, "handouts").await, 0);
}

async fn a_fresh_dcutr_remote_is_served_with_only_its_relay_addresses(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let remote = seed_remote_with(
        &db.store,
        Seed {
            relays: vec![1, 2, 3],
            ..Seed::default()
        },
    )
    .await;
    assert!(
        remote.advertised.len() > remote.relay_addresses.len(),
        "the remote also advertises direct addresses"
    );

    let answer = ask_as_new_client(&db, &mut client, "alice")
        .await
        .expect("a remote");

    assert_eq!(decode_peer(&answer.remote_id), remote.peer);
    let served: BTreeSet<_> = decode_addresses(&answer.multi_addresses)
        .into_iter()
        .collect();
    let relays: BTreeSet<_> = remote.relay_addresses.iter().cloned().collect();
    assert_eq!(served, relays);
    assert!(served
        .iter()
        .all(|a| a.iter().any(|p| p == Protocol::P2pCircuit)));
    assert_eq!(count(&db.store, "handouts").await, 1);
}

async fn remotes_without_dcutr_are_never_served(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let without_dcutr = Seed {
        dcutr: false,
        ..Seed::default()
    };
    for _ in 0..3 {
        seed_remote_with(&db.store, without_dcutr.clone()).await;
    }
    for i in 0..5 {
        let result = ask_as_new_client(&db, &mut client, &format!("client {i}")).await;
        assert_status(result, Code::NotFound, "no peers to hole punch");
    }

    // Once a DCUtR-capable remote connects, only it is served.
    let capable = seed_remote(&db.store).await;
    for i in 5..10 {
        let answer = ask_as_new_client(&db, &mut client, &format!("client {i}"))
            .await
            .expect("a remote");
        assert_eq!(decode_peer(&answer.remote_id), capable.peer);
    }
}

async fn remotes_seen_more_than_ten_minutes_ago_are_never_served(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let stale = Seed {
        seen_ago_ns: 11 * MINUTE_NS,
        ..Seed::default()
    };
    for _ in 0..3 {
        seed_remote_with(&db.store, stale.clone()).await;
    }
    for i in 0..5 {
        let result = ask_as_new_client(&db, &mut client, &format!("client {i}")).await;
        assert_status(result, Code::NotFound, "no peers to hole punch");
    }

    let recent = seed_remote_with(
        &db.store,
        Seed {
            seen_ago_ns: 9 * MINUTE_NS,
            ..Seed::default()
        },
    )
    .await;
    for i in 5..10 {
        let answer = ask_as_new_client(&db, &mut client, &format!("client {i}"))
            .await
            .expect("a remote");
        assert_eq!(decode_peer(&answer.remote_id), recent.peer);
    }
}

async fn fresh_window_flag_widens_the_window(db: TestDb) {
    let (_server, mut client) = serve(&db, &["--fresh-window", "15m"]).await;
    let remote = seed_remote_with(
        &db.store,
        Seed {
            seen_ago_ns: 11 * MINUTE_NS,
            ..Seed::default()
        },
    )
    .await;
    let answer = ask_as_new_client(&db, &mut client, "alice")
        .await
        .expect("a remote");
    assert_eq!(decode_peer(&answer.remote_id), remote.peer);
}

async fn a_client_does_not_get_the_same_remote_and_address_again(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let remote = seed_remote_with(
        &db.store,
        Seed {
            relays: vec![1],
            ..Seed::default()
        },
    )
    .await;
    let key = new_api_key(&db.store, "alice").await;
    let a = register_host(&mut client, &key).await;
    let b = register_host(&mut client, &key).await;

    let first = client
        .get_addr_info(get_addr_info_request(&key, &a, &[a, b]))
        .await
        .expect("a remote")
        .into_inner();
    assert_eq!(decode_peer(&first.remote_id), remote.peer);

    // Neither host of this client gets the pair again...
    assert_status(
        client
            .get_addr_info(get_addr_info_request(&key, &b, &[a, b]))
            .await,
        Code::NotFound,
        "no peers to hole punch",
    );
    assert_status(
        client
            .get_addr_info(get_addr_info_request(&key, &a, &[a, b]))
            .await,
        Code::NotFound,
        "no peers to hole punch",
    );

    // ...but another client does.
    let other = ask_as_new_client(&db, &mut client, "bob")
        .await
        .expect("a remote");
    assert_eq!(decode_peer(&other.remote_id), remote.peer);
}

async fn a_new_relay_address_of_a_known_remote_is_served_again(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let remote = seed_remote_with(
        &db.store,
        Seed {
            relays: vec![1],
            ..Seed::default()
        },
    )
    .await;
    let (key, host) = new_client(&db.store, &mut client, "alice").await;
    ask(&mut client, &key, &host).await.expect("a remote");
    assert_status(
        ask(&mut client, &key, &host).await,
        Code::NotFound,
        "no peers to hole punch",
    );

    // The remote reconnects through another relay: only the new address is new to the client.
    let again = seed_connection(
        &db.store,
        remote.peer,
        Seed {
            relays: vec![1, 2],
            ..Seed::default()
        },
    )
    .await;

    let answer = ask(&mut client, &key, &host)
        .await
        .expect("the new address");
    assert_eq!(decode_peer(&answer.remote_id), remote.peer);
    assert_eq!(
        decode_addresses(&answer.multi_addresses),
        vec![again.relay_addresses[1].clone()]
    );
}

/// The candidate list is shared for a second between requests; a remote the honeypot records
/// within that second must not be missed when nothing on the list is eligible.
async fn a_remote_seen_right_after_an_answer_is_served_at_once(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let first = seed_remote(&db.store).await;
    let (key, host) = new_client(&db.store, &mut client, "alice").await;
    let answer = ask(&mut client, &key, &host).await.expect("a remote");
    assert_eq!(decode_peer(&answer.remote_id), first.peer);

    let second = seed_remote(&db.store).await;
    let answer = ask(&mut client, &key, &host)
        .await
        .expect("the remote seen since");
    assert_eq!(decode_peer(&answer.remote_id), second.peer);
}

async fn addresses_from_stale_connections_are_not_served(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let stale = seed_remote_with(
        &db.store,
        Seed {
            relays: vec![1],
            seen_ago_ns: 20 * MINUTE_NS,
            ..Seed::default()
        },
    )
    .await;
    let fresh = seed_connection(
        &db.store,
        stale.peer,
        Seed {
            relays: vec![2],
            ..Seed::default()
        },
    )
    .await;

    let answer = ask_as_new_client(&db, &mut client, "alice")
        .await
        .expect("a remote");

    assert_eq!(decode_peer(&answer.remote_id), stale.peer);
    assert_eq!(
        decode_addresses(&answer.multi_addresses),
        fresh.relay_addresses
    );
}

async fn repeat_window_flag_lets_a_client_get_a_remote_again(db: TestDb) {
    let flags = ["--repeat-window", "0ms", "--remote-limit-per-key", "10"];
    let (_server, mut client) = serve(&db, &flags).await;
    let remote = seed_remote(&db.store).await;
    let (key, host) = new_client(&db.store, &mut client, "alice").await;
    for _ in 0..3 {
        let answer = ask(&mut client, &key, &host)
            .await
            .expect("the same remote again");
        assert_eq!(decode_peer(&answer.remote_id), remote.peer);
        assert_eq!(answer.multi_addresses.len(), remote.relay_addresses.len());
    }
}

async fn a_remote_is_handed_out_at_most_ten_times_per_minute(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let remote = seed_remote_with(
        &db.store,
        Seed {
            relays: vec![1],
            ..Seed::default()
        },
    )
    .await;
    for i in 0..10 {
        let answer = ask_as_new_client(&db, &mut client, &format!("client {i}"))
            .await
            .expect("below the limit");
        assert_eq!(decode_peer(&answer.remote_id), remote.peer);
    }
    let eleventh = ask_as_new_client(&db, &mut client, "client 10").await;
    assert_status(eleventh, Code::NotFound, "no peers to hole punch");
    assert_eq!(count(&db.store, "handouts").await, 10);
}

/// Clients asking at once for a remote whose limit is 2.
const RACERS: usize = 12;

/// Takes, in a transaction of the test's own, the lock a handout's write transaction needs
/// (PostgreSQL: the remote's row; SQLite: the database's write lock), so that requests sent
/// meanwhile all make their read-only eligibility check before any of them can write.
async fn hold_handout_lock(db: &TestDb, remote: &Remote) -> sqlx::Transaction<'static, sqlx::Any> {
    let mut tx = db.store.pool().begin().await.unwrap();
    match db.engine() {
        Engine::Postgres => {
            sqlx::query("SELECT id FROM peers WHERE peer_id = $1 FOR UPDATE")
                .bind(remote.peer.to_base58())
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        }
        Engine::Sqlite => {
            sqlx::query("UPDATE api_keys SET name = name")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
    }
    tx
}

/// Waits until the requests queue at the lock: on PostgreSQL, `RACERS` sessions wait for it;
/// on SQLite, every connection of the server's pool is taken (the reads before the write never
/// wait, so a connection that stays taken is one whose request passed its check and waits to
/// write) and stays so for a while of polls.
async fn wait_for_requests_at_the_lock(db: &TestDb, server: &punchr_server::RunningServer) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut saturated_polls = 0;
    loop {
        let ready = match db.engine() {
            Engine::Postgres => {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
                .fetch_one(db.store.pool())
                .await
                .unwrap();
                waiting == RACERS as i64
            }
            Engine::Sqlite => {
                let pool = server.store().pool();
                let taken = pool.size() as usize - pool.num_idle();
                saturated_polls = if taken == pool.size() as usize && pool.size() > 1 {
                    saturated_polls + 1
                } else {
                    0
                };
                saturated_polls >= 10
            }
        };
        if ready {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the requests never queued at the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn the_limit_holds_when_clients_ask_at_once(db: TestDb) {
    let (server, mut client) = serve(&db, &["--remote-limit", "2"]).await;
    let remote = seed_remote(&db.store).await;
    let mut clients = Vec::new();
    for i in 0..RACERS {
        clients.push(new_client(&db.store, &mut client, &format!("client {i}")).await);
    }
    // The race forced: every request reads "below the limit" before any handout is written;
    // only the check inside the write transaction can keep the handouts at the limit.
    let lock = hold_handout_lock(&db, &remote).await;
    let asking: Vec<_> = clients
        .into_iter()
        .map(|(key, host)| {
            let mut client = client.clone();
            tokio::spawn(async move { ask(&mut client, &key, &host).await })
        })
        .collect();
    wait_for_requests_at_the_lock(&db, &server).await;
    lock.rollback().await.unwrap();
    let mut served = 0;
    for task in asking {
        match task.await.expect("the request ran") {
            Ok(_) => served += 1,
            Err(status) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
        }
    }
    assert_eq!(
        served, 2,
        "handouts of a remote whose limit is 2, to {RACERS} racing clients"
    );
    assert_eq!(count(&db.store, "handouts").await, 2);
}

async fn remote_limit_flag_changes_the_limit(db: TestDb) {
    let (_server, mut client) = serve(&db, &["--remote-limit", "1"]).await;
    let first = seed_remote(&db.store).await;
    let second = seed_remote(&db.store).await;

    let served: HashSet<_> = [
        ask_as_new_client(&db, &mut client, "alice")
            .await
            .expect("a remote"),
        ask_as_new_client(&db, &mut client, "bob")
            .await
            .expect("the other remote"),
    ]
    .iter()
    .map(|answer| decode_peer(&answer.remote_id))
    .collect();

    assert_eq!(served, HashSet::from([first.peer, second.peer]));
    let third = ask_as_new_client(&db, &mut client, "carol").await;
    assert_status(third, Code::NotFound, "no peers to hole punch");
}

async fn remotes_are_chosen_at_random(db: TestDb) {
    // A limit no test reaches, so that only chance spreads the clients over the remotes.
    let (_server, mut client) = serve(&db, &["--remote-limit", "1000"]).await;
    let mut remotes = HashSet::new();
    for _ in 0..5 {
        remotes.insert(seed_remote(&db.store).await.peer);
    }
    let mut served = HashSet::new();
    for i in 0..20 {
        let answer = ask_as_new_client(&db, &mut client, &format!("client {i}"))
            .await
            .expect("a remote");
        served.insert(decode_peer(&answer.remote_id));
    }
    // All 20 on one of 5 remotes by chance: probability 5 · 0.2^20 ≈ 5e-14.
    assert!(served.len() > 1, "every client got the same remote");
    assert!(served.is_subset(&remotes));
}

async fn protocol_filter_follows_the_original_choices(db: TestDb) {
    // 200 answers in a row for one key: no rate limit.
    let flags = [
        "--repeat-window",
        "0ms",
        "--remote-limit",
        "100000",
        "--remote-limit-per-key",
        "100000",
        "--handouts-per-key",
        "100000",
        "--rate-limit",
        "0",
    ];
    let (_server, mut client) = serve(&db, &flags).await;
    seed_remote(&db.store).await;
    let (key, host) = new_client(&db.store, &mut client, "alice").await;
    let allowed: HashSet<Vec<i32>> =
        HashSet::from([vec![4, 6], vec![4, 460], vec![41, 6], vec![41, 460], vec![]]);
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let answer = ask(&mut client, &key, &host).await.expect("a remote");
        assert!(
            allowed.contains(&answer.protocols),
            "unexpected filter {:?}",
            answer.protocols
        );
        seen.insert(answer.protocols);
    }
    // Each choice has at least a 15 % chance per answer: missing one in 200 is below 1e-14.
    assert_eq!(seen, allowed);
}

async fn no_protocol_filter_flag_sends_no_filter(db: TestDb) {
    let (_server, mut client) = serve(
        &db,
        &[
            "--repeat-window",
            "0ms",
            "--remote-limit",
            "100000",
            "--remote-limit-per-key",
            "100000",
            "--no-protocol-filter",
        ],
    )
    .await;
    seed_remote(&db.store).await;
    let (key, host) = new_client(&db.store, &mut client, "alice").await;
    for _ in 0..50 {
        let answer = ask(&mut client, &key, &host).await.expect("a remote");
        assert!(
            answer.protocols.is_empty(),
            "filter {:?} despite --no-protocol-filter",
            answer.protocols
        );
    }
}

/// Records what an older honeypot stored of `peer`: `advertised` as its addresses.
async fn seed_advertising(db: &TestDb, peer: &libp2p_identity::PeerId, advertised: Vec<Multiaddr>) {
    db.store
        .record_connection_event(&punchr_store::ConnectionEventRecord {
            local: punchr_store::PeerInfo::bare(honeypot().to_base58()),
            remote: punchr_store::PeerInfo {
                peer_id: peer.to_base58(),
                agent_version: Some(REMOTE_AGENT.into()),
                protocols: remote_protocols(true),
            },
            connection_address: "/ip4/11.2.0.1/tcp/4001".parse().unwrap(),
            advertised_addresses: advertised,
            opened_at: punchr_store::now_unix_nanos() - SECOND_NS,
        })
        .await
        .expect("record a connection event");
}

fn circuit(hop: &str, relay: &libp2p_identity::PeerId) -> Multiaddr {
    format!("{hop}/p2p/{relay}/p2p-circuit").parse().unwrap()
}

/// A stranger reached the honeypot (before it checked relay hops) advertising relay addresses
/// that point into home networks, at loopback, at the benchmarking range, at a DNS name or
/// without a relay: none of them is served, the public one is.
async fn only_relay_addresses_with_a_public_relay_hop_are_served(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let (peer, relay) = (
        punchr_testutil::fixtures::peer_id(),
        punchr_testutil::fixtures::peer_id(),
    );
    let public = circuit("/ip4/11.3.0.1/tcp/4001", &relay);
    let mut advertised: Vec<Multiaddr> = [
        "/ip4/192.168.1.1/tcp/80",
        "/ip4/127.0.0.1/tcp/22",
        "/ip4/198.18.0.1/tcp/4001",
        "/ip4/100.64.0.1/tcp/4001",
        "/ip6/fe80::1/tcp/4001",
        "/dns4/victim.example.org/tcp/443",
    ]
    .iter()
    .map(|hop| circuit(hop, &relay))
    .collect();
    advertised.push("/ip4/11.3.0.2/tcp/4001/p2p-circuit".parse().unwrap());
    advertised.push(public.clone());
    seed_advertising(&db, &peer, advertised).await;

    let answer = ask_as_new_client(&db, &mut client, "alice")
        .await
        .expect("a remote");
    assert_eq!(decode_peer(&answer.remote_id), peer);
    assert_eq!(decode_addresses(&answer.multi_addresses), vec![public]);

    // A remote with nothing but such addresses is not served at all.
    let only_private = punchr_testutil::fixtures::peer_id();
    seed_advertising(
        &db,
        &only_private,
        vec![circuit("/ip4/10.0.0.1/tcp/4001", &relay)],
    )
    .await;
    for name in ["bob", "carol", "dave"] {
        let answer = ask_as_new_client(&db, &mut client, name)
            .await
            .expect("a remote");
        assert_eq!(
            decode_peer(&answer.remote_id),
            peer,
            "{name} got the private one"
        );
    }
}

async fn a_handout_carries_a_bounded_number_of_addresses(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let peer = punchr_testutil::fixtures::peer_id();
    let advertised = (0..200u16)
        .map(|i| {
            let relay = punchr_testutil::fixtures::peer_id();
            circuit(
                &format!("/ip4/11.4.{}.{}/tcp/4001", i / 250, i % 250 + 1),
                &relay,
            )
        })
        .collect();
    seed_advertising(&db, &peer, advertised).await;
    let answer = ask_as_new_client(&db, &mut client, "alice")
        .await
        .expect("a remote");
    assert_eq!(
        answer.multi_addresses.len(),
        punchr_store::MAX_HANDOUT_ADDRESSES
    );
}

const SELECTION_TRANSACTIONS: &str = "punchr_server_selection_transactions_total";

/// A key that was handed every fresh remote and keeps asking without backing off: no remote is
/// tried for it again (each try is a write transaction), so its requests cost reads only.
async fn a_key_ignoring_back_off_costs_no_write_per_fresh_remote(db: TestDb) {
    let (server, mut client) = serve(&db, &[]).await;
    let remotes = 20;
    for _ in 0..remotes {
        seed_remote_with(
            &db.store,
            Seed {
                relays: vec![1],
                ..Seed::default()
            },
        )
        .await;
    }
    let (key, host) = new_client(&db.store, &mut client, "greedy").await;
    let mut served = HashSet::new();
    for _ in 0..remotes {
        let answer = ask(&mut client, &key, &host).await.expect("a fresh remote");
        served.insert(decode_peer(&answer.remote_id));
    }
    assert_eq!(served.len(), remotes);
    let after_handouts = server_metric(&server, SELECTION_TRANSACTIONS).await;
    assert!(
        after_handouts <= remotes as f64,
        "{after_handouts} write transactions for {remotes} handouts"
    );
    for _ in 0..30 {
        let result = ask(&mut client, &key, &host).await;
        assert_status(result, Code::NotFound, "no peers to hole punch");
    }
    let after_retries = server_metric(&server, SELECTION_TRANSACTIONS).await;
    assert_eq!(
        after_retries, after_handouts,
        "asking again after being handed everything opened write transactions"
    );
    assert_eq!(count(&db.store, "handouts").await, remotes as i64);
}

/// One key registers ten hosts and asks with each as if it were a client of its own: it must
/// not take the remote's ten handouts a minute from everyone else.
async fn one_key_cannot_use_up_a_remotes_budget(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let remote = seed_remote_with(
        &db.store,
        Seed {
            relays: vec![1],
            ..Seed::default()
        },
    )
    .await;
    let greedy = new_api_key(&db.store, "greedy").await;
    let mut got = 0;
    for _ in 0..10 {
        let host = register_host(&mut client, &greedy).await;
        if ask(&mut client, &greedy, &host).await.is_ok() {
            got += 1;
        }
    }
    assert!(got <= 2, "one key took {got} of the remote's 10 handouts");
    for i in 0..5 {
        let answer = ask_as_new_client(&db, &mut client, &format!("honest {i}"))
            .await
            .expect("the remote's budget is left for other keys");
        assert_eq!(decode_peer(&answer.remote_id), remote.peer);
    }
}

async fn a_key_gets_at_most_its_handouts_per_window(db: TestDb) {
    let (_server, mut client) = serve(&db, &["--handouts-per-key", "3"]).await;
    for _ in 0..5 {
        seed_remote(&db.store).await;
    }
    let (key, host) = new_client(&db.store, &mut client, "volunteer").await;
    for _ in 0..3 {
        ask(&mut client, &key, &host)
            .await
            .expect("within the quota");
    }
    let fourth = ask(&mut client, &key, &host).await;
    assert_status(fourth, Code::ResourceExhausted, "--handouts-per-key");
    assert_eq!(count(&db.store, "handouts").await, 3);
    // Other keys are not affected.
    ask_as_new_client(&db, &mut client, "other")
        .await
        .expect("another key's quota");
}
