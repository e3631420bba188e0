//! The server's logs: nothing secret reaches them (not an API key, accepted, unknown or revoked,
//! not the database password, not a request as a whole, even with every target logging at
//! `trace`), and in a file they are plain text, or JSON lines on request.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;
use punchr_testutil::fixtures::peer_id;
use punchr_testutil::{free_port, on_both_engines, TestDb};
use tokio::process::Command;
use tonic::Code;

on_both_engines!(no_key_password_or_request_is_logged_at_trace);

/// Starts the binary with its output (stdout and stderr) going to a file, as a redirect or the
/// systemd journal takes it, registers a host, stops it with SIGTERM; returns what it wrote.
/// `NO_COLOR` is unset: the binary alone decides that a file gets no colours.
async fn served_log(db: &TestDb, key: &str, log_format: Option<&str>) -> String {
    let (grpc_port, telemetry_port) = (free_port(), free_port());
    let logs = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_punchr-server"));
    command
        .args(["--db", &db.location])
        .args(["--host", "127.0.0.1", "--port", &grpc_port.to_string()])
        .args(["--telemetry-port", &telemetry_port.to_string()])
        .args(["--dashboard-port", &free_port().to_string()])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("PUNCHR_SERVER_LOG_FORMAT")
        .stdout(logs.reopen().unwrap())
        .stderr(logs.reopen().unwrap())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(format) = log_format {
        command.env("PUNCHR_SERVER_LOG_FORMAT", format);
    }
    let mut server = command.spawn().expect("start punchr-server");
    let telemetry: SocketAddr = format!("127.0.0.1:{telemetry_port}").parse().unwrap();
    wait_until_healthy(telemetry, &mut server).await;
    let mut client = punchr_proto::punchr_service_client::PunchrServiceClient::connect(format!(
        "http://127.0.0.1:{grpc_port}"
    ))
    .await
    .expect("connect to the binary");
    client
        .register(register_request(key, &peer_id()))
        .await
        .expect("register a host");
    nix_kill(&server, "-TERM");
    tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server stops after SIGTERM")
        .unwrap();
    std::fs::read_to_string(logs.path()).unwrap()
}

/// Issue 17, point 7: log lines in a file are plain text without escape codes, or JSON objects
/// with the event's target and name on request; a command's standard output holds only what it
/// prints, whatever is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_plain_text_in_a_file_and_json_on_request() {
    use punchr_testutil::logs::{assert_plain_text, json_events, json_lines};
    use punchr_types::log_target::SERVER;
    let db = TestDb::sqlite().await;
    let key = new_api_key(&db.store, "alice").await;

    let text = served_log(&db, &key, None).await;
    assert_plain_text(&text);
    assert!(
        text.lines()
            .any(|line| line.contains("INFO punchr::server: registered host")
                && line.contains(r#"event="host_registered""#)),
        "{}",
        tail(&text)
    );

    let json = served_log(&db, &key, Some("json")).await;
    let lines = json_lines(&json);
    let registered = json_events(&lines, SERVER, "host_registered");
    assert_eq!(registered.len(), 1, "{}", tail(&json));
    assert_eq!(registered[0]["level"], "INFO");
    assert!(registered[0]["api_key"].is_number(), "{:?}", registered[0]);

    // Logs go to standard error: the report on standard output parses whole, even at debug.
    let report = Command::new(env!("CARGO_BIN_EXE_punchr-server"))
        .args(["--db", &db.location, "report", "--format", "json"])
        .env("RUST_LOG", "debug")
        .output()
        .await
        .unwrap();
    assert!(report.status.success(), "{report:?}");
    let stdout = String::from_utf8(report.stdout).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("standard output is not the report alone ({e}):\n{stdout}"));
    assert_eq!(parsed["outcomes"]["SUCCESS"], 0);
    assert!(
        !report.stderr.is_empty(),
        "the debug lines went to standard error"
    );
}

/// Text that only a whole request's `Debug` output would put into a log line.
const REQUEST_DUMPS: [&str; 5] = [
    "RegisterRequest",
    "GetAddrInfoRequest",
    "TrackHolePunchRequest",
    "api_key: \"",
    "ApiKeySecret(\"",
];

/// A PostgreSQL URL with a password in it (the scratch server trusts every login, so any password
/// works); SQLite locations have none.
fn with_password(location: &str, password: &str) -> String {
    match location.strip_prefix("postgres://postgres@") {
        Some(rest) => format!("postgres://postgres:{password}@{rest}"),
        None => location.to_owned(),
    }
}

