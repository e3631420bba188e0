//! A campaign with known outcomes, written through the store's public write path
//! (`Store::insert_hole_punch_result`), so that every number a report shows can be checked.
//!
//! | outcome | results | transport of the direct connection | client |
//! |---|---|---|---|
//! | SUCCESS | 30 | 20 TCP/IPv4, 10 QUIC/IPv6 (FINAL) | alice 15, bob 15 |
//! | FAILED | 10 | tried TCP and QUIC over IPv4 | alice 5, bob 5 |
//! | NO_STREAM | 5 | none | bob |
//! | NO_CONNECTION | 3 | none | bob |
//! | CONNECTION_REVERSED | 2 | none (no attempts) | bob |
//! | CANCELLED | 1 | tried TCP/IPv4 | bob |
//!
//! Successes came on attempt 1 (18), 2 (8) and 3 (4). Success number i (0-based) reached its
//! direct connection (i + 1) × 100 ms after the relayed one: 0.1 s … 3.0 s, so p50 = 1.5 s and
//! p90 = 2.7 s (nearest rank). Remotes: one `kubo/0.25.0/abc1234` peer (the SUCCESS and NO_STREAM
//! results), one `go-ipfs/0.18.1/` peer (the rest). Lab labels: alice's host full-cone, bob's
//! symmetric, the kubo remote port-restricted, the go-ipfs remote symmetric.

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use punchr_report::{GroupRow, Report};
use punchr_store::{
    ApiKey, ApiKeySecret, AttemptOutcome, HolePunchAttemptRecord, HolePunchRecord, Outcome,
    PeerInfo, Store,
};
use punchr_testutil::fixtures;

/// What the dataset holds, for assertions.
pub struct Dataset {
    pub alice: ApiKey,
    pub alice_secret: ApiKeySecret,
    pub bob: ApiKey,
    pub alice_host: PeerId,
    pub bob_host: PeerId,
    pub kubo_remote: PeerId,
    pub go_remote: PeerId,
}

pub const TOTAL: u64 = 51;
pub const SUCCESSES: u64 = 30;
pub const FAILURES: u64 = 10;

fn addr(text: &str) -> Multiaddr {
    text.parse().expect("valid address")
}

const TCP4: &str = "/ip4/198.51.100.20/tcp/4001";
const QUIC4: &str = "/ip4/198.51.100.20/udp/4001/quic-v1";
const QUIC6: &str = "/ip6/2a01:4f8::20/udp/4001/quic-v1";

fn attempt(
    result: &HolePunchRecord,
    number: i64,
    outcome: AttemptOutcome,
    ended_at: i64,
    addresses: &[&str],
) -> HolePunchAttemptRecord {
    let error = match outcome {
        AttemptOutcome::Success => None,
        AttemptOutcome::Cancelled => Some("context canceled".to_owned()),
        _ => Some(format!(
            "dial tcp 198.51.100.{}:4001: i/o timeout",
            number * 10 + ended_at % 7
        )),
    };
    HolePunchAttemptRecord {
        opened_at: result.connect_ended_at + number * 1_000_000,
        started_at: Some(result.connect_ended_at + number * 1_000_000 + 500_000),
        ended_at,
        start_rtt_seconds: Some(0.03125),
        elapsed_seconds: 0.25,
        elapsed_time_raw: None,
        outcome,
        error,
        direct_dial_error: None,
        addresses: addresses.iter().map(|a| addr(a)).collect(),
        handshake_role: None,
    }
}

