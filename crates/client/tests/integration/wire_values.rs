//! Every value of the enums a result carries survives the whole way: each outcome, attempt
//! outcome and latency kind, classified by the client's own state machine and encoded by its
//! report builder, goes over real gRPC (the client's link and outbox) to a server started as the
//! binary starts it, into the store, and back out through the store and the report; each
//! protocol filter the server can hand out goes GetAddrInfo → client → TrackHolePunch → store.
//! Every case expects a value of its own, so swapping two arms of any mapping on the way (the
//! client's or the server's proto ↔ domain match, the store's text) fails here.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::classify::ScriptedPunch;
use crate::common::{seed_sighting, start_server};
use libp2p::swarm::ConnectionId;
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use punchr_client::classifier::Classified;
use punchr_client::delivery::{ServerAddress, ServerLink};
use punchr_client::outbox::Outbox;
use punchr_client::request::{track_hole_punch_request, Latency, RequestContext};
use punchr_dcutr::{AttemptOutcome as DcutrOutcome, DialFailure, EventKind};
use punchr_report::{build_report, OutcomeCounts, ReportFilter};
use punchr_store::{AttemptOutcome, LatencyKind, Outcome};
use punchr_testutil::{fixtures, on_both_engines, TestDb};
use sqlx::Row;

on_both_engines!(
    every_outcome_attempt_outcome_and_latency_kind_survives_the_wire,
    every_protocol_filter_survives_the_wire,
);

const MS: i64 = 1_000_000;

/// One hole punch the client classifies, and what must come out at the other end.
struct Case {
    name: &'static str,
    /// Feeds the client's classifier.
    events: fn(&mut ScriptedPunch),
    outcome: (Outcome, &'static str),
    attempts: &'static [(AttemptOutcome, &'static str)],
}

fn direct() -> Multiaddr {
    "/ip4/11.2.2.2/tcp/4001".parse().unwrap()
}

/// Attempt `attempt` from its stream at `ms` to the start of the hole punch.
fn started(p: &mut ScriptedPunch, ms: u64, attempt: u8) {
    p.exchange(ms, attempt, vec![direct()]);
}

/// Attempt `attempt`, started, ends at `ms`: with a direct connection or a failed dial.
fn ended(p: &mut ScriptedPunch, ms: u64, attempt: u8, success: bool) {
    if success {
        p.direct_up(ms, 7, &direct());
        let connection_id = ConnectionId::new_unchecked(7);
        p.finished(ms, attempt, DcutrOutcome::Succeeded { connection_id });
    } else {
        let failure = DialFailure {
            error: "dial failed".into(),
            address_errors: vec![],
        };
        let connection_id = ConnectionId::new_unchecked(10);
        p.dcutr(
            ms,
            attempt,
            EventKind::DialFailed {
                connection_id,
                failure,
            },
        );
        p.finished(ms, attempt, DcutrOutcome::DialFailed);
    }
}

