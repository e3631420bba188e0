//! The Prometheus side: the shipped scrape configuration and the dashboards' PromQL pass
//! `promtool`; Debian's `prometheus` scrapes a running server and answers a query for a metric
//! the server counted; and every PromQL expression of the dashboards, evaluated by that
//! Prometheus over a real server, honeypot and client after a real round of hole punching,
//! answers with the series its panel shows (a renamed metric, label or job answers nothing).

use std::net::SocketAddr;
use std::process::Child;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use multiaddr::Protocol;
use punchr_client::config::ClientConfig;
use punchr_client::run::Client;
use punchr_honeypot::config::Cli as HoneypotCli;
use punchr_honeypot::{Observation, RunningHoneypot};
use punchr_proto::punchr_service_client::PunchrServiceClient;
use punchr_proto::{GetAddrInfoRequest, RegisterRequest};
use punchr_server::RunningServer;
use punchr_testutil::libp2p_peers::{spawn_nated_remote, spawn_relay};
use punchr_testutil::sim::{NodeSpec, SimNode};
use punchr_testutil::{fixtures, free_port, TestDb};
use serde_json::Value;
use tokio::sync::watch;

const SCRAPE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/prometheus/prometheus.yml");

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .expect("sh");
    assert!(
        found.status.success(),
        "{name} is missing: install Debian's prometheus package (scripts/setup does)"
    );
    Command::new(name)
}

fn check(mut command: Command) {
    let output = command.output().expect("run promtool");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn shipped_scrape_config_is_valid_and_names_every_component() {
    let config = std::fs::read_to_string(SCRAPE_CONFIG).unwrap();
    for (job, port) in [
        ("punchr_server", 10001),
        ("punchr_honeypot", 11001),
        ("punchr_client", 12001),
    ] {
        assert!(config.contains(&format!("job_name: {job}")), "{job}");
        assert!(config.contains(&format!(":{port}\"")), "{job} on {port}");
    }
    let mut promtool = tool("promtool");
    promtool.args(["check", "config", SCRAPE_CONFIG]);
    check(promtool);
}

/// Every PromQL expression of the dashboards with its panel title. Grafana's interval variables
/// become fixed ranges: `$__rate_interval` 5 m (wide enough for the seconds a test scrapes; the
/// rate is taken over the samples there are), `$__interval` 1 m.
fn dashboard_expressions() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for text in [
        include_str!("../../grafana/punchr-health.json"),
        include_str!("../../grafana/punchr-performance.json"),
    ] {
        let dashboard: Value = serde_json::from_str(text).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let Some(expr) = target["expr"].as_str() else {
                    continue;
                };
                let expr = expr
                    .replace("$__rate_interval", "5m")
                    .replace("$__interval", "1m");
                found.push((panel["title"].as_str().unwrap().to_owned(), expr));
            }
        }
    }
    found
}

