//! Nothing secret reaches the client's logs: not its API key, not the private keys in its key
//! file, not a request as a whole, even with every target logging at `trace` through a real round
//! (register, ask, punch through a relay, report).

use std::process::Stdio;
use std::time::Duration;

mod common;

use common::{seed_honeypot_sighting, start_server};
use punchr_testutil::libp2p_peers::{spawn_nated_remote, spawn_relay};
use punchr_testutil::TestDb;

/// Text that only a whole request's `Debug` output would put into a log line.
const REQUEST_DUMPS: [&str; 4] = [
    "RegisterRequest",
    "GetAddrInfoRequest",
    "TrackHolePunchRequest",
    "api_key: \"",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_or_request_is_logged_at_trace() {
    let db = TestDb::sqlite().await;
    let server = start_server(&db.location, 0, &[]).await;
    let (_, api_key) = db.store.create_api_key("volunteer").await.unwrap();
    let relay = spawn_relay().await;
    let remote = spawn_nated_remote(&relay).await;
    seed_honeypot_sighting(&db.store, &remote).await;

    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("client.keys");
    let logs = tempfile::NamedTempFile::new().unwrap();
    let mut client = tokio::process::Command::new(env!("CARGO_BIN_EXE_punchr-client"))
        .args(["--server-host", "127.0.0.1"])
        .args(["--server-port", &server.grpc_addr().port().to_string()])
        .args(["--host-count", "1", "--rounds", "1", "--key-file"])
        .arg(&key_file)
        .args([
            "--assume-public",
            "--dial-private-relays",
            "--bootstrap-peers",
            "none",
        ])
        .args(["--listen", "127.0.0.1"])
        .args(["--telemetry-port", "0", "--outbox"])
        .arg(dir.path().join("outbox"))
        .env("API_KEY", api_key.expose())
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(logs.reopen().unwrap())
        .stderr(logs.reopen().unwrap())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start punchr-client");
    let status = tokio::time::timeout(Duration::from_secs(120), client.wait())
        .await
        .expect("one round ends")
        .unwrap();
    let logged = std::fs::read_to_string(logs.path()).unwrap();
    assert!(status.success(), "{status:?}\n{}", tail(&logged));
    server.shutdown().await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM hole_punch_results")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 1, "the round was reported");

    let private_keys = std::fs::read_to_string(&key_file).expect("the client wrote its key file");
    let mut secrets: Vec<&str> = private_keys.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(secrets.len(), 1, "one host, one private key");
    secrets.push(api_key.expose());
    for secret in secrets {
        assert!(
            !logged.contains(secret),
            "a secret reached the log: {}",
            line_with(&logged, secret)
        );
    }
    for dump in REQUEST_DUMPS {
        assert!(
            !logged.contains(dump),
            "a whole request reached the log: {}",
            line_with(&logged, dump)
        );
    }
}

fn line_with<'a>(logged: &'a str, needle: &str) -> &'a str {
    logged
        .lines()
        .find(|line| line.contains(needle))
        .unwrap_or_default()
}

fn tail(logged: &str) -> String {
    let lines: Vec<_> = logged.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