const CASES: &[Case] = &[
    Case {
        name: "relay dial failed",
        events: |p| p.relayed_dial_fails(1, "connection refused"),
        outcome: (Outcome::NoConnection, "NO_CONNECTION"),
        attempts: &[],
    },
    Case {
        name: "no stream",
        events: |p| {
            p.relayed_up(1);
            p.sleep();
        },
        outcome: (Outcome::NoStream, "NO_STREAM"),
        attempts: &[],
    },
    Case {
        name: "reversed",
        events: |p| {
            p.relayed_up(1);
            p.direct_up(2, 7, &direct());
            p.sleep();
        },
        outcome: (Outcome::ConnectionReversed, "CONNECTION_REVERSED"),
        attempts: &[],
    },
    Case {
        name: "cancelled before any stream",
        events: |p| {
            p.relayed_up(1);
            p.cancel(2);
        },
        outcome: (Outcome::Cancelled, "CANCELLED"),
        attempts: &[],
    },
    Case {
        name: "cancelled in an attempt",
        events: |p| {
            p.relayed_up(1);
            p.dcutr(2, 1, EventKind::StreamOpened);
            p.cancel(3);
        },
        outcome: (Outcome::Cancelled, "CANCELLED"),
        attempts: &[(AttemptOutcome::Cancelled, "CANCELLED")],
    },
    Case {
        name: "three failed attempts",
        events: |p| {
            p.relayed_up(1);
            for n in 0..3 {
                let at = 10 + 10 * n;
                started(p, at, n as u8 + 1);
                ended(p, at + 5, n as u8 + 1, false);
            }
        },
        outcome: (Outcome::Failed, "FAILED"),
        attempts: &[
            (AttemptOutcome::Failed, "FAILED"),
            (AttemptOutcome::Failed, "FAILED"),
            (AttemptOutcome::Failed, "FAILED"),
        ],
    },
    Case {
        name: "protocol error",
        events: |p| {
            p.relayed_up(1);
            p.dcutr(2, 1, EventKind::StreamOpened);
            let error = "unexpected message".into();
            p.finished(3, 1, DcutrOutcome::ProtocolError { error });
        },
        outcome: (Outcome::Failed, "FAILED"),
        attempts: &[(AttemptOutcome::ProtocolError, "PROTOCOL_ERROR")],
    },
    Case {
        name: "attempt timed out",
        events: |p| {
            p.relayed_up(1);
            started(p, 2, 1);
            p.sleep();
        },
        outcome: (Outcome::Failed, "FAILED"),
        attempts: &[(AttemptOutcome::Timeout, "TIMEOUT")],
    },
    Case {
        name: "hole punched",
        events: |p| {
            p.relayed_up(1);
            started(p, 2, 1);
            ended(p, 9, 1, true);
        },
        outcome: (Outcome::Success, "SUCCESS"),
        attempts: &[(AttemptOutcome::Success, "SUCCESS")],
    },
    Case {
        // go-libp2p's initiator reports a plain direct dial (DIRECT_DIAL), and the original
        // clients send it; DCUtR's responder, ours, has no such event, so this case is a
        // punched attempt that the report names DIRECT_DIAL (see `as_the_original_reports`).
        name: "direct dial",
        events: |p| {
            p.relayed_up(1);
            started(p, 2, 1);
            ended(p, 9, 1, true);
        },
        outcome: (Outcome::Success, "SUCCESS"),
        attempts: &[(AttemptOutcome::DirectDial, "DIRECT_DIAL")],
    },
    Case {
        name: "ended while an attempt ran",
        events: |p| {
            p.relayed_up(1);
            p.dcutr(2, 1, EventKind::StreamOpened);
        },
        outcome: (Outcome::Unknown, "UNKNOWN"),
        attempts: &[(AttemptOutcome::Unknown, "UNKNOWN")],
    },
];

/// The classification as the original client would report it: its DIRECT_DIAL attempts are
/// ours' SUCCESS ones (the case says which it expects).
fn as_the_original_reports(case: &Case, mut classified: Classified) -> Classified {
    for (attempt, (expected, _)) in classified.attempts.iter_mut().zip(case.attempts) {
        if *expected == AttemptOutcome::DirectDial && attempt.outcome == AttemptOutcome::Success {
            attempt.outcome = AttemptOutcome::DirectDial;
        }
    }
    classified
}

/// One measurement of each kind, each with an RTT of its own (exact in f32 and f64).
const LATENCIES: [(LatencyKind, &str, u64); 3] = [
    (LatencyKind::ToRelay, "TO_RELAY", 62_500),
    (
        LatencyKind::ToRemoteThroughRelay,
        "TO_REMOTE_THROUGH_RELAY",
        125_000,
    ),
    (
        LatencyKind::ToRemoteAfterHolePunch,
        "TO_REMOTE_AFTER_HOLE_PUNCH",
        250_000,
    ),
];

fn latencies(remote: &PeerId, relay: &Multiaddr) -> Vec<Latency> {
    LATENCIES
        .iter()
        .map(|&(kind, _, micros)| Latency {
            peer_id: remote.to_bytes(),
            agent_version: String::new(),
            protocols: vec![],
            address: relay.clone(),
            kind,
            samples: vec![Ok(Duration::from_micros(micros))],
        })
        .collect()
}