async fn wait_until_healthy(telemetry: SocketAddr, server: &mut tokio::process::Child) {
    for _ in 0..600 {
        assert!(server.try_wait().unwrap().is_none(), "the server exited");
        let listening = tokio::net::TcpStream::connect(telemetry).await.is_ok();
        if listening && http_get(telemetry, "/healthz").await.0 == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server never became healthy");
}

/// Every RPC, with a good key, an unknown key and a revoked key; returns, per key, the status
/// code of each of the three answers (Register, GetAddrInfo, TrackHolePunch).
async fn exercise_every_rpc(grpc_port: u16, db: &TestDb, keys: &[&str]) -> Vec<[Code; 3]> {
    let mut client = punchr_proto::punchr_service_client::PunchrServiceClient::connect(format!(
        "http://127.0.0.1:{grpc_port}"
    ))
    .await
    .expect("connect to the binary");
    let remote = seed_remote(&db.store).await;
    let code = |status: Result<(), tonic::Status>| status.err().map_or(Code::Ok, |s| s.code());
    let mut codes = Vec::new();
    for key in keys {
        let host = peer_id();
        let register = client.register(register_request(key, &host)).await;
        let get_addr_info = client
            .get_addr_info(get_addr_info_request(key, &host, &[host]))
            .await;
        let track = client
            .track_hole_punch(track_request(key, &host, &remote.peer))
            .await;
        codes.push([
            code(register.map(drop)),
            code(get_addr_info.map(drop)),
            code(track.map(drop)),
        ]);
    }
    codes
}

async fn no_key_password_or_request_is_logged_at_trace(db: TestDb) {
    let good_key = new_api_key(&db.store, "alice").await;
    let revoked_key = new_api_key(&db.store, "mallory").await;
    db.store.revoke_api_key("mallory").await.unwrap();
    let unknown_key = "6f0d1b7e-5a43-4c1e-9e7d-0123456789ab";
    let password = "db-password-7f3a9c";
    let (grpc_port, telemetry_port) = (free_port(), free_port());
    let logs = tempfile::NamedTempFile::new().unwrap();

    let mut server = Command::new(env!("CARGO_BIN_EXE_punchr-server"))
        .args(["--db", &with_password(&db.location, password)])
        .args(["--host", "127.0.0.1", "--port", &grpc_port.to_string()])
        .args(["--telemetry-port", &telemetry_port.to_string()])
        .args(["--dashboard-port", &free_port().to_string()])
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(logs.reopen().unwrap())
        .stderr(logs.reopen().unwrap())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start punchr-server");
    let telemetry: SocketAddr = format!("127.0.0.1:{telemetry_port}").parse().unwrap();
    wait_until_healthy(telemetry, &mut server).await;
    let codes = exercise_every_rpc(grpc_port, &db, &[&good_key, &revoked_key, unknown_key]).await;
    // Each call reached the server and was answered by it (a call that never got there would
    // leave nothing to log): the good key's three were served, the others refused by the
    // key check.
    assert_eq!(
        codes,
        [
            [Code::Ok; 3],
            [Code::Unauthenticated; 3],
            [Code::Unauthenticated; 3]
        ],
        "answers (good, revoked, unknown key)"
    );
    assert_eq!(count(&db.store, "handouts").await, 1, "GetAddrInfo served");
    assert_eq!(
        count(&db.store, "hole_punch_results").await,
        1,
        "TrackHolePunch stored"
    );
    let _ = http_get(telemetry, "/metrics").await;
    nix_kill(&server, "-TERM");
    tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server stops after SIGTERM")
        .unwrap();

    let logged = std::fs::read_to_string(logs.path()).unwrap();
    eprintln!("{} log lines at trace", logged.lines().count());
    assert!(
        logged.contains("registered host"),
        "the requests reached the server and were logged:\n{}",
        tail(&logged)
    );
    for secret in [
        good_key.as_str(),
        revoked_key.as_str(),
        unknown_key,
        password,
    ] {
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

fn nix_kill(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(sent.success());
}

fn line_with<'a>(logged: &'a str, needle: &str) -> &'a str {
    logged
        .lines()
        .find(|line| line.contains(needle))
        .unwrap_or_default()
}

fn tail(logged: &str) -> String {
    let lines: Vec<_> = logged.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
