//! The Grafana dashboards in `grafana/`: well-formed, every SQL query runs on the real
//! PostgreSQL schema, and their numbers agree with the report's on the known dataset.
//!
//! **Grafana itself is not part of this test: it cannot be installed here.** Debian (bookworm)
//! packages only dashboards for it (`ceph-grafana-dashboards`), not the server; npm's `grafana`
//! is a placeholder and the `@grafana/*` packages are front-end libraries; the server's Go module
//! is AGPL-licensed and not used by this project. So the SQL macros are expanded by a **stand-in**
//! ([`grafana_macros_stand_in`]), written after the expansions that Grafana's PostgreSQL data
//! source documents, for the three macros the dashboards use; a macro it does not know fails the
//! test. What runs the expanded SQL is the real PostgreSQL. The dashboards' PromQL is evaluated
//! by a real Prometheus in `prometheus.rs`.

use std::collections::BTreeMap;

use crate::common::dataset;
use punchr_report::{build_report, ReportFilter};
use punchr_store::{now_unix_nanos, ConnectionEventRecord, PeerInfo};
use punchr_testutil::{fixtures, TestDb};
use serde_json::Value;
use sqlx::{Connection, Row};

const PERFORMANCE: &str = include_str!("../../grafana/punchr-performance.json");
const HEALTH: &str = include_str!("../../grafana/punchr-health.json");

fn dashboards() -> Vec<(&'static str, Value)> {
    [("performance", PERFORMANCE), ("health", HEALTH)]
        .into_iter()
        .map(|(name, text)| {
            (
                name,
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}")),
            )
        })
        .collect()
}

/// Every (panel title, target) of a dashboard.
fn targets(dashboard: &Value) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            found.push((
                panel["title"].as_str().expect("title").to_owned(),
                target.clone(),
            ));
        }
    }
    found
}

#[test]
fn dashboards_are_well_formed() {
    for (name, dashboard) in dashboards() {
        assert!(
            dashboard["uid"]
                .as_str()
                .is_some_and(|uid| uid.starts_with("punchr-")),
            "{name}"
        );
        let variables: Vec<&str> = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert!(
            variables.contains(&"prometheus") && variables.contains(&"postgres"),
            "{name}: {variables:?}"
        );
        let mut ids = std::collections::BTreeSet::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{name}: duplicate panel id"
            );
            for key in ["title", "type", "gridPos", "datasource"] {
                assert!(!panel[key].is_null(), "{name}: panel without {key}");
            }
        }
        for (title, target) in targets(&dashboard) {
            let uid = target["datasource"]["uid"].as_str().unwrap();
            match uid {
                "${postgres}" => assert!(target["rawSql"].is_string(), "{name}/{title}"),
                "${prometheus}" => assert!(target["expr"].is_string(), "{name}/{title}"),
                other => panic!("{name}/{title}: unknown data source {other}"),
            }
        }
    }
}

/// A stand-in for Grafana's PostgreSQL data source (Grafana is not installable here): its macros
/// `$__unixEpochNanoFilter`, `$__unixEpochGroup` and `$__unixEpochGroupAlias` expanded as its
/// documentation describes, for a time range of `from_ns`..`to_ns` and an `$__interval` of one
/// minute; `$api_key_name` as "All". Any other macro panics.
fn grafana_macros_stand_in(sql: &str, from_ns: i64, to_ns: i64) -> String {
    let mut sql = sql
        .replace("$__interval", "1m")
        .replace("$api_key_name", "%");
    while let Some(start) = sql.find("$__") {
        let open = start + sql[start..].find('(').expect("a macro call");
        let name = sql[start + 3..open].to_owned();
        let mut depth = 0;
        let mut close = open;
        for (i, c) in sql[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = open + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = split_args(&sql[open + 1..close]);
        let seconds = |arg: &str| -> i64 {
            let arg = arg.trim().trim_matches('\'');
            let (number, unit) = arg.split_at(arg.len() - 1);
            let n: i64 = number.parse().expect("an interval");
            n * match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3_600,
                "d" => 86_400,
                other => panic!("interval unit {other}"),
            }
        };
        let expanded = match name.as_str() {
            "unixEpochNanoFilter" => format!("{0} >= {from_ns} AND {0} <= {to_ns}", args[0]),
            "unixEpochGroup" => format!("floor(({0})/{1})*{1}", args[0], seconds(&args[1])),
            "unixEpochGroupAlias" => format!(
                "floor(({0})/{1})*{1} AS \"time\"",
                args[0],
                seconds(&args[1])
            ),
            other => panic!("macro $__{other} is not expanded by this stand-in for Grafana"),
        };
        sql.replace_range(start..=close, &expanded);
    }
    sql
}