/// The client's link to `server` with a fresh API key, and a registered host.
async fn volunteer(db: &TestDb, server: &punchr_server::RunningServer) -> (ServerLink, PeerId) {
    let (_, key) = db
        .store
        .create_api_key(&format!("volunteer-{}", rand::random::<u32>()))
        .await
        .unwrap();
    let link = ServerLink::new(
        &ServerAddress {
            url: format!("http://{}", server.grpc_addr()),
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
        .expect("register the host");
    (link, host)
}

/// Delivers everything in the outbox in `dir` and checks the server took each result.
async fn deliver_all(link: &ServerLink, dir: &std::path::Path, count: usize) {
    let outbox = Outbox::open(dir).unwrap();
    let delivered = link.deliver(&outbox).await.expect("deliver the results");
    assert_eq!(delivered, count, "every result delivered");
    assert!(
        !dir.join("rejected").exists(),
        "the server refused a result"
    );
}

/// The stored result with `report_id`, and its outcome as the database holds it.
async fn stored(db: &TestDb, report_id: &[u8]) -> (punchr_store::HolePunchRecord, String) {
    let row = sqlx::query("SELECT id, outcome FROM hole_punch_results WHERE report_id = $1")
        .bind(report_id)
        .fetch_one(db.store.pool())
        .await
        .expect("the result is stored");
    let id: i64 = row.try_get(0).unwrap();
    let result = db.store.load_hole_punch_result(id).await.unwrap().unwrap();
    (result, row.try_get(1).unwrap())
}

/// Attempt outcomes as the database holds them, in attempt order.
async fn stored_attempt_texts(db: &TestDb, report_id: &[u8]) -> Vec<String> {
    sqlx::query(
        "SELECT a.outcome FROM hole_punch_attempts a JOIN hole_punch_results r ON r.id = a.result_id \
         WHERE r.report_id = $1 ORDER BY a.attempt_number",
    )
    .bind(report_id)
    .fetch_all(db.store.pool())
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get(0).unwrap())
    .collect()
}

/// Latency kinds as the database holds them, with their RTTs in microseconds.
async fn stored_latency_texts(db: &TestDb, report_id: &[u8]) -> BTreeMap<String, i64> {
    sqlx::query(
        "SELECT l.kind, l.rtts FROM latency_measurements l \
         JOIN hole_punch_results r ON r.id = l.result_id WHERE r.report_id = $1",
    )
    .bind(report_id)
    .fetch_all(db.store.pool())
    .await
    .unwrap()
    .iter()
    .map(|row| {
        let rtts: String = row.try_get(1).unwrap();
        let rtts: Vec<f64> = serde_json::from_str(&rtts).unwrap_or_default();
        (row.try_get(0).unwrap(), (rtts[0] * 1e6).round() as i64)
    })
    .collect()
}

async fn every_outcome_attempt_outcome_and_latency_kind_survives_the_wire(db: TestDb) {
    let server = start_server(&db.location, 0, &[]).await;
    let (link, host) = volunteer(&db, &server).await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
    let start = punchr_store::now_unix_nanos() - 60_000 * MS;
    let mut sent = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let remote = fixtures::peer_id();
        let relay = fixtures::relay_address(1, &remote);
        let t = start + i as i64 * 100 * MS;
        let mut punch = ScriptedPunch::start(t, remote, relay.clone());
        (case.events)(&mut punch);
        let classified = as_the_original_reports(case, punch.finish());
        let attempts: Vec<AttemptOutcome> = classified.attempts.iter().map(|a| a.outcome).collect();
        let wanted: Vec<AttemptOutcome> = case.attempts.iter().map(|a| a.0).collect();
        assert_eq!(
            (classified.outcome, &attempts),
            (case.outcome.0, &wanted),
            "{}: the client classifies the punch as the case expects",
            case.name
        );
        let context = RequestContext {
            client_id: host.to_bytes(),
            remote_id: remote.to_bytes(),
            served_addresses: vec![relay.clone()],
            listen_addresses: vec!["/ip4/11.3.3.3/tcp/12000".parse().unwrap()],
            protocol_filter: vec![],
            latencies: latencies(&remote, &relay),
            role_strategy: punchr_dcutr::RoleStrategy::Adaptive,
        };
        let request = track_hole_punch_request(&context, &classified);
        outbox.push(&request).unwrap();
        sent.push((case, request.report_id.unwrap()));
    }
    deliver_all(&link, dir.path(), CASES.len()).await;

    let mut expected_counts = OutcomeCounts::default();
    for (case, report_id) in &sent {
        let (result, outcome_text) = stored(&db, report_id).await;
        assert_eq!(
            (result.outcome, outcome_text.as_str()),
            case.outcome,
            "{}: outcome",
            case.name
        );
        let attempts: Vec<AttemptOutcome> = result.attempts.iter().map(|a| a.outcome).collect();
        let wanted: Vec<AttemptOutcome> = case.attempts.iter().map(|a| a.0).collect();
        assert_eq!(attempts, wanted, "{}: attempt outcomes", case.name);
        let texts = stored_attempt_texts(&db, report_id).await;
        let wanted_texts: Vec<&str> = case.attempts.iter().map(|a| a.1).collect();
        assert_eq!(
            texts, wanted_texts,
            "{}: attempt outcomes stored",
            case.name
        );
        let kinds: BTreeMap<LatencyKind, i64> = result
            .latency_measurements
            .iter()
            .map(|m| (m.kind, (m.rtts[0] * 1e6).round() as i64))
            .collect();
        let wanted_kinds: BTreeMap<LatencyKind, i64> = LATENCIES
            .iter()
            .map(|&(kind, _, micros)| (kind, micros as i64))
            .collect();
        assert_eq!(kinds, wanted_kinds, "{}: latency kinds", case.name);
        let kind_texts = stored_latency_texts(&db, report_id).await;
        let wanted_texts: BTreeMap<String, i64> = LATENCIES
            .iter()
            .map(|&(_, text, micros)| (text.to_owned(), micros as i64))
            .collect();
        assert_eq!(
            kind_texts, wanted_texts,
            "{}: latency kinds stored",
            case.name
        );
        expected_counts.add(case.outcome.0, 1);
    }
    let report = build_report(&db.store.read_only(), &ReportFilter::default())
        .await
        .expect("a report");
    assert_eq!(report.outcomes, expected_counts, "the report's outcomes");
    server.shutdown().await.unwrap();
}

