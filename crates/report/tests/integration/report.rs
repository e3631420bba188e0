//! The report's numbers against a dataset with known outcomes, on both engines; its filters; and
//! the `punchr-server report` command in its three output forms.

use crate::common::dataset::{self, assert_known_numbers};
use clap::Parser;
use punchr_report::{build_report, Report, ReportFilter};
use punchr_server::config::{Cli, Command};
use punchr_store::now_unix_nanos;
use punchr_testutil::{on_both_engines, TestDb};

on_both_engines!(
    report_numbers_match_the_known_outcomes,
    filters_select_by_time_and_api_key_name,
    report_command_prints_text_json_and_writes_html,
    lab_cells_split_by_nat_pair_and_transport,
    many_large_distinct_error_texts_make_few_short_reasons,
    hostile_input_builds_no_sql,
);

/// One key sends results whose attempts each carry a distinct 4 KiB error text (issue 15,
/// point 6): the store keeps a short reason per row, and the report reads a bounded number of
/// them with counts that still add up.
async fn many_large_distinct_error_texts_make_few_short_reasons(db: TestDb) {
    use punchr_store::{AttemptOutcome, Outcome, PeerInfo};
    use punchr_testutil::fixtures;
    let (key, _) = db.store.create_api_key("bloater").await.unwrap();
    let client = fixtures::peer_id();
    db.store
        .register_host(key.id, &PeerInfo::bare(client.to_string()))
        .await
        .unwrap();
    let results = 60u32;
    for seq in 0..results {
        let remote = fixtures::peer_id();
        let mut result = fixtures::hole_punch_result(key.id, &client, &remote, seq);
        result.outcome = Outcome::Failed;
        result.error = Some(format!("{seq:04} {}", "r".repeat(4000)));
        result.attempts = (0..10)
            .map(|i| {
                let mut attempt = result.attempts[0].clone();
                attempt.outcome = AttemptOutcome::Failed;
                // Distinct from the first bytes on, so no prefix groups them.
                attempt.error = Some(format!("{}-{i} {}", seq, "x".repeat(4090)));
                attempt
            })
            .collect();
        db.store.insert_hole_punch_result(&result).await.unwrap();
    }
    let (longest, distinct): (i64, i64) = sqlx::query_as(
        "SELECT MAX(LENGTH(reason)), COUNT(DISTINCT reason) FROM hole_punch_attempts",
    )
    .fetch_one(db.store.pool())
    .await
    .expect("reasons are stored");
    assert!(longest <= 160 * 3, "reasons are cut: {longest} bytes");
    assert!(distinct <= i64::from(results) * 10);
    let report = build_report(&db.store.read_only(), &ReportFilter::default())
        .await
        .unwrap();
    let reasons = &report.attempt_failure_reasons;
    assert!(reasons.len() <= 21, "{} reasons", reasons.len());
    assert!(reasons.iter().all(|r| r.reason.chars().count() <= 160));
    let counted: u64 = reasons.iter().map(|r| r.count).sum();
    assert_eq!(
        counted,
        u64::from(results) * 10,
        "every failed attempt is counted"
    );
    let counted: u64 = report.failure_reasons.iter().map(|r| r.count).sum();
    assert_eq!(counted, u64::from(results));
}

/// Names, times and buckets from strangers never become SQL (issue 15, point 11).
async fn hostile_input_builds_no_sql(db: TestDb) {
    dataset::insert(&db.store).await;
    let injected = ReportFilter {
        api_key_name: Some("alice' OR '1'='1".to_owned()),
        ..ReportFilter::default()
    };
    assert!(matches!(
        build_report(&db.store.read_only(), &injected).await,
        Err(punchr_report::ReportError::UnknownKeyName(_))
    ));
    for time in ["1; DROP TABLE api_keys", "'--", "2025-11-20' OR 1=1 --"] {
        assert!(punchr_report::parse_time_bound(time, now_unix_nanos()).is_err());
    }
    for bucket in ["1s; DROP TABLE api_keys", "1) OR (1=1"] {
        assert!(punchr_report::parse_bucket(bucket).is_err());
    }
    let report = build_report(&db.store.read_only(), &ReportFilter::default())
        .await
        .unwrap();
    assert_known_numbers(&report);
}

