//! The client's logs through a real round (register, ask, punch through a relay, report):
//! nothing secret reaches them (not its API key, not the private keys in its key file, not a
//! request as a whole, even with every target logging at `trace`), and in a file they are plain
//! text, or JSON lines on request.

use std::process::Stdio;
use std::time::Duration;

use crate::common::{seed_honeypot_sighting, start_server};
use punchr_testutil::libp2p_peers::{spawn_nated_remote, spawn_relay};
use punchr_testutil::TestDb;

/// Text that only a whole request's `Debug` output would put into a log line.
const REQUEST_DUMPS: [&str; 4] = [
    "RegisterRequest",
    "GetAddrInfoRequest",
    "TrackHolePunchRequest",
    "api_key: \"",
];

/// What one run of the binary left: its log and the secrets it held.
struct Round {
    /// Everything it wrote to stdout and stderr.
    logged: String,
    /// Its key file's text (one private key per line).
    private_keys: String,
    /// Its API key.
    api_key: String,
}

/// One real round (register, ask, punch through a relay, report) of the binary with its output
/// going to a file, at `rust_log`, in `log_format` (the default when `None`). `NO_COLOR` is
/// unset: the binary alone decides that a file gets no colours.
async fn one_round(rust_log: &str, log_format: Option<&str>) -> Round {
    let db = TestDb::sqlite().await;
    let server = start_server(&db.location, 0, &[]).await;
    let (_, api_key) = db.store.create_api_key("volunteer").await.unwrap();
    let relay = spawn_relay().await;
    let remote = spawn_nated_remote(&relay).await;
    seed_honeypot_sighting(&db.store, &remote).await;

    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("client.keys");
    let logs = tempfile::NamedTempFile::new().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_punchr-client"));
    command
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
        .env("RUST_LOG", rust_log)
        .env_remove("NO_COLOR")
        .env_remove("PUNCHR_CLIENT_LOG_FORMAT")
        .stdout(logs.reopen().unwrap())
        .stderr(logs.reopen().unwrap())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(format) = log_format {
        command.env("PUNCHR_CLIENT_LOG_FORMAT", format);
    }
    let mut client = command.spawn().expect("start punchr-client");
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
    Round {
        logged,
        private_keys: std::fs::read_to_string(&key_file).expect("the client wrote its key file"),
        api_key: api_key.expose().to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_or_request_is_logged_at_trace() {
    let Round {
        logged,
        private_keys,
        api_key,
    } = one_round("trace", None).await;
    let mut secrets: Vec<&str> = private_keys.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(secrets.len(), 1, "one host, one private key");
    secrets.push(&api_key);
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

/// Issue 17, point 7: log lines in a file are plain text without escape codes, or JSON objects
/// with the event's target and name on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_plain_text_in_a_file_and_json_on_request() {
    use punchr_testutil::logs::{assert_plain_text, json_events, json_lines};
    use punchr_types::log_target::CLIENT;
    let text = one_round("info", None).await.logged;
    assert_plain_text(&text);
    assert!(
        text.lines().any(
            |line| line.contains("INFO punchr::client: hole punch finished")
                && line.contains(r#"event="hole_punch_finished""#)
        ),
        "{}",
        tail(&text)
    );
    let json = one_round("info", Some("json")).await.logged;
    let lines = json_lines(&json);
    let finished = json_events(&lines, CLIENT, "hole_punch_finished");
    assert_eq!(finished.len(), 1, "{}", tail(&json));
    assert!(finished[0]["outcome"].is_string(), "{:?}", finished[0]);
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