/// Writes the dataset into `store`.
pub async fn insert(store: &Store) -> Dataset {
    let (alice, alice_secret) = store.create_api_key("alice").await.expect("alice's key");
    let (bob, _) = store.create_api_key("bob").await.expect("bob's key");
    let (alice_host, bob_host) = (fixtures::peer_id(), fixtures::peer_id());
    let (kubo_remote, go_remote) = (fixtures::peer_id(), fixtures::peer_id());
    let mut seq = 0u32;
    let mut next = |key: &ApiKey, host: &PeerId, remote: &PeerId, outcome: Outcome| {
        seq += 1;
        let mut result = fixtures::hole_punch_result(key.id, host, remote, seq);
        result.outcome = outcome;
        result.latency_measurements.clear();
        result.attempts.clear();
        result.error = None;
        result.has_direct_conns = false;
        result.open_addresses = vec![result.remote_addresses[0].clone()];
        result
    };
    let mut results = Vec::new();
    for i in 0..30i64 {
        let key = if i < 15 { &alice } else { &bob };
        let host = if i < 15 { &alice_host } else { &bob_host };
        let mut result = next(key, host, &kubo_remote, Outcome::Success);
        let winning_attempt = if i < 18 {
            1
        } else if i < 26 {
            2
        } else {
            3
        };
        for number in 1..winning_attempt {
            let ended = result.connect_ended_at + number * 10_000_000;
            result.attempts.push(attempt(
                &result,
                number,
                AttemptOutcome::Failed,
                ended,
                &[TCP4, QUIC4],
            ));
        }
        let direct_at = result.connect_ended_at + (i + 1) * 100_000_000;
        result.attempts.push(attempt(
            &result,
            winning_attempt,
            AttemptOutcome::Success,
            direct_at,
            &[TCP4, QUIC4],
        ));
        result
            .open_addresses
            .push(addr(if i < 20 { TCP4 } else { QUIC6 }));
        result.has_direct_conns = true;
        results.push(result);
    }
    for j in 0..10i64 {
        let (key, host) = if j < 5 {
            (&alice, &alice_host)
        } else {
            (&bob, &bob_host)
        };
        let mut result = next(key, host, &go_remote, Outcome::Failed);
        for number in 1..=3 {
            let ended = result.connect_ended_at + number * 10_000_000 + j;
            result.attempts.push(attempt(
                &result,
                number,
                AttemptOutcome::Failed,
                ended,
                &[TCP4, QUIC4],
            ));
        }
        result.error = Some("none of the 3 attempts succeeded".to_owned());
        results.push(result);
    }
    for _ in 0..5 {
        let mut result = next(&bob, &bob_host, &kubo_remote, Outcome::NoStream);
        result.error = Some("/libp2p/dcutr stream was not opened after 30s".to_owned());
        results.push(result);
    }
    for _ in 0..3 {
        let mut result = next(&bob, &bob_host, &go_remote, Outcome::NoConnection);
        result.error = Some(format!(
            "failed to dial {}: all dials failed",
            fixtures::peer_id()
        ));
        result.open_addresses.clear();
        results.push(result);
    }
    for _ in 0..2 {
        let mut result = next(&bob, &bob_host, &go_remote, Outcome::ConnectionReversed);
        result.open_addresses = vec![addr(TCP4)];
        result.has_direct_conns = true;
        results.push(result);
    }
    let mut cancelled = next(&bob, &bob_host, &go_remote, Outcome::Cancelled);
    let ended = cancelled.connect_ended_at + 5_000_000;
    cancelled.attempts.push(attempt(
        &cancelled,
        1,
        AttemptOutcome::Cancelled,
        ended,
        &[TCP4],
    ));
    cancelled.error = Some("context canceled".to_owned());
    results.push(cancelled);

    for result in &results {
        store
            .insert_hole_punch_result(result)
            .await
            .expect("store a result");
    }
    for (peer, agent) in [
        (&kubo_remote, "kubo/0.25.0/abc1234"),
        (&go_remote, "go-ipfs/0.18.1/"),
    ] {
        store
            .upsert_peer(&PeerInfo {
                peer_id: peer.to_string(),
                agent_version: Some(agent.to_owned()),
                protocols: vec!["/libp2p/dcutr".to_owned()],
            })
            .await
            .expect("agent version");
    }
    for (peer, nat) in [
        (&alice_host, "full-cone"),
        (&bob_host, "symmetric"),
        (&kubo_remote, "port-restricted"),
        (&go_remote, "symmetric"),
    ] {
        store
            .label_lab_peer(&peer.to_string(), nat, Some("test"))
            .await
            .expect("label");
    }
    Dataset {
        alice,
        alice_secret,
        bob,
        alice_host,
        bob_host,
        kubo_remote,
        go_remote,
    }
}

pub fn group<'a>(rows: &'a [GroupRow], key: &str) -> &'a GroupRow {
    rows.iter().find(|row| row.key == key).unwrap_or_else(|| {
        panic!(
            "no group {key:?} in {:?}",
            rows.iter().map(|r| &r.key).collect::<Vec<_>>()
        )
    })
}

/// (SUCCESS, FAILED, total) of a group.
pub fn counts(row: &GroupRow) -> (u64, u64, u64) {
    (
        row.outcomes.success,
        row.outcomes.failed,
        row.outcomes.total(),
    )
}