fn split_args(text: &str) -> Vec<String> {
    let mut args = vec![String::new()];
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                args.push(String::new());
                continue;
            }
            _ => {}
        }
        args.last_mut().unwrap().push(c);
    }
    args.into_iter().map(|a| a.trim().to_owned()).collect()
}

#[test]
fn the_stand_in_expands_the_macros_as_grafana_documents_them() {
    let sql = "SELECT $__unixEpochGroupAlias(created_at / 1000000000, $__interval), n FROM t \
               WHERE $__unixEpochNanoFilter(r.created_at) AND k LIKE '$api_key_name'";
    assert_eq!(
        grafana_macros_stand_in(sql, 1, 2),
        "SELECT floor((created_at / 1000000000)/60)*60 AS \"time\", n FROM t \
         WHERE r.created_at >= 1 AND r.created_at <= 2 AND k LIKE '%'"
    );
}

/// Runs every SQL query of both dashboards on PostgreSQL with the known dataset, each row as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sql_query_runs_on_postgres_and_agrees_with_the_report() {
    let db = TestDb::postgres().await;
    dataset::insert(&db.store).await;
    for _ in 0..2 {
        let remote = fixtures::peer_id();
        db.store
            .record_connection_event(&ConnectionEventRecord {
                local: PeerInfo::bare(fixtures::peer_id().to_string()),
                remote: PeerInfo::bare(remote.to_string()),
                connection_address: fixtures::relay_address(1, &remote),
                advertised_addresses: vec![],
                opened_at: now_unix_nanos(),
            })
            .await
            .unwrap();
    }
    let report = build_report(&db.store.read_only(), &ReportFilter::default())
        .await
        .unwrap();
    let now = now_unix_nanos();
    let (from, to) = (now - 6 * 3_600 * 1_000_000_000, now + 60 * 1_000_000_000);
    let mut conn = sqlx::PgConnection::connect(&db.location)
        .await
        .expect("connect");
    let mut results: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut executed = 0;
    for (name, dashboard) in dashboards() {
        for (title, target) in targets(&dashboard) {
            let Some(raw) = target["rawSql"].as_str() else {
                continue;
            };
            let sql = grafana_macros_stand_in(raw, from, to);
            let wrapped = format!("SELECT row_to_json(q)::text FROM ({sql}) q");
            let rows = sqlx::query(&wrapped)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{name} / {title}: {e}\n{sql}"));
            let rows: Vec<Value> = rows
                .iter()
                .map(|row| serde_json::from_str(&row.get::<String, _>(0)).unwrap())
                .collect();
            results.entry(title).or_default().extend(rows);
            executed += 1;
        }
    }
    assert!(executed >= 15, "{executed} queries");
    let panel = |title: &str| -> &Vec<Value> {
        results
            .get(title)
            .unwrap_or_else(|| panic!("no panel {title}"))
    };
    let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-9;

    let published =
        &panel("Success rate as the original published it: SUCCESS / (SUCCESS + FAILED)")[0];
    assert!(close(
        &published["rate"],
        report.published_rate.value.unwrap()
    ));
    let [low, high] = report.published_rate.ci95.unwrap();
    assert!(close(&published["95 % low"], low) && close(&published["95 % high"], high));
    assert_eq!(
        (published["SUCCESS"].as_u64(), published["trials"].as_u64()),
        (Some(30), Some(40))
    );
    let end_to_end = &panel("End-to-end success rate: SUCCESS / all results")[0];
    assert!(close(
        &end_to_end["rate"],
        report.end_to_end_rate.value.unwrap()
    ));
    assert_eq!(end_to_end["trials"].as_u64(), Some(51));

    let ttd = &panel("Time from relayed to direct connection")[0];
    assert!(close(
        &ttd["p50"],
        report.time_to_direct.p50_seconds.unwrap()
    ));
    assert!(close(
        &ttd["p90"],
        report.time_to_direct.p90_seconds.unwrap()
    ));

    for (title, rows, column) in [
        (
            "Success rate by transport (as published, 95 % interval)",
            &report.by_transport,
            "transport",
        ),
        (
            "Success rate by IP version (as published, 95 % interval)",
            &report.by_ip_version,
            "ip_version",
        ),
    ] {
        let shown = panel(title);
        for row in rows.iter().filter(|row| row.key != "none") {
            let grafana = shown
                .iter()
                .find(|r| r[column] == row.key.as_str())
                .unwrap_or_else(|| panic!("{title}: no {}", row.key));
            assert_eq!(
                grafana["SUCCESS"].as_u64(),
                Some(row.outcomes.success),
                "{title} {}",
                row.key
            );
            assert_eq!(
                grafana["FAILED"].as_u64(),
                Some(row.outcomes.failed),
                "{title} {}",
                row.key
            );
            assert!(
                close(&grafana["published rate"], row.published.value.unwrap()),
                "{title} {}",
                row.key
            );
        }
    }

    let attempts: Vec<(String, u64)> = panel("Successes by attempt number")
        .iter()
        .map(|r| {
            (
                r["attempt"].as_str().unwrap().to_owned(),
                r["successes"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = report
        .by_attempt
        .rows
        .iter()
        .map(|r| (r.attempt_number.to_string(), r.successful))
        .collect();
    assert_eq!(attempts, expected);

    let bins: Vec<u64> = panel("Time to direct connection (distribution)")
        .iter()
        .map(|r| r["successes"].as_u64().unwrap())
        .collect();
    let nonzero: Vec<u64> = report
        .time_to_direct
        .histogram
        .iter()
        .map(|b| b.count)
        .filter(|c| *c > 0)
        .collect();
    assert_eq!(bins, nonzero);

    let mix: u64 = panel("Outcome mix")
        .iter()
        .map(|r| r["results"].as_u64().unwrap())
        .sum();
    assert_eq!(mix, report.outcomes.total());
    let per_interval: u64 = panel("Hole punches per interval by outcome (stacked)")
        .iter()
        .map(|r| r["value"].as_u64().unwrap())
        .sum();
    assert_eq!(per_interval, report.outcomes.total());
    let tcp_over_time = panel("Success rate over time by transport (as published)")
        .iter()
        .find(|r| r["metric"] == "TCP")
        .expect("a TCP point");
    assert!(close(&tcp_over_time["value"], 20.0 / 30.0));

    let clients = panel("Success rate by client (API key name)");
    for row in &report.by_client {
        let grafana = clients
            .iter()
            .find(|r| r["client"] == row.key.as_str())
            .unwrap();
        assert_eq!(grafana["results"].as_u64(), Some(row.outcomes.total()));
        assert!(close(
            &grafana["published rate"],
            row.published.value.unwrap()
        ));
    }
    let pairs = panel("Success rate by NAT type pair (lab labels)");
    assert_eq!(pairs.len(), report.by_nat_pair.len());
    for (grafana, pair) in pairs.iter().zip(&report.by_nat_pair) {
        assert_eq!(
            (
                grafana["client NAT"].as_str(),
                grafana["remote NAT"].as_str()
            ),
            (
                Some(pair.client_nat.as_str()),
                Some(pair.remote_nat.as_str())
            )
        );
        assert_eq!(grafana["results"].as_u64(), Some(pair.row.outcomes.total()));
    }

    let reasons = panel("Why hole punches did not succeed");
    let no_connection = reasons
        .iter()
        .find(|r| r["outcome"] == "NO_CONNECTION")
        .unwrap();
    assert_eq!(
        no_connection["reason"],
        "failed to dial <peer>: all dials failed"
    );
    assert_eq!(no_connection["count"].as_u64(), Some(3));
    assert_eq!(panel("Most recent hole punch results").len(), 20);

    assert_eq!(
        panel("NATed peers seen by the honeypot (last 15 min)")[0]["peers"].as_u64(),
        Some(2)
    );
    let per_minute = panel("Results and honeypot peers per minute (database)");
    let results: u64 = per_minute
        .iter()
        .filter_map(|r| r["results"].as_u64())
        .sum();
    assert_eq!(results, 51);
}
