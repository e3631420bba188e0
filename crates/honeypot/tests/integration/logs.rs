//! The honeypot's logs: nothing secret reaches them (not its private key, not the database
//! password, even with every target logging at `trace` while a NATed peer visits and is
//! recorded), and in a file they are plain text, or JSON lines on request.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{visitor_spec, within};
use libp2p::Multiaddr;
use punchr_testutil::sim::SimNode;
use punchr_testutil::{free_port, on_both_engines, TestDb};

on_both_engines!(no_private_key_or_password_is_logged_at_trace);

/// Runs the binary with its output (stdout and stderr) going to a file, as a redirect or the
/// systemd journal takes it, until a visitor is recorded, then stops it with SIGTERM; returns
/// what it wrote. `NO_COLOR` is unset: the binary alone decides that a file gets no colours.
async fn recorded_visit_log(db: &TestDb, log_format: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("honeypot.key");
    let (port, telemetry_port) = (free_port(), free_port());
    let logs = tempfile::NamedTempFile::new().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_punchr-honeypot"));
    command
        .args(["--db", &db.location, "--key-file"])
        .arg(&key_file)
        .args(["--listen-ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--telemetry-port", &telemetry_port.to_string()])
        .args(["--bootstrap-peers", "none"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("PUNCHR_HONEYPOT_LOG_FORMAT")
        .stdout(logs.reopen().unwrap())
        .stderr(logs.reopen().unwrap())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(format) = log_format {
        command.env("PUNCHR_HONEYPOT_LOG_FORMAT", format);
    }
    let recorded_before = visits_recorded(db).await;
    let mut honeypot = command.spawn().expect("start punchr-honeypot");
    let telemetry: SocketAddr = ([127, 0, 0, 1], telemetry_port).into();
    within("the telemetry endpoint", async {
        while tokio::net::TcpStream::connect(telemetry).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let visitor = SimNode::start(visitor_spec(true)).await.unwrap();
    let keys = punchr_keyfile::load(&key_file).expect("the honeypot wrote its key file");
    let peer_id = keys[0].public().to_peer_id();
    let address: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id}")
        .parse()
        .unwrap();
    within("the visit", visitor.connect(address)).await.unwrap();
    within("the visit recorded", async {
        while visits_recorded(db).await == recorded_before {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    visitor.shutdown().await;
    let pid = honeypot.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    within("the honeypot stops", honeypot.wait()).await.unwrap();
    std::fs::read_to_string(logs.path()).unwrap()
}

/// Issue 17, point 7: log lines in a file are plain text without escape codes, or JSON objects
/// with the event's target and name on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_plain_text_in_a_file_and_json_on_request() {
    use punchr_testutil::logs::{assert_plain_text, json_events, json_lines};
    let db = TestDb::sqlite().await;
    let text = recorded_visit_log(&db, None).await;
    assert_plain_text(&text);
    assert!(
        text.lines()
            .any(|line| line.contains("INFO punchr::honeypot:")
                && line.contains(r#"event="connection_recorded""#)),
        "{text}"
    );
    let json = recorded_visit_log(&db, Some("json")).await;
    let lines = json_lines(&json);
    let recorded = json_events(&lines, punchr_honeypot::TARGET, "connection_recorded");
    assert_eq!(recorded.len(), 1, "{json}");
    assert!(recorded[0]["event_id"].is_number(), "{:?}", recorded[0]);
}

/// A PostgreSQL URL with a password in it (the scratch server trusts every login, so any password
/// works); SQLite locations have none.
fn with_password(location: &str, password: &str) -> String {
    match location.strip_prefix("postgres://postgres@") {
        Some(rest) => format!("postgres://postgres:{password}@{rest}"),
        None => location.to_owned(),
    }
}

async fn visits_recorded(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM connection_events")
        .fetch_one(db.store.pool())
        .await
        .unwrap()
}

async fn no_private_key_or_password_is_logged_at_trace(db: TestDb) {
    let password = "db-password-5e1c7b";
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("honeypot.key");
    let (port, telemetry_port) = (free_port(), free_port());
    let logs = tempfile::NamedTempFile::new().unwrap();
    let mut honeypot = tokio::process::Command::new(env!("CARGO_BIN_EXE_punchr-honeypot"))
        .args(["--db", &with_password(&db.location, password), "--key-file"])
        .arg(&key_file)
        .args(["--listen-ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--telemetry-port", &telemetry_port.to_string()])
        .args(["--bootstrap-peers", "none"])
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(logs.reopen().unwrap())
        .stderr(logs.reopen().unwrap())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start punchr-honeypot");
    let telemetry: SocketAddr = ([127, 0, 0, 1], telemetry_port).into();
    within("the telemetry endpoint", async {
        while tokio::net::TcpStream::connect(telemetry).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;

    let visitor = SimNode::start(visitor_spec(true)).await.unwrap();
    let keys = punchr_keyfile::load(&key_file).expect("the honeypot wrote its key file");
    let peer_id = keys[0].public().to_peer_id();
    let address: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id}")
        .parse()
        .unwrap();
    within("the visit", visitor.connect(address)).await.unwrap();
    within("the visit recorded", async {
        while visits_recorded(&db).await == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    visitor.shutdown().await;
    let pid = honeypot.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    within("the honeypot stops", honeypot.wait()).await.unwrap();

    let logged = std::fs::read_to_string(logs.path()).unwrap();
    let private_key = std::fs::read_to_string(&key_file).expect("the key file was written");
    let private_key = private_key.trim();
    assert!(!private_key.is_empty());
    for secret in [private_key, password] {
        assert!(
            !logged.contains(secret),
            "a secret reached the log: {}",
            logged
                .lines()
                .find(|line| line.contains(secret))
                .unwrap_or_default()
        );
    }
}