#[test]
fn every_promql_expression_of_the_dashboards_parses() {
    let mut rules = String::from("groups:\n  - name: punchr_dashboards\n    rules:\n");
    let expressions = dashboard_expressions();
    for (count, (_, expr)) in expressions.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: punchr:dashboard_expr_{count}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    assert!(expressions.len() >= 10, "{} expressions", expressions.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yml");
    std::fs::write(&file, rules).unwrap();
    let mut promtool = tool("promtool");
    promtool.args(["check", "rules"]).arg(&file);
    check(promtool);
}

async fn query(prometheus: u16, promql: &str) -> Option<Value> {
    let path = format!("/api/v1/query?query={}", crate::common::form_value(promql));
    let (status, body) = crate::common::try_get(([127, 0, 0, 1], prometheus).into(), &path)
        .await
        .ok()?;
    (status == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_server_and_answers_a_query() {
    let db = TestDb::sqlite().await;
    let server = crate::common::start_server(&db).await;
    let mut client = PunchrServiceClient::connect(format!("http://{}", server.grpc_addr()))
        .await
        .unwrap();
    let refused = client
        .register(RegisterRequest {
            client_id: Vec::new(),
            agent_version: "test".into(),
            protocols: Vec::new(),
            api_key: "00000000-0000-4000-8000-000000000000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let prometheus = Prometheus::start(&[("127.0.0.1:10001", server.telemetry_addr())]);
    let port = prometheus.port;
    let answer = wait_for_sample(port, "grpc_server_handled_total{job=\"punchr_server\",grpc_method=\"Register\",grpc_code=\"UNAUTHENTICATED\"}").await;
    let up = query(port, "up{job=\"punchr_server\"}").await.expect("up");
    drop(prometheus);
    server.shutdown().await.unwrap();

    let answer = answer.unwrap_or_else(|| panic!("Prometheus never reported the server's counter"));
    assert_eq!(answer["data"]["result"][0]["value"][1], "1", "{answer}");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
}

async fn wait_for_sample(port: u16, promql: &str) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(answer) = query(port, promql).await {
            if answer["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                return Some(answer);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// Debian's `prometheus` on a free loopback port with the shipped scrape configuration, each
/// listed target (`host:port` as shipped) pointed at a running component, scraping every
/// second. Dropping it kills it.
struct Prometheus {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(targets: &[(&str, SocketAddr)]) -> Prometheus {
        let mut config = std::fs::read_to_string(SCRAPE_CONFIG)
            .unwrap()
            .replace("scrape_interval: 15s", "scrape_interval: 1s");
        for (shipped, running) in targets {
            assert!(
                config.contains(shipped),
                "{shipped} is in the shipped config"
            );
            config = config.replace(shipped, &running.to_string());
        }
        let dir = tempfile::tempdir().unwrap();
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let port = free_port();
        let child = tool("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Prometheus {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A honeypot on loopback started from its command line as the binary starts it, walking the
/// DHT of `bootstrap` and recording loopback relays.
async fn start_honeypot(db: &TestDb, dir: &std::path::Path, bootstrap: &str) -> RunningHoneypot {
    let key_file = dir.join("honeypot.key");
    let cli = HoneypotCli::parse_from([
        "punchr-honeypot",
        "--key-file",
        key_file.to_str().unwrap(),
        "--db",
        &db.location,
        "--listen-ip",
        "127.0.0.1",
        "--port",
        "0",
        "--telemetry-port",
        "0",
        "--bootstrap-peers",
        bootstrap,
        "--crawl-private-addrs",
        "--record-private-relays",
    ]);
    punchr_honeypot::start(&cli.honeypot)
        .await
        .expect("start the honeypot")
}

/// A one-host client of `server` on loopback (its listen address taken as public, loopback
/// relays dialed), one round, with the given API key.
fn loopback_client(server: &RunningServer, key: &str, outbox: &std::path::Path) -> Client {
    let port = server.grpc_addr().port().to_string();
    let config = ClientConfig::parse_from([
        "punchr-client",
        "--api-key",
        key,
        "--server-host",
        "127.0.0.1",
        "--server-port",
        &port,
        "--host-count",
        "1",
        "--seed",
        "promql",
        "--assume-public",
        "--dial-private-relays",
        "--bootstrap-peers",
        "none",
        "--listen",
        "127.0.0.1",
        "--rounds",
        "1",
        "--outbox",
        outbox.to_str().unwrap(),
    ]);
    Client::start(config).expect("the client starts")
}

/// The result vector of an instant query, or `None` while Prometheus has none to give.
async fn series(port: u16, promql: &str) -> Option<Vec<Value>> {
    let answer = query(port, promql).await?;
    assert_eq!(answer["status"], "success", "{promql}: {answer}");
    let result = answer["data"]["result"].as_array()?.clone();
    (!result.is_empty()).then_some(result)
}

/// A series' label, or "".
fn label<'a>(series: &'a Value, name: &str) -> &'a str {
    series["metric"][name].as_str().unwrap_or("")
}

/// A series' value as Prometheus writes it.
fn value(series: &Value) -> &str {
    series["value"][1].as_str().unwrap_or("")
}

/// Waits until every expression answers with at least one series; returns them by expression.
async fn answers(port: u16, expressions: &[(String, String)]) -> Vec<(String, Vec<Value>)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut answered = Vec::new();
        let mut missing = Vec::new();
        for (title, expr) in expressions {
            match series(port, expr).await {
                Some(result) => answered.push((expr.clone(), result)),
                None => missing.push(format!("{title}: {expr}")),
            }
        }
        if missing.is_empty() {
            return answered;
        }
        assert!(
            Instant::now() < deadline,
            "after 60 s of scrapes these dashboard expressions still answer nothing:\n{}",
            missing.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_promql_expression_answers_from_a_real_server_honeypot_and_client() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    // Loopback relays are served: the remote's relay is one.
    let server = crate::common::start_server_with(&db, &["--serve-private-relays"]).await;
    let dht_server = SimNode::start(NodeSpec::public(1)).await.unwrap();
    let bootstrap = dht_server
        .addr()
        .expect("the DHT server listens")
        .to_string();
    let honeypot = start_honeypot(&db, dir.path(), &bootstrap).await;
    let relay = spawn_relay().await;
    let remote = spawn_nated_remote(&relay).await;
    fixtures::record_sighting(&db.store, &remote.peer_id, &remote.address).await;
    let (_, key) = db.store.create_api_key("volunteer").await.unwrap();
    let client = loopback_client(&server, key.expose(), &dir.path().join("outbox"));
    let host = client.host_ids()[0];
    let client_telemetry =
        punchr_client::telemetry::serve(([127, 0, 0, 1], 0).into(), client.metrics())
            .await
            .unwrap();
    let prometheus = Prometheus::start(&[
        ("127.0.0.1:10001", server.telemetry_addr()),
        ("127.0.0.1:11001", honeypot.telemetry_addr()),
        ("127.0.0.1:12001", client_telemetry),
    ]);
    let port = prometheus.port;
    // Everything happens after the first scrape of each component, so counters rise between
    // two samples and every rate has one.
    for job in ["punchr_server", "punchr_honeypot", "punchr_client"] {
        wait_for_sample(port, &format!("up{{job=\"{job}\"}} == 1"))
            .await
            .unwrap_or_else(|| panic!("Prometheus never scraped {job}"));
    }

    let (_stop, stopped) = watch::channel(false);
    let summary = tokio::time::timeout(Duration::from_secs(90), client.run(stopped))
        .await
        .expect("the round ends")
        .expect("the client runs");
    assert_eq!((summary.punches, summary.undelivered), (1, 0));
    let outcome: String = sqlx::query_scalar("SELECT outcome FROM hole_punch_results")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    let visitor = SimNode::start(NodeSpec {
        external_addrs: vec![relay
            .address
            .clone()
            .with(Protocol::P2p(relay.peer_id))
            .with(Protocol::P2pCircuit)],
        ..NodeSpec::nated(true)
    })
    .await
    .unwrap();
    let mut observations = honeypot.observe();
    visitor.connect(honeypot.tcp_addr().unwrap()).await.unwrap();
    // Recorded before the table below goes: the honeypot writes to it.
    let visitor_id = visitor.peer_id();
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match observations.recv().await.expect("the honeypot runs") {
                Observation::Recorded { peer, .. } if peer == visitor_id => break,
                Observation::Skipped { peer, reason } if peer == visitor_id => {
                    panic!("the honeypot skipped the visitor: {reason:?}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the honeypot records the visitor");
    // A database the server cannot read: GetAddrInfo fails as a storage error, the kind of
    // failure "Server errors per minute" counts.
    sqlx::query("DROP TABLE connection_events")
        .execute(db.store.pool())
        .await
        .unwrap();
    let mut grpc = PunchrServiceClient::connect(format!("http://{}", server.grpc_addr()))
        .await
        .unwrap();
    let failed = grpc
        .get_addr_info(GetAddrInfoRequest {
            host_id: host.to_bytes(),
            all_host_ids: vec![host.to_bytes()],
            api_key: key.expose().to_owned(),
        })
        .await
        .expect_err("GetAddrInfo without its table");
    assert!(
        matches!(
            failed.code(),
            tonic::Code::Internal | tonic::Code::Unavailable
        ),
        "{failed:?}"
    );

    let expressions = dashboard_expressions();
    let answered = answers(port, &expressions).await;
    let by_expr = |needle: &str| -> &Vec<Value> {
        &answered
            .iter()
            .find(|(expr, _)| expr.contains(needle))
            .unwrap_or_else(|| panic!("no dashboard expression with {needle}"))
            .1
    };
    for job in ["punchr_server", "punchr_honeypot", "punchr_client"] {
        let up = by_expr(&format!("sum(up{{job=\"{job}\"}})"));
        assert_eq!(value(&up[0]), "1", "{job} up: {up:?}");
    }
    let active = by_expr("punchr_server_active_clients");
    assert!(
        value(&active[0]).parse::<f64>().unwrap() >= 1.0,
        "{active:?}"
    );
    let stored = by_expr("punchr_server_results_stored_total");
    assert_eq!(
        stored
            .iter()
            .map(|s| label(s, "outcome"))
            .collect::<Vec<_>>(),
        vec![outcome.as_str()],
        "the stored result's outcome: {stored:?}"
    );
    let errors = by_expr("grpc_code=~");
    assert!(
        errors
            .iter()
            .any(|s| label(s, "grpc_method") == "GetAddrInfo"
                && ["INTERNAL", "UNAVAILABLE"].contains(&label(s, "grpc_code"))),
        "the failed GetAddrInfo: {errors:?}"
    );
    let requests = by_expr(
        "sum by (grpc_method, grpc_code) (rate(grpc_server_handled_total{job=\"punchr_server\"}[",
    );
    for method in ["Register", "GetAddrInfo", "TrackHolePunch"] {
        assert!(
            requests
                .iter()
                .any(|s| label(s, "grpc_method") == method && label(s, "grpc_code") == "OK"),
            "{method} OK: {requests:?}"
        );
    }
    let latency = by_expr("histogram_quantile(0.99, sum by (le, grpc_method)");
    for method in ["Register", "GetAddrInfo", "TrackHolePunch"] {
        assert!(
            latency.iter().any(|s| label(s, "grpc_method") == method),
            "{method} latency: {latency:?}"
        );
    }
    for metric in [
        "honeypot_handled_connections_total",
        "honeypot_crawled_peers_total",
    ] {
        let rates = by_expr(metric);
        assert!(
            rates.iter().any(|s| label(s, "status") == "ok"),
            "{metric}: {rates:?}"
        );
    }

    drop(prometheus);
    visitor.shutdown().await;
    dht_server.shutdown().await;
    honeypot.shutdown().await.unwrap();
    server.shutdown().await.unwrap();
}
