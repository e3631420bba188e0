//! The original clients (libp2p/punchr), unchanged, against this server: their messages in the
//! shapes they are known to send (`punchr-original.md` §7.4, §9.2; issue 14), built here in our
//! own encoding, are accepted, stored with the right meaning and reported under their family.
//!
//! - The original Rust client (`punchr/rust-client/0.2.1`): Register and TrackHolePunch with no
//!   protocols, no latencies, network information or NAT mappings, IPv6 listen addresses, and
//!   `elapsed_time` in microseconds (nanoseconds ÷ 1000) labelled as seconds.
//! - The original Go client (`punchr/go-client/0.8.0`): an attempt whose `started_at` lies before
//!   its `opened_at` (the client stamps `opened_at` after the stream signal, `started_at` from a
//!   tracer event that may have been queued), error texts sent empty.
//! - Our client (`punchr-rs/client/…`) keeps the strict checks.

use crate::common::*;
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use punchr_proto as pb;
use punchr_report::{build_report, FamilyRow, ReportFilter};
use punchr_store::{AttemptOutcome, Outcome, PeerInfo};
use punchr_testutil::fixtures::relay_address;
use punchr_testutil::{on_both_engines, TestDb};
use tonic::Code;

on_both_engines!(
    the_original_rust_clients_microseconds_are_stored_as_seconds,
    the_original_go_clients_unordered_attempt_times_are_kept,
    our_client_keeps_the_strict_checks,
    reports_split_by_client_and_remote_family,
);

const RUST_AGENT: &str = "punchr/rust-client/0.2.1";
const GO_AGENT: &str = "punchr/go-client/0.8.0";
const MS: u64 = 1_000_000;

fn bytes_of(addresses: &[Multiaddr]) -> Vec<Vec<u8>> {
    addresses.iter().map(Multiaddr::to_vec).collect()
}

fn parse(text: &str) -> Multiaddr {
    text.parse().expect("a valid address")
}

/// Registers a fresh host as `agent` does: with no protocols.
async fn register_as(client: &mut Client, key: &str, agent: &str) -> PeerId {
    let host = PeerId::random();
    client
        .register(pb::RegisterRequest {
            client_id: host.to_bytes(),
            agent_version: agent.into(),
            protocols: Vec::new(),
            api_key: key.into(),
        })
        .await
        .expect("a Register with no protocols is accepted");
    host
}

/// A result as the original Rust client builds it: each attempt opens at the end of the relayed
/// connection, starts when the remote's upgrade arrives and reports (ended − started) ns / 1000.
fn rust_client_result(
    key: &str,
    host: &PeerId,
    remote: &PeerId,
    attempt_ms: &[u64],
    outcome: pb::HolePunchOutcome,
) -> pb::TrackHolePunchRequest {
    let start = now() - 60_000 * MS;
    let connect_ended_at = start + 120 * MS;
    let direct = parse("/ip4/198.18.7.9/udp/4001/quic-v1");
    let mut at = connect_ended_at;
    let last = attempt_ms.len().saturating_sub(1);
    let attempts = attempt_ms
        .iter()
        .enumerate()
        .map(|(i, ms)| {
            let started_at = at + 30 * MS;
            let ended_at = started_at + ms * MS;
            at = ended_at;
            let success = outcome == pb::HolePunchOutcome::Success && i == last;
            pb::HolePunchAttempt {
                opened_at: connect_ended_at,
                started_at: Some(started_at),
                ended_at,
                start_rtt: None,
                elapsed_time: (ended_at - started_at) as f32 / 1000.0,
                outcome: if success {
                    pb::HolePunchAttemptOutcome::Success
                } else {
                    pb::HolePunchAttemptOutcome::Timeout
                }
                .into(),
                error: (!success).then(|| "hole-punch timed out".to_owned()),
                direct_dial_error: None,
                // The dialled address twice: once as a concurrent dial error, once as the
                // connection's endpoint.
                multi_addresses: bytes_of(&[direct.clone(), direct.clone()]),
                handshake_role: None,
            }
        })
        .collect();
    let relayed = relay_address(1, remote);
    pb::TrackHolePunchRequest {
        client_id: host.to_bytes(),
        remote_id: remote.to_bytes(),
        remote_multi_addresses: bytes_of(std::slice::from_ref(&relayed)),
        connect_started_at: start,
        connect_ended_at,
        hole_punch_attempts: attempts,
        open_multi_addresses: if outcome == pb::HolePunchOutcome::Success {
            bytes_of(&[relayed, direct])
        } else {
            bytes_of(&[relayed])
        },
        has_direct_conns: outcome == pb::HolePunchOutcome::Success,
        error: (outcome != pb::HolePunchOutcome::Success)
            .then(|| "none of the 3 attempts succeeded".to_owned()),
        outcome: outcome.into(),
        ended_at: at + 5 * MS,
        listen_multi_addresses: bytes_of(&[
            parse("/ip6/fd00:18::2/tcp/40123"),
            parse("/ip6/fd00:18::2/udp/40124/quic-v1"),
        ]),
        api_key: key.into(),
        // No filter echoed, no latencies, no network information, no NAT mappings.
        protocols: Vec::new(),
        latency_measurements: Vec::new(),
        network_information: None,
        nat_mappings: Vec::new(),
        ..Default::default()
    }
}

