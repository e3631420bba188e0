//! TrackHolePunch: a valid result is stored whole; an invalid one is refused as
//! INVALID_ARGUMENT naming the field, and nothing of it is stored.

use crate::common::*;
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use punchr_proto as pb;
use punchr_store::{AttemptOutcome, LatencyKind, NatMapping, NetworkInformation, Outcome};
use punchr_testutil::fixtures::{peer_id, relay_address};
use punchr_testutil::{on_both_engines, TestDb};
use tonic::Code;

on_both_engines!(
    a_full_result_is_stored_whole,
    a_failed_result_without_optional_parts_is_stored,
    limits_are_inclusive,
    invalid_results_are_refused_naming_the_field_and_nothing_is_stored,
    requests_above_max_request_bytes_are_refused,
    a_result_delivered_twice_with_its_report_id_is_stored_once,
    a_report_id_is_deduplicated_per_key_only,
    an_attempt_ending_before_the_relayed_connection_is_refused,
);

/// Two keys whose clients happen to send the same report id both have their result stored: the
/// id is unique per key, so one key can neither suppress nor overwrite another key's result.
async fn a_report_id_is_deduplicated_per_key_only(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let (alice, alice_host, remote) = reporting_client(&db, &mut client).await;
    let (bob, bob_host) = new_client(&db.store, &mut client, "bob").await;
    let report_id = Some(rand::random::<[u8; 16]>().to_vec());
    for (key, host) in [
        (&alice, &alice_host),
        (&bob, &bob_host),
        (&alice, &alice_host),
    ] {
        let mut request = track_request(key, host, &remote);
        request.report_id.clone_from(&report_id);
        client
            .track_hole_punch(request)
            .await
            .expect("acknowledged");
    }
    assert_eq!(count(&db.store, "hole_punch_results").await, 2);
    let keys: std::collections::BTreeSet<i64> =
        sqlx::query("SELECT api_key_id FROM hole_punch_results")
            .fetch_all(db.store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| sqlx::Row::try_get(row, 0).unwrap())
            .collect();
    let expected = [
        api_key_id(&db.store, &alice).await,
        api_key_id(&db.store, &bob).await,
    ];
    assert_eq!(keys, expected.into_iter().collect());
}

/// An attempt runs over the relayed connection, so it cannot end before that connection was
/// up; such a result would store a negative time to a direct connection. Our client's is
/// refused; the original clients' (whose clocks and tracer events are known to disorder their
/// timestamps, see `Quirks`) are accepted as they always were.
async fn an_attempt_ending_before_the_relayed_connection_is_refused(db: TestDb) {
    const MS: u64 = 1_000_000;
    let (_server, mut client) = serve(&db, &[]).await;
    let (key, host, remote) = reporting_client(&db, &mut client).await;
    let impossible = |key: &str, host: &PeerId| {
        let mut request = track_request(key, host, &remote);
        let start = request.connect_started_at;
        let first = &mut request.hole_punch_attempts[0];
        first.opened_at = start + 50 * MS;
        first.started_at = Some(start + 60 * MS);
        first.ended_at = start + 100 * MS;
        request
    };
    assert_status(
        client.track_hole_punch(impossible(&key, &host)).await,
        Code::InvalidArgument,
        "hole_punch_attempts[0].ended_at: before connect_ended_at",
    );
    assert_eq!(count(&db.store, "hole_punch_results").await, 0);

    let go_host = peer_id();
    client
        .register(punchr_proto::RegisterRequest {
            client_id: go_host.to_bytes(),
            agent_version: "punchr/go-client/0.8.0".into(),
            protocols: Vec::new(),
            api_key: key.clone(),
        })
        .await
        .unwrap();
    client
        .track_hole_punch(impossible(&key, &go_host))
        .await
        .expect("the original Go client's result is kept");
    assert_eq!(count(&db.store, "hole_punch_results").await, 1);
}

fn sorted(mut addresses: Vec<Multiaddr>) -> Vec<Multiaddr> {
    addresses.sort_by_key(|a| a.to_string());
    addresses.dedup();
    addresses
}

