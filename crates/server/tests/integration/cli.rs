//! The `punchr-server` binary: key management, help, configuration errors, and a clean stop on
//! SIGTERM.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::common::*;
use punchr_store::ApiKeySecret;
use punchr_testutil::fixtures::peer_id;
use punchr_testutil::{free_port, on_both_engines, TestDb};
use tokio::process::Command;

on_both_engines!(
    keys_are_added_listed_and_revoked,
    keys_find_the_database_through_the_environment,
    revoking_an_unknown_key_fails_clearly,
    adding_a_duplicate_name_fails_clearly,
    the_server_serves_and_stops_cleanly_on_sigterm,
);

const BINARY: &str = env!("CARGO_BIN_EXE_punchr-server");

/// Every server flag, each with its environment variable `PUNCHR_SERVER_<FLAG>`.
const FLAGS: [&str; 37] = [
    "--host",
    "--port",
    "--telemetry-host",
    "--telemetry-port",
    "--db",
    "--tls-cert",
    "--tls-key",
    "--allow-anonymous",
    "--anonymous-keys-per-address",
    "--max-anonymous-keys",
    "--fresh-window",
    "--remote-limit",
    "--remote-limit-window",
    "--repeat-window",
    "--handouts-per-key",
    "--remote-limit-per-key",
    "--serve-private-relays",
    "--no-protocol-filter",
    "--protocol-filters",
    "--max-request-bytes",
    "--rate-limit",
    "--rate-limit-burst",
    "--dashboard-host",
    "--dashboard-port",
    "--max-streams-per-connection",
    "--request-timeout",
    "--header-timeout",
    "--idle-timeout",
    "--http2-keepalive-interval",
    "--http2-keepalive-timeout",
    "--tcp-keepalive",
    "--max-connections",
    "--dashboard-max-connections",
    "--report-pool-size",
    "--report-concurrency",
    "--report-deadline",
    "--log-format",
];

fn env_var(flag: &str) -> String {
    format!(
        "PUNCHR_SERVER_{}",
        flag.trim_start_matches("--")
            .replace('-', "_")
            .to_uppercase()
    )
}

/// The binary with no `PUNCHR_SERVER_*` variables from the caller's environment.
fn punchr_server(args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .kill_on_drop(true);
    for flag in FLAGS {
        command.env_remove(env_var(flag));
    }
    command
}

async fn run(args: &[&str]) -> Output {
    punchr_server(args)
        .output()
        .await
        .expect("run punchr-server")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// The key printed by `keys add`: the line shaped like a UUID.
fn printed_key(output: &Output) -> String {
    let keys: Vec<String> = stdout(output)
        .lines()
        .map(str::trim)
        .filter(|line| line.len() == 36 && line.chars().filter(|&c| c == '-').count() == 4)
        .map(String::from)
        .collect();
    assert_eq!(keys.len(), 1, "one key in:\n{}", stdout(output));
    keys[0].clone()
}

// ---------------------------------------------------------------------------------------------
// keys
// ---------------------------------------------------------------------------------------------

async fn keys_are_added_listed_and_revoked(db: TestDb) {
    let added = run(&["--db", &db.location, "keys", "add", "--name", "alice"]).await;
    assert_success(&added);
    let key = printed_key(&added);
    assert!(stdout(&added).contains("alice"));
    let stored = db
        .store
        .authenticate(&ApiKeySecret::new(&key))
        .await
        .unwrap();
    assert_eq!(stored.map(|k| k.name).as_deref(), Some("alice"));

    let listed = run(&["--db", &db.location, "keys", "list"]).await;
    assert_success(&listed);
    let line = stdout(&listed)
        .lines()
        .find(|l| l.contains("alice"))
        .map(String::from);
    let line = line.expect("alice is listed");
    assert!(line.contains("active"), "{line}");
    assert!(
        !stdout(&listed).contains(&key),
        "keys list shows the key itself"
    );

    let revoked = run(&["--db", &db.location, "keys", "revoke", "--name", "alice"]).await;
    assert_success(&revoked);
    assert!(stdout(&revoked).contains("alice"));
    assert_eq!(
        db.store
            .authenticate(&ApiKeySecret::new(&key))
            .await
            .unwrap(),
        None
    );

    let listed = run(&["--db", &db.location, "keys", "list"]).await;
    let line = stdout(&listed)
        .lines()
        .find(|l| l.contains("alice"))
        .map(String::from);
    assert!(line.expect("alice is still listed").contains("revoked"));
    assert!(!stdout(&listed).contains(&key));
}

async fn keys_find_the_database_through_the_environment(db: TestDb) {
    let added = punchr_server(&["keys", "add", "--name", "alice"])
        .env("PUNCHR_SERVER_DB", &db.location)
        .output()
        .await
        .unwrap();
    assert_success(&added);
    let key = printed_key(&added);
    assert!(db
        .store
        .authenticate(&ApiKeySecret::new(&key))
        .await
        .unwrap()
        .is_some());
}

async fn revoking_an_unknown_key_fails_clearly(db: TestDb) {
    let revoked = run(&["--db", &db.location, "keys", "revoke", "--name", "nobody"]).await;
    assert!(!revoked.status.success());
    assert!(
        stderr(&revoked).contains("no API key named \"nobody\""),
        "{}",
        stderr(&revoked)
    );
}

async fn adding_a_duplicate_name_fails_clearly(db: TestDb) {
    assert_success(&run(&["--db", &db.location, "keys", "add", "--name", "alice"]).await);
    let again = run(&["--db", &db.location, "keys", "add", "--name", "alice"]).await;
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );
    assert_eq!(count(&db.store, "api_keys").await, 1);
}