/// A result as the original Go client builds it for a punch whose first attempt's tracer event
/// was queued before the client stamped `opened_at`.
fn go_client_result(key: &str, host: &PeerId, remote: &PeerId) -> pb::TrackHolePunchRequest {
    let mut request = track_request(key, host, remote);
    let first = &mut request.hole_punch_attempts[0];
    let opened_at = first.opened_at;
    first.started_at = Some(opened_at - 3 * MS);
    // Sent always, possibly empty.
    first.direct_dial_error = Some(String::new());
    request.latency_measurements.clear();
    request.network_information = None;
    request.protocols.clear();
    request
}

async fn load(db: &TestDb, index: usize) -> punchr_store::HolePunchRecord {
    let ids = result_ids(&db.store).await;
    db.store
        .load_hole_punch_result(ids[index])
        .await
        .expect("load the result")
        .expect("the result exists")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

async fn the_original_rust_clients_microseconds_are_stored_as_seconds(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let key = new_api_key(&db.store, "rust").await;
    let host = register_as(&mut client, &key, RUST_AGENT).await;
    let remote = seed_remote(&db.store).await.peer;

    // 87 ms: 87,000 "seconds", above the 86,400 that ended the original client's process.
    let success = rust_client_result(&key, &host, &remote, &[87], pb::HolePunchOutcome::Success);
    client
        .track_hole_punch(success)
        .await
        .expect("an 87 ms attempt is accepted");
    // Three timeouts of 15 s each.
    let failure = rust_client_result(
        &key,
        &host,
        &remote,
        &[15_000, 15_000, 15_000],
        pb::HolePunchOutcome::Failed,
    );
    client
        .track_hole_punch(failure)
        .await
        .expect("a failed punch is accepted");

    let stored = load(&db, 0).await;
    assert_eq!(stored.outcome, Outcome::Success);
    assert_eq!(stored.protocol_filters, Vec::<i32>::new());
    assert!(stored.latency_measurements.is_empty());
    assert_eq!(stored.network_information, None);
    let [attempt] = stored.attempts.as_slice() else {
        panic!("one attempt, got {:?}", stored.attempts);
    };
    assert!(close(attempt.elapsed_seconds, 0.087), "{attempt:?}");
    assert_eq!(attempt.elapsed_time_raw, Some(87_000.0));
    assert_eq!(attempt.outcome, AttemptOutcome::Success);
    assert_eq!(
        attempt.addresses,
        [parse("/ip4/198.18.7.9/udp/4001/quic-v1")]
    );
    assert_eq!(stored.listen_addresses.len(), 2);

    let stored = load(&db, 1).await;
    assert_eq!(stored.outcome, Outcome::Failed);
    assert_eq!(stored.attempts.len(), 3);
    for attempt in &stored.attempts {
        assert!(close(attempt.elapsed_seconds, 15.0), "{attempt:?}");
        // The client rounds the nanoseconds to f32 before dividing, as sent.
        assert_eq!(
            attempt.elapsed_time_raw,
            Some(f64::from(15_000_000_000u64 as f32 / 1000.0))
        );
        assert_eq!(attempt.outcome, AttemptOutcome::Timeout);
        assert_eq!(attempt.error.as_deref(), Some("hole-punch timed out"));
    }
}

async fn the_original_go_clients_unordered_attempt_times_are_kept(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let key = new_api_key(&db.store, "go").await;
    let host = register_as(&mut client, &key, GO_AGENT).await;
    let remote = seed_remote(&db.store).await.peer;
    let request = go_client_result(&key, &host, &remote);

    client
        .track_hole_punch(request.clone())
        .await
        .expect("the Go client's attempt times are accepted in any order");

    let stored = load(&db, 0).await;
    let first = &stored.attempts[0];
    let sent = &request.hole_punch_attempts[0];
    assert_eq!(first.started_at, sent.started_at.map(|t| t as i64));
    assert_eq!(first.opened_at, sent.opened_at as i64);
    // Seconds stay seconds; nothing was normalised.
    assert_eq!(first.elapsed_seconds, 0.640625);
    assert_eq!(first.elapsed_time_raw, None);
    assert_eq!(first.direct_dial_error, None);
    assert!(stored.latency_measurements.is_empty());
}

async fn our_client_keeps_the_strict_checks(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let (key, host) = new_client(&db.store, &mut client, "ours").await;
    let remote = seed_remote(&db.store).await.peer;

    let status = client
        .track_hole_punch(go_client_result(&key, &host, &remote))
        .await
        .expect_err("our client's attempt times must be in order");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("hole_punch_attempts[0].started_at"),
        "{}",
        status.message()
    );
    let status = client
        .track_hole_punch(rust_client_result(
            &key,
            &host,
            &remote,
            &[87],
            pb::HolePunchOutcome::Success,
        ))
        .await
        .expect_err("our client sends seconds");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("elapsed_time"),
        "{}",
        status.message()
    );
    assert!(result_ids(&db.store).await.is_empty());
}