/// Asserts every number the dataset determines.
pub fn assert_known_numbers(report: &Report) {
    let o = &report.outcomes;
    assert_eq!(
        (
            o.success,
            o.failed,
            o.no_stream,
            o.no_connection,
            o.connection_reversed,
            o.cancelled,
            o.unknown
        ),
        (30, 10, 5, 3, 2, 1, 0)
    );
    assert_eq!(o.total(), TOTAL);
    assert_eq!(
        (
            report.published_rate.successes,
            report.published_rate.trials
        ),
        (SUCCESSES, SUCCESSES + FAILURES)
    );
    assert_eq!(report.published_rate.value, Some(0.75));
    let [low, high] = report.published_rate.ci95.unwrap();
    assert!(
        (low - 0.5981).abs() < 1e-3 && (high - 0.8581).abs() < 1e-3,
        "{low} {high}"
    );
    assert_eq!(
        (
            report.end_to_end_rate.successes,
            report.end_to_end_rate.trials
        ),
        (30, 51)
    );

    assert_eq!(counts(group(&report.by_transport, "TCP")), (20, 10, 31));
    assert_eq!(counts(group(&report.by_transport, "QUIC")), (10, 10, 20));
    assert_eq!(counts(group(&report.by_transport, "none")), (0, 0, 10));
    assert_eq!(
        group(&report.by_transport, "TCP").published.value,
        Some(20.0 / 30.0)
    );
    assert_eq!(counts(group(&report.by_ip_version, "IPv4")), (20, 10, 31));
    assert_eq!(counts(group(&report.by_ip_version, "IPv6")), (10, 0, 10));
    assert_eq!(counts(group(&report.by_ip_version, "none")), (0, 0, 10));

    let attempts: Vec<(i64, u64, u64)> = report
        .by_attempt
        .rows
        .iter()
        .map(|row| (row.attempt_number, row.attempts, row.successful))
        .collect();
    assert_eq!(attempts, [(1, 41, 18), (2, 22, 8), (3, 14, 4)]);
    assert_eq!(
        report.by_attempt.rows[0].share_of_successes.value,
        Some(0.6)
    );
    assert_eq!(report.by_attempt.successes_without_successful_attempt, 0);

    let ttd = &report.time_to_direct;
    assert_eq!(ttd.count, 30);
    assert_eq!((ttd.p50_seconds, ttd.p90_seconds), (Some(1.5), Some(2.7)));
    let bins: Vec<u64> = ttd.histogram.iter().map(|b| b.count).collect();
    assert_eq!(bins, [2, 2, 5, 10, 11, 0, 0, 0, 0]);

    assert_eq!(
        counts(group(&report.by_remote_agent, "kubo/0.25.0")),
        (30, 0, 35)
    );
    assert_eq!(
        counts(group(&report.by_remote_agent, "go-ipfs/0.18.1")),
        (0, 10, 16)
    );
    assert_eq!(counts(group(&report.by_client, "alice")), (15, 5, 20));
    assert_eq!(counts(group(&report.by_client, "bob")), (15, 5, 31));

    let pairs: Vec<(String, String, u64, u64, u64)> = report
        .by_nat_pair
        .iter()
        .map(|p| {
            (
                p.client_nat.clone(),
                p.remote_nat.clone(),
                p.row.outcomes.success,
                p.row.outcomes.failed,
                p.row.outcomes.total(),
            )
        })
        .collect();
    let pair = |c: &str, r: &str, s, f, t| (c.to_owned(), r.to_owned(), s, f, t);
    assert_eq!(
        pairs,
        [
            pair("full-cone", "port-restricted", 15, 0, 15),
            pair("full-cone", "symmetric", 0, 5, 5),
            pair("symmetric", "port-restricted", 15, 0, 20),
            pair("symmetric", "symmetric", 0, 5, 11),
        ]
    );

    let reasons: Vec<(&str, &str, u64)> = report
        .failure_reasons
        .iter()
        .map(|r| (r.outcome.as_str(), r.reason.as_str(), r.count))
        .collect();
    assert_eq!(
        reasons,
        [
            ("FAILED", "none of the 3 attempts succeeded", 10),
            (
                "NO_STREAM",
                "/libp2p/dcutr stream was not opened after 30s",
                5
            ),
            (
                "NO_CONNECTION",
                "failed to dial <peer>: all dials failed",
                3
            ),
            ("CONNECTION_REVERSED", "(no error text)", 2),
            ("CANCELLED", "context canceled", 1),
        ]
    );
    let attempt_reasons: Vec<(&str, &str, u64)> = report
        .attempt_failure_reasons
        .iter()
        .map(|r| (r.outcome.as_str(), r.reason.as_str(), r.count))
        .collect();
    assert_eq!(
        attempt_reasons,
        [
            ("FAILED", "dial tcp <ip>: i/o timeout", 46),
            ("CANCELLED", "context canceled", 1)
        ]
    );

    let bucketed: u64 = report.over_time.iter().map(|b| b.outcomes.total()).sum();
    assert_eq!(bucketed, TOTAL);
    let tcp_over_time: u64 = report
        .transport_over_time
        .iter()
        .filter(|b| b.transport == "TCP")
        .map(|b| b.outcomes.total())
        .sum();
    assert_eq!(tcp_over_time, 31);
}
