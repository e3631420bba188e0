//! Nothing secret reaches the honeypot's logs: not its private key, not the database password,
//! even with every target logging at `trace` while a NATed peer visits and is recorded.

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use libp2p::Multiaddr;
use punchr_honeypot::sim::SimNode;
use punchr_testutil::{free_port, on_both_engines, TestDb};
use support::{visitor_spec, within};

on_both_engines!(no_private_key_or_password_is_logged_at_trace);

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