async fn report_numbers_match_the_known_outcomes(db: TestDb) {
    dataset::insert(&db.store).await;
    let report = build_report(&db.store.read_only(), &ReportFilter::default())
        .await
        .expect("report");
    assert_known_numbers(&report);
    assert_eq!(report.scope.engine, db.engine().name());
}

async fn filters_select_by_time_and_api_key_name(db: TestDb) {
    dataset::insert(&db.store).await;
    // The FAILED results were stored two hours ago.
    let two_hours = 2 * 3_600 * 1_000_000_000_i64;
    sqlx::query(
        "UPDATE hole_punch_results SET created_at = created_at - $1 WHERE outcome = 'FAILED'",
    )
    .bind(two_hours)
    .execute(db.store.pool())
    .await
    .expect("move FAILED back in time");
    // Their report facts, derived when they were stored, too.
    sqlx::query("UPDATE report_facts SET created_at = created_at - $1 WHERE outcome = 'FAILED'")
        .bind(two_hours)
        .execute(db.store.pool())
        .await
        .expect("move their facts back in time");
    let now = now_unix_nanos();
    let hour = 3_600 * 1_000_000_000_i64;

    let recent = ReportFilter {
        since: Some(now - hour),
        ..ReportFilter::default()
    };
    let report = build_report(&db.store.read_only(), &recent)
        .await
        .expect("recent");
    assert_eq!((report.outcomes.total(), report.outcomes.failed), (41, 0));
    assert_eq!(report.published_rate.value, Some(1.0));

    let old = ReportFilter {
        until: Some(now - hour),
        ..ReportFilter::default()
    };
    let report = build_report(&db.store.read_only(), &old)
        .await
        .expect("old");
    assert_eq!((report.outcomes.total(), report.outcomes.failed), (10, 10));
    assert_eq!(report.time_to_direct.count, 0);
    assert_eq!(report.time_to_direct.p50_seconds, None);

    let alice = ReportFilter {
        api_key_name: Some("alice".to_owned()),
        ..ReportFilter::default()
    };
    let report = build_report(&db.store.read_only(), &alice)
        .await
        .expect("alice");
    assert_eq!(
        (
            report.outcomes.success,
            report.outcomes.failed,
            report.outcomes.total()
        ),
        (15, 5, 20)
    );
    assert_eq!(report.by_client.len(), 1);
    assert_eq!(report.scope.api_key_name.as_deref(), Some("alice"));

    let nobody = ReportFilter {
        api_key_name: Some("mallory".to_owned()),
        ..ReportFilter::default()
    };
    let error = build_report(&db.store.read_only(), &nobody)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no API key named \"mallory\""), "{error}");

    let hourly = ReportFilter {
        bucket_seconds: Some(3_600),
        ..ReportFilter::default()
    };
    let report = build_report(&db.store.read_only(), &hourly)
        .await
        .expect("hourly");
    assert_eq!(report.bucket_seconds, 3_600);
    assert!(
        report.over_time.len() >= 2,
        "two hours apart: {:?}",
        report.over_time
    );
    assert!(report.over_time.iter().all(|b| b.start % 3_600 == 0));
}