fn nanos(wire: u64) -> i64 {
    i64::try_from(wire).expect("a plausible time")
}

/// Registers a client host and returns its key, host and a remote to report on.
async fn reporting_client(db: &TestDb, client: &mut Client) -> (String, PeerId, PeerId) {
    let (key, host) = new_client(&db.store, client, "alice").await;
    let remote = seed_remote(&db.store).await;
    (key, host, remote.peer)
}

async fn stored_result(db: &TestDb) -> punchr_store::HolePunchRecord {
    let ids = result_ids(&db.store).await;
    assert_eq!(ids.len(), 1, "one stored result");
    db.store
        .load_hole_punch_result(ids[0])
        .await
        .expect("load the result")
        .expect("the result exists")
}

async fn a_full_result_is_stored_whole(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let (key, host, remote) = reporting_client(&db, &mut client).await;
    let request = track_request(&key, &host, &remote);

    client
        .track_hole_punch(request.clone())
        .await
        .expect("a valid result is accepted");

    let stored = stored_result(&db).await;
    assert_eq!(stored.api_key_id, api_key_id(&db.store, &key).await);
    assert_eq!(stored.client_peer_id, host.to_base58());
    assert_eq!(stored.remote_peer_id, remote.to_base58());
    assert_eq!(
        stored.remote_addresses,
        sorted(decode_addresses(&request.remote_multi_addresses))
    );
    assert_eq!(
        stored.open_addresses,
        sorted(decode_addresses(&request.open_multi_addresses))
    );
    assert_eq!(stored.listen_addresses, sorted(listen_addresses()));
    assert_eq!(stored.connect_started_at, nanos(request.connect_started_at));
    assert_eq!(stored.connect_ended_at, nanos(request.connect_ended_at));
    assert_eq!(stored.ended_at, nanos(request.ended_at));
    assert!(stored.has_direct_conns);
    assert_eq!(stored.outcome, Outcome::Success);
    assert_eq!(stored.error, None);
    assert_eq!(stored.protocol_filters, vec![4, 6]);

    let outcomes: Vec<_> = stored.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            AttemptOutcome::Failed,
            AttemptOutcome::Failed,
            AttemptOutcome::Success
        ]
    );
    for (stored, sent) in stored.attempts.iter().zip(&request.hole_punch_attempts) {
        assert_eq!(stored.opened_at, nanos(sent.opened_at));
        assert_eq!(stored.started_at, sent.started_at.map(nanos));
        assert_eq!(stored.ended_at, nanos(sent.ended_at));
        assert_eq!(stored.start_rtt_seconds, Some(0.0625));
        assert_eq!(stored.elapsed_seconds, 0.640625);
        assert_eq!(stored.error, sent.error);
        assert_eq!(stored.addresses, sorted(direct_addresses()));
    }

    let [to_relay, to_remote] = stored.latency_measurements.as_slice() else {
        panic!(
            "two latency measurements, got {:?}",
            stored.latency_measurements
        );
    };
    let relayed = relay_address(1, &remote);
    assert_eq!(to_relay.kind, LatencyKind::ToRelay);
    assert_eq!(to_relay.peer.peer_id, relay_of(&relayed).to_base58());
    assert_eq!(
        to_relay.peer.agent_version.as_deref(),
        Some("go-ipfs/0.18.1")
    );
    assert_eq!(to_relay.address, relayed);
    assert_eq!(to_relay.rtts, vec![0.03125, 0.0390625, -1.0]);
    assert_eq!(to_relay.rtt_errors, vec!["", "", "stream reset"]);
    assert_eq!(to_remote.kind, LatencyKind::ToRemoteAfterHolePunch);
    assert_eq!(to_remote.peer.peer_id, remote.to_base58());
    assert_eq!(to_remote.peer.protocols, remote_protocols(true));
    assert_eq!(to_remote.address, direct_addresses()[0]);
    assert_eq!(to_remote.rtts, vec![0.015625, 0.0234375]);

    assert_eq!(
        stored.network_information,
        Some(NetworkInformation {
            supports_ipv6: Some(true),
            supports_ipv6_error: None,
            router_login_html: Some("<html><title>FRITZ!Box</title></html>".into()),
            router_login_html_error: None,
        })
    );
    assert_eq!(
        stored.nat_mappings,
        vec![NatMapping {
            internal_port: 12000,
            external_port: 41000,
            protocol: "tcp".into(),
            addr: "198.51.100.7".into(),
            addr_network: "ip4".into(),
        }]
    );
}