fn family<'a>(rows: &'a [FamilyRow], key: &str) -> &'a FamilyRow {
    rows.iter()
        .find(|row| row.row.key == key)
        .unwrap_or_else(|| panic!("no family {key:?} in {rows:#?}"))
}

async fn reports_split_by_client_and_remote_family(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let rust_key = new_api_key(&db.store, "rust").await;
    let rust_host = register_as(&mut client, &rust_key, RUST_AGENT).await;
    let go_key = new_api_key(&db.store, "go").await;
    let go_host = register_as(&mut client, &go_key, GO_AGENT).await;
    let (our_key, our_host) = new_client(&db.store, &mut client, "ours").await;
    let kubo = seed_remote(&db.store).await.peer;
    let go_remote = seed_remote(&db.store).await.peer;
    db.store
        .upsert_peer(&PeerInfo {
            peer_id: go_remote.to_base58(),
            agent_version: Some("go-libp2p/0.40.0 (punchr-lab remote)".into()),
            protocols: remote_protocols(true),
        })
        .await
        .expect("set the remote's agent");

    let sent = [
        rust_client_result(
            &rust_key,
            &rust_host,
            &kubo,
            &[87],
            pb::HolePunchOutcome::Success,
        ),
        rust_client_result(
            &rust_key,
            &rust_host,
            &go_remote,
            &[900, 900, 900],
            pb::HolePunchOutcome::Failed,
        ),
        go_client_result(&go_key, &go_host, &go_remote),
        track_request(&our_key, &our_host, &kubo),
    ];
    for (i, request) in sent.into_iter().enumerate() {
        if let Err(status) = client.track_hole_punch(request).await {
            panic!("result {i} is refused: {status:?}");
        }
    }

    let report = build_report(&db.store.read_only(), &ReportFilter::default())
        .await
        .expect("build the report");
    assert_eq!(report.outcomes.total(), 4);

    let rust = family(&report.by_client_family, "original Rust client 0.2");
    assert_eq!(
        (rust.row.outcomes.success, rust.row.outcomes.failed),
        (1, 1)
    );
    assert_eq!(rust.successes_by_attempt.get("1"), Some(&1));
    assert_eq!(rust.successes_by_transport.get("QUIC"), Some(&1));
    let go = family(&report.by_client_family, "original Go client 0.8");
    assert_eq!(go.row.outcomes.success, 1);
    assert_eq!(go.successes_by_attempt.get("3"), Some(&1));
    let ours = family(&report.by_client_family, "punchr-rs client 0.1");
    assert_eq!(ours.row.outcomes.success, 1);
    assert_eq!(report.by_client_family.len(), 3);

    let kubo = family(&report.by_remote_family, "kubo 0.25");
    assert_eq!(kubo.row.outcomes.success, 2);
    let go_libp2p = family(
        &report.by_remote_family,
        "go-libp2p 0.40 (legacy DCUtR roles)",
    );
    assert_eq!(
        (
            go_libp2p.row.outcomes.success,
            go_libp2p.row.outcomes.failed
        ),
        (1, 1)
    );

    // The text and HTML outputs carry both splits.
    let text = punchr_report::render::text::render(&report);
    assert!(text.contains("By client family"), "{text}");
    assert!(text.contains("original Rust client 0.2"), "{text}");
    let html = punchr_report::render::html::render(&report, "t");
    assert!(html.contains("go-libp2p 0.40 (legacy DCUtR roles)"));
}