/// The server's protocol filter flags and the multiaddr codes each stands for.
const FILTERS: [(&str, &[i32]); 5] = [
    ("ip4/tcp", &[4, 6]),
    ("ip4/quic", &[4, 460]),
    ("ip6/tcp", &[41, 6]),
    ("ip6/quic", &[41, 460]),
    ("none", &[]),
];

async fn every_protocol_filter_survives_the_wire(db: TestDb) {
    for (flag, codes) in FILTERS {
        let server = start_server(&db.location, 0, &["--protocol-filters", flag]).await;
        let (link, host) = volunteer(&db, &server).await;
        let remote = fixtures::peer_id();
        let relay = fixtures::relay_address(1, &remote);
        seed_sighting(&db.store, &remote, &relay).await;
        let assignment = link
            .get_addr_info(host.to_bytes(), vec![host.to_bytes()])
            .await
            .expect("GetAddrInfo")
            .unwrap_or_else(|| panic!("{flag}: no remote handed out"));
        assert_eq!(assignment.protocol_filter, codes, "{flag}: handed out");

        let t = punchr_store::now_unix_nanos() - 30_000 * MS;
        let mut punch = ScriptedPunch::start(t, remote, relay.clone());
        punch.relayed_up(1);
        punch.sleep();
        let classified = punch.finish();
        let context = RequestContext {
            client_id: host.to_bytes(),
            remote_id: remote.to_bytes(),
            served_addresses: vec![relay],
            listen_addresses: vec![],
            protocol_filter: assignment.protocol_filter,
            latencies: vec![],
            role_strategy: punchr_dcutr::RoleStrategy::Spec,
        };
        let request = track_hole_punch_request(&context, &classified);
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        outbox.push(&request).unwrap();
        deliver_all(&link, dir.path(), 1).await;

        let (result, _) = stored(&db, request.report_id.as_ref().unwrap()).await;
        assert_eq!(result.protocol_filters, codes, "{flag}: stored");
        let text: String = sqlx::query_scalar(
            "SELECT protocol_filters FROM hole_punch_results WHERE report_id = $1",
        )
        .bind(request.report_id.as_ref().unwrap())
        .fetch_one(db.store.pool())
        .await
        .unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<i32>>(&text).unwrap(),
            codes,
            "{flag}: as the database holds it"
        );
        server.shutdown().await.unwrap();
    }
}