async fn a_failed_result_without_optional_parts_is_stored(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let (key, host, remote) = reporting_client(&db, &mut client).await;
    let mut request = track_request(&key, &host, &remote);
    request.outcome = pb::HolePunchOutcome::NoConnection.into();
    request.error = Some("failed to dial: context deadline exceeded".into());
    request.has_direct_conns = false;
    request.hole_punch_attempts.clear();
    request.open_multi_addresses.clear();
    request.latency_measurements.clear();
    request.nat_mappings.clear();
    request.network_information = None;
    request.protocols.clear();

    client.track_hole_punch(request).await.expect("accepted");

    let stored = stored_result(&db).await;
    assert_eq!(stored.outcome, Outcome::NoConnection);
    assert_eq!(
        stored.error.as_deref(),
        Some("failed to dial: context deadline exceeded")
    );
    assert!(!stored.has_direct_conns);
    assert!(stored.attempts.is_empty());
    assert!(stored.open_addresses.is_empty());
    assert!(stored.latency_measurements.is_empty());
    assert!(stored.nat_mappings.is_empty());
    assert_eq!(stored.network_information, None);
    assert!(stored.protocol_filters.is_empty());
}

/// `count` distinct direct addresses.
fn many_addresses(count: u8) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            format!("/ip4/198.18.2.{i}/tcp/4001")
                .parse::<Multiaddr>()
                .expect("valid")
                .to_vec()
        })
        .collect()
}

async fn limits_are_inclusive(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let (key, host, remote) = reporting_client(&db, &mut client).await;
    let mut request = track_request(&key, &host, &remote);
    request.remote_multi_addresses = many_addresses(64);
    request.hole_punch_attempts = vec![request.hole_punch_attempts[0].clone(); 10];
    request.error = Some("e".repeat(4096));

    client
        .track_hole_punch(request)
        .await
        .expect("a result at every limit is accepted");

    let stored = stored_result(&db).await;
    assert_eq!(stored.remote_addresses.len(), 64);
    assert_eq!(stored.attempts.len(), 10);
    assert_eq!(stored.error.map(|e| e.len()), Some(4096));
}

/// A way to spoil a valid request, and the field the refusal must name.
struct Spoiled {
    rule: &'static str,
    field: &'static str,
    spoil: fn(&mut pb::TrackHolePunchRequest),
}

const HOUR_NS: u64 = 3_600_000_000_000;