// Regression test (was a bug) (crates/server/src/config.rs, `Cli`): the server flags are flattened into the top-level
// command without `global = true`, so `punchr-server keys add --name alice --db x.sqlite` is
// refused ("unexpected argument '--db' found"); only `punchr-server --db x.sqlite keys add …`
// works. Ignored until fixed.
#[tokio::test]
async fn keys_accept_the_database_after_the_subcommand() {
    let db = TestDb::sqlite().await;
    let added = run(&["keys", "add", "--name", "alice", "--db", &db.location]).await;
    assert_success(&added);
    let key = printed_key(&added);
    assert!(db
        .store
        .authenticate(&ApiKeySecret::new(&key))
        .await
        .unwrap()
        .is_some());
}

// Regression test (was a bug) (crates/server/src/main.rs, `keys` branch): the error context
// `format!("opening database {}", cli.server.db)` prints the --db value verbatim, so a
// PostgreSQL password appears on stderr ("Error: opening database postgres://punchr:hunter2@…"),
// although StoreError itself redacts it. Ignored until fixed.
#[tokio::test]
async fn keys_never_print_the_database_password() {
    let output = run(&[
        "--db",
        "postgres://punchr:hunter2@127.0.0.1:1/punchr",
        "keys",
        "list",
    ])
    .await;
    assert!(!output.status.success());
    assert!(!stderr(&output).contains("hunter2"), "{}", stderr(&output));
    assert!(!stdout(&output).contains("hunter2"));
}

// ---------------------------------------------------------------------------------------------
// help and configuration errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn help_lists_every_flag_with_its_environment_variable() {
    let help = run(&["--help"]).await;
    assert_success(&help);
    let text = stdout(&help);
    let listed: BTreeSet<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '[' | ']' | '(' | ')'))
        .filter(|word| word.starts_with("--"))
        .collect();
    let mut expected: BTreeSet<&str> = FLAGS.into_iter().collect();
    expected.extend(["--help", "--version"]);
    assert_eq!(listed, expected, "flags in --help");
    for flag in FLAGS {
        let env = env_var(flag);
        assert!(
            text.contains(&format!("[env: {env}=")) || text.contains(&format!("[env: {env}]")),
            "{flag} has no {env} in:\n{text}"
        );
    }
    let keys_help = stdout(&run(&["keys", "--help"]).await);
    for command in ["add", "list", "revoke"] {
        assert!(
            keys_help.contains(command),
            "keys {command} in:\n{keys_help}"
        );
    }
}

// Regression test (was a bug) (crates/server/src/config.rs): clap prints the current value of every environment
// variable in --help (`[env: PUNCHR_SERVER_DB=postgres://punchr:hunter2@…]`), so the database
// password ends up in terminals and logs. Suggested fix: `hide_env_values = true` on `--db`
// (or on the command). Ignored until fixed.
#[tokio::test]
async fn help_never_shows_the_database_password() {
    let help = punchr_server(&["--help"])
        .env(
            "PUNCHR_SERVER_DB",
            "postgres://punchr:hunter2@db.example/punchr",
        )
        .output()
        .await
        .unwrap();
    assert_success(&help);
    assert!(!stdout(&help).contains("hunter2"), "{}", stdout(&help));
}

#[tokio::test]
async fn a_database_in_a_missing_directory_is_refused() {
    let output = run(&[
        "--db",
        "/nonexistent/dir/x.sqlite",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--telemetry-port",
        "0",
    ])
    .await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("does not exist"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn malformed_flags_are_refused_with_a_reason() {
    let cases: [(&[&str], &str); 3] = [
        (&["--fresh-window", "ten"], "not a duration"),
        (&["--repeat-window", "5d"], "unknown unit"),
        (&["--tls-cert", "cert.pem"], "--tls-key"),
    ];
    for (args, reason) in cases {
        let output = run(args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(reason),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// serving
// ---------------------------------------------------------------------------------------------

/// Whether `GET /healthz` answers 200.
fn healthy(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let mut response = String::new();
    stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.0 200")
}

async fn the_server_serves_and_stops_cleanly_on_sigterm(db: TestDb) {
    let (grpc_port, telemetry_port) = (free_port().to_string(), free_port().to_string());
    let mut server = punchr_server(&[
        "--db",
        &db.location,
        "--host",
        "127.0.0.1",
        "--port",
        &grpc_port,
        "--telemetry-port",
        &telemetry_port,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("start punchr-server");

    let telemetry: SocketAddr = format!("127.0.0.1:{telemetry_port}").parse().unwrap();
    let mut waited = 0;
    while !tokio::task::spawn_blocking(move || healthy(telemetry))
        .await
        .unwrap()
    {
        assert!(
            server.try_wait().unwrap().is_none(),
            "the server exited early"
        );
        assert!(waited < 600, "the server never became healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }

    // It serves gRPC on the given port.
    let key = new_api_key(&db.store, "alice").await;
    let mut client = punchr_proto::punchr_service_client::PunchrServiceClient::connect(format!(
        "http://127.0.0.1:{grpc_port}"
    ))
    .await
    .expect("connect to the binary");
    client
        .register(register_request(&key, &peer_id()))
        .await
        .expect("Register");
    drop(client);

    let pid = server.id().expect("the server runs").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server stops after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}
