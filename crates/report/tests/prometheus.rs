//! The Prometheus side: the shipped scrape configuration and the dashboards' PromQL pass
//! `promtool`, and Debian's `prometheus` scrapes a running server and answers a query for a
//! metric the server counted.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use punchr_proto::punchr_service_client::PunchrServiceClient;
use punchr_proto::RegisterRequest;
use punchr_testutil::{free_port, TestDb};
use serde_json::Value;

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

#[test]
fn every_promql_expression_of_the_dashboards_parses() {
    let mut rules = String::from("groups:\n  - name: punchr_dashboards\n    rules:\n");
    let mut count = 0;
    for text in [
        include_str!("../grafana/punchr-health.json"),
        include_str!("../grafana/punchr-performance.json"),
    ] {
        let dashboard: Value = serde_json::from_str(text).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let Some(expr) = target["expr"].as_str() else {
                    continue;
                };
                count += 1;
                let expr = expr
                    .replace("$__rate_interval", "5m")
                    .replace("$__interval", "1m");
                rules.push_str(&format!(
                    "      - record: punchr:dashboard_expr_{count}\n        expr: {}\n",
                    serde_json::to_string(&expr).unwrap()
                ));
            }
        }
    }
    assert!(count >= 10, "{count} expressions");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yml");
    std::fs::write(&file, rules).unwrap();
    let mut promtool = tool("promtool");
    promtool.args(["check", "rules"]).arg(&file);
    check(promtool);
}

async fn query(prometheus: u16, promql: &str) -> Option<Value> {
    let path = format!("/api/v1/query?query={}", common::form_value(promql));
    let (status, body) = common::try_get(([127, 0, 0, 1], prometheus).into(), &path)
        .await
        .ok()?;
    (status == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_server_and_answers_a_query() {
    let db = TestDb::sqlite().await;
    let server = common::start_server(&db).await;
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

    // The shipped configuration, pointed at this server and scraping every second.
    let config = std::fs::read_to_string(SCRAPE_CONFIG)
        .unwrap()
        .replace("127.0.0.1:10001", &server.telemetry_addr().to_string())
        .replace("scrape_interval: 15s", "scrape_interval: 1s");
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("prometheus.yml");
    std::fs::write(&config_file, config).unwrap();
    let port = free_port();
    let mut prometheus = tool("prometheus")
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
    let answer = wait_for_sample(port, "grpc_server_handled_total{job=\"punchr_server\",grpc_method=\"Register\",grpc_code=\"UNAUTHENTICATED\"}").await;
    let up = query(port, "up{job=\"punchr_server\"}").await.expect("up");
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    server.shutdown().await.unwrap();

    let answer = answer.unwrap_or_else(|| panic!("Prometheus never reported the server's counter"));
    assert_eq!(answer["data"]["result"][0]["value"][1], "1", "{answer}");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    assert!(Path::new(&dir.path().join("data")).exists());
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