fn spoiled_requests() -> Vec<Spoiled> {
    vec![
        Spoiled {
            rule: "client_id is not a peer ID",
            field: "client_id",
            spoil: |r| r.client_id = b"\x12\x20not-a-multihash".to_vec(),
        },
        Spoiled {
            rule: "remote_id is not a peer ID",
            field: "remote_id",
            spoil: |r| r.remote_id = vec![0xff; 7],
        },
        Spoiled {
            rule: "remote_id is missing",
            field: "remote_id",
            spoil: |r| r.remote_id.clear(),
        },
        Spoiled {
            rule: "a remote address is garbage",
            field: "remote_multi_addresses[1]",
            spoil: |r| r.remote_multi_addresses[1] = b"\xde\xad\xbe\xef garbage".to_vec(),
        },
        Spoiled {
            rule: "a remote address is empty",
            field: "remote_multi_addresses[0]",
            spoil: |r| r.remote_multi_addresses[0].clear(),
        },
        Spoiled {
            rule: "the connection ended before it started",
            field: "connect_ended_at",
            spoil: |r| r.connect_ended_at = r.connect_started_at - 1,
        },
        Spoiled {
            rule: "a time in seconds instead of nanoseconds lies in 1970",
            field: "connect_started_at",
            spoil: |r| r.connect_started_at /= 1_000_000_000,
        },
        Spoiled {
            rule: "a time far in the future",
            field: "ended_at",
            spoil: |r| r.ended_at = now() + HOUR_NS,
        },
        Spoiled {
            rule: "an attempt's time far in the future",
            field: "hole_punch_attempts[2].ended_at",
            spoil: |r| r.hole_punch_attempts[2].ended_at = now() + HOUR_NS,
        },
        Spoiled {
            rule: "more than ten attempts",
            field: "hole_punch_attempts",
            spoil: |r| r.hole_punch_attempts = vec![r.hole_punch_attempts[0].clone(); 11],
        },
        Spoiled {
            rule: "an attempt started before its stream opened",
            field: "hole_punch_attempts[0].started_at",
            spoil: |r| {
                let attempt = &mut r.hole_punch_attempts[0];
                attempt.started_at = Some(attempt.opened_at - 1);
            },
        },
        Spoiled {
            rule: "an attempt ended before its stream opened",
            field: "hole_punch_attempts[1].ended_at",
            spoil: |r| {
                let attempt = &mut r.hole_punch_attempts[1];
                attempt.ended_at = attempt.opened_at - 1;
                attempt.started_at = None;
            },
        },
        Spoiled {
            rule: "an attempt opened before the connection started",
            field: "hole_punch_attempts[0].opened_at",
            spoil: |r| r.hole_punch_attempts[0].opened_at = r.connect_started_at - 1,
        },
        Spoiled {
            rule: "an elapsed time is NaN",
            field: "hole_punch_attempts[1].elapsed_time",
            spoil: |r| r.hole_punch_attempts[1].elapsed_time = f32::NAN,
        },
        Spoiled {
            rule: "an elapsed time is negative",
            field: "hole_punch_attempts[0].elapsed_time",
            spoil: |r| r.hole_punch_attempts[0].elapsed_time = -0.5,
        },
        Spoiled {
            rule: "a start RTT is infinite",
            field: "hole_punch_attempts[0].start_rtt",
            spoil: |r| r.hole_punch_attempts[0].start_rtt = Some(f32::INFINITY),
        },
        Spoiled {
            rule: "the outcome is an unknown enum value",
            field: "outcome",
            spoil: |r| r.outcome = 42,
        },
        Spoiled {
            rule: "an attempt outcome is an unknown enum value",
            field: "hole_punch_attempts[2].outcome",
            spoil: |r| r.hole_punch_attempts[2].outcome = 42,
        },
        Spoiled {
            rule: "rtt_errs is neither empty nor as long as rtts",
            field: "latency_measurements[0].rtt_errs",
            spoil: |r| r.latency_measurements[0].rtt_errs.truncate(2),
        },
        Spoiled {
            rule: "an RTT is negative but not the failure marker -1",
            field: "latency_measurements[1].rtts[0]",
            spoil: |r| r.latency_measurements[1].rtts[0] = -0.25,
        },
        Spoiled {
            rule: "a latency measurement type is unknown",
            field: "latency_measurements[0].mtype",
            spoil: |r| r.latency_measurements[0].mtype = 7,
        },
        Spoiled {
            rule: "a latency measurement's peer is not a peer ID",
            field: "latency_measurements[1].remote_id",
            spoil: |r| r.latency_measurements[1].remote_id = b"peer".to_vec(),
        },
        Spoiled {
            rule: "a NAT mapping port is above 65535",
            field: "nat_mappings[0].external_port",
            spoil: |r| r.nat_mappings[0].external_port = 70_000,
        },
        Spoiled {
            rule: "a NAT mapping port is negative",
            field: "nat_mappings[0].internal_port",
            spoil: |r| r.nat_mappings[0].internal_port = -1,
        },
        Spoiled {
            rule: "a NAT mapping protocol is neither tcp nor udp",
            field: "nat_mappings[0].protocol",
            spoil: |r| r.nat_mappings[0].protocol = "sctp".into(),
        },
        Spoiled {
            rule: "the error is longer than 4096 bytes",
            field: "error",
            spoil: |r| r.error = Some("e".repeat(4097)),
        },
        Spoiled {
            rule: "an attempt error is longer than 4096 bytes",
            field: "hole_punch_attempts[0].error",
            spoil: |r| r.hole_punch_attempts[0].error = Some("e".repeat(4097)),
        },
        Spoiled {
            rule: "the router login page is longer than 64 KiB",
            field: "network_information.router_login_html",
            spoil: |r| {
                r.network_information
                    .as_mut()
                    .expect("set")
                    .router_login_html = Some("x".repeat(64 * 1024 + 1))
            },
        },
        Spoiled {
            rule: "an empty report_id",
            field: "report_id",
            spoil: |r| r.report_id = Some(Vec::new()),
        },
        Spoiled {
            rule: "a report_id longer than 64 bytes",
            field: "report_id",
            spoil: |r| r.report_id = Some(vec![7; 65]),
        },
        Spoiled {
            rule: "more than 64 remote addresses",
            field: "remote_multi_addresses",
            spoil: |r| r.remote_multi_addresses = many_addresses(65),
        },
        Spoiled {
            rule: "more than 64 open addresses",
            field: "open_multi_addresses",
            spoil: |r| r.open_multi_addresses = many_addresses(65),
        },
        Spoiled {
            rule: "more than 64 addresses in an attempt",
            field: "hole_punch_attempts[1].multi_addresses",
            spoil: |r| r.hole_punch_attempts[1].multi_addresses = many_addresses(65),
        },
    ]
}