async fn report_command_prints_text_json_and_writes_html(db: TestDb) {
    dataset::insert(&db.store).await;
    let html_dir = tempfile::tempdir().expect("dir");
    let html = html_dir.path().join("report.html");
    let html_dir = html_dir.path();
    let run = |extra: &[&str]| {
        let mut args = vec!["punchr-server", "report"];
        if !extra.contains(&"--db") {
            args.extend(["--db", db.location.as_str()]);
        }
        args.extend_from_slice(extra);
        let cli = Cli::parse_from(args);
        let Some(Command::Report(report_args)) = cli.command else {
            panic!("the report command")
        };
        (report_args, cli.server.db)
    };

    let (args, default_db) = run(&["--html", html.to_str().unwrap()]);
    let text = punchr_report::cli::run(&args, &default_db)
        .await
        .expect("text report");
    println!("{text}");
    assert!(
        text.contains("success rate as the original published it, SUCCESS / (SUCCESS + FAILED): 75.0 % [59.8–85.8] (30/40)"),
        "{text}"
    );
    assert!(
        text.contains("end-to-end success rate, SUCCESS / all results: 58.8 %"),
        "{text}"
    );
    assert!(text.contains("p50: 1.500 s   p90: 2.700 s"), "{text}");
    assert!(text.contains("dial tcp <ip>: i/o timeout"), "{text}");

    let page = std::fs::read_to_string(&html).expect("the HTML file");
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<svg"));
    assert!(page.contains("75.0 %") && page.contains("30/40"));
    for external in ["<script", "<link", "src=", "href=\"http", "@import", "url("] {
        assert!(
            !page.contains(external),
            "the page loads nothing from elsewhere ({external})"
        );
    }

    let (args, default_db) = run(&["--format", "json", "--since", "1h"]);
    let json = punchr_report::cli::run(&args, &default_db)
        .await
        .expect("JSON report");
    let report: Report = serde_json::from_str(&json).expect("the JSON is a Report");
    assert_known_numbers(&report);
    assert!(report.scope.since.is_some());

    // --db wins over the server's database, and a missing SQLite file is not created.
    let (args, _) = run(&[]);
    assert!(punchr_report::cli::run(&args, "/nonexistent/punchr.sqlite")
        .await
        .is_ok());
    let missing = html_dir.join("no-such.sqlite");
    let (args, _) = run(&["--db", missing.to_str().unwrap()]);
    let error = punchr_report::cli::run(&args, "unused")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no such file"), "{error}");
    assert!(!missing.exists());
}

async fn lab_cells_split_by_nat_pair_and_transport(db: TestDb) {
    use punchr_report::nat_labels::{nat_cells, CellTransport};
    dataset::insert(&db.store).await;
    let cells = nat_cells(&db.store.read_only()).await.expect("cells");
    let summary: Vec<(&str, &str, CellTransport, u64, u64, u64)> = cells
        .iter()
        .map(|c| {
            (
                c.client_nat.as_str(),
                c.remote_nat.as_str(),
                c.transport,
                c.outcomes.success,
                c.outcomes.failed,
                c.outcomes.total(),
            )
        })
        .collect();
    // The fixtures hand every result the ip4/tcp filter; the ten successes whose direct
    // connection is QUIC count as QUIC.
    let expected = [
        (
            "full-cone",
            "port-restricted",
            CellTransport::Tcp,
            15,
            0,
            15,
        ),
        ("full-cone", "symmetric", CellTransport::Tcp, 0, 5, 5),
        ("symmetric", "port-restricted", CellTransport::Tcp, 5, 0, 10),
        (
            "symmetric",
            "port-restricted",
            CellTransport::Quic,
            10,
            0,
            10,
        ),
        ("symmetric", "symmetric", CellTransport::Tcp, 0, 5, 11),
    ];
    assert_eq!(summary, expected);
    // Alice's successes reached their direct connection after 0.1 s … 1.5 s; the median of 15 is
    // the 8th. Every attempt measured a 31.25 ms relayed RTT.
    assert_eq!(cells[0].median_time_to_direct_ns, Some(800_000_000));
    assert_eq!(cells[0].median_relayed_rtt_ns, Some(31_250_000));
    assert_eq!(cells[1].median_time_to_direct_ns, None);
    let rate = cells[3].success_rate();
    assert_eq!((rate.successes, rate.trials), (10, 10));
}