async fn invalid_results_are_refused_naming_the_field_and_nothing_is_stored(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let (key, host, remote) = reporting_client(&db, &mut client).await;
    let peers = count(&db.store, "peers").await;
    let addresses = count(&db.store, "multi_addresses").await;

    for case in spoiled_requests() {
        let mut request = track_request(&key, &host, &remote);
        (case.spoil)(&mut request);
        let result = client.track_hole_punch(request).await;
        let status = result.expect_err(case.rule);
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{}: {status:?}",
            case.rule
        );
        assert!(
            status.message().starts_with(&format!("{}: ", case.field)),
            "{}: message {:?} does not name {}",
            case.rule,
            status.message(),
            case.field
        );
        assert_eq!(
            count(&db.store, "hole_punch_results").await,
            0,
            "{}",
            case.rule
        );
        assert_eq!(count(&db.store, "peers").await, peers, "{}", case.rule);
        assert_eq!(
            count(&db.store, "multi_addresses").await,
            addresses,
            "{}",
            case.rule
        );
    }

    // The unspoiled request is fine: the refusals were about the spoiled fields.
    client
        .track_hole_punch(track_request(&key, &host, &remote))
        .await
        .expect("a valid result is accepted");
    assert_eq!(count(&db.store, "hole_punch_results").await, 1);
}

async fn requests_above_max_request_bytes_are_refused(db: TestDb) {
    let (_server, mut client) = serve(&db, &["--max-request-bytes", "2000"]).await;
    let (key, host, remote) = reporting_client(&db, &mut client).await;
    let mut request = track_request(&key, &host, &remote);
    request
        .network_information
        .as_mut()
        .expect("set")
        .router_login_html = Some("x".repeat(4000));

    let status = client
        .track_hole_punch(request)
        .await
        .expect_err("too large");

    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(count(&db.store, "hole_punch_results").await, 0);
}

async fn a_result_delivered_twice_with_its_report_id_is_stored_once(db: TestDb) {
    let (_server, mut client) = serve(&db, &[]).await;
    let (key, host, remote) = reporting_client(&db, &mut client).await;
    let mut request = track_request(&key, &host, &remote);
    request.report_id = Some(rand::random::<[u8; 16]>().to_vec());

    client
        .track_hole_punch(request.clone())
        .await
        .expect("first delivery");
    client
        .track_hole_punch(request.clone())
        .await
        .expect("a retry is acknowledged");
    assert_eq!(count(&db.store, "hole_punch_results").await, 1);

    // Another report of the same client is a new result.
    request.report_id = Some(rand::random::<[u8; 16]>().to_vec());
    client
        .track_hole_punch(request)
        .await
        .expect("another report");
    assert_eq!(count(&db.store, "hole_punch_results").await, 2);
}
