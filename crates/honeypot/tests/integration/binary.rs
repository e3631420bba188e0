//! The `punchr-honeypot` binary: configured through `PUNCHR_HONEYPOT_*` variables alone, it
//! creates its key file, registers itself in the database, serves telemetry and stops cleanly
//! on SIGTERM; a database it cannot write stops it at once with one clear line.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{http_get, within};
use punchr_testutil::disk::{require_root, SmallDisk};
use punchr_testutil::{free_port, TestDb};

#[test]
fn every_flag_has_an_environment_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_punchr-honeypot"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    let flags = help.lines().filter(|l| {
        l.trim_start().starts_with("--") && !l.contains("--help") && !l.contains("--version")
    });
    let mut count = 0;
    for flag in flags {
        count += 1;
        let name = flag
            .trim_start()
            .trim_start_matches("--")
            .split([' ', '<'])
            .next()
            .unwrap();
        let var = format!("PUNCHR_HONEYPOT_{}", name.to_uppercase().replace('-', "_"));
        assert!(help.contains(&var), "--{name} has no {var}:\n{help}");
    }
    assert!(count >= 20, "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_from_the_environment_and_stops_on_sigterm() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("honeypot.key");
    let telemetry_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_punchr-honeypot"))
        .env("PUNCHR_HONEYPOT_KEY_FILE", &key_file)
        .env("PUNCHR_HONEYPOT_DB", &db.location)
        .env("PUNCHR_HONEYPOT_LISTEN_IP", "127.0.0.1")
        .env("PUNCHR_HONEYPOT_PORT", free_port().to_string())
        .env("PUNCHR_HONEYPOT_TELEMETRY_PORT", telemetry_port.to_string())
        .env("PUNCHR_HONEYPOT_BOOTSTRAP_PEERS", "none")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let telemetry: SocketAddr = ([127, 0, 0, 1], telemetry_port).into();
    within("the telemetry endpoint", async {
        while tokio::net::TcpStream::connect(telemetry).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(http_get(telemetry, "/healthz").await.0, 200);
    assert_eq!(http_get(telemetry, "/readyz").await.0, 200);
    let (_, metrics) = http_get(telemetry, "/metrics").await;
    assert!(
        metrics.contains("honeypot_tracked_connections"),
        "{metrics}"
    );

    let keys = punchr_keyfile::load(&key_file).expect("the key file was created");
    let peer_id = keys[0].public().to_peer_id().to_base58();
    let agent: Option<String> =
        sqlx::query_scalar("SELECT agent_version FROM peers WHERE peer_id = $1")
            .bind(&peer_id)
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    assert_eq!(
        agent.as_deref(),
        Some(concat!("punchr/honeypot/", env!("CARGO_PKG_VERSION")))
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = within("the honeypot to exit", async {
        loop {
            if let Some(exit) = child.try_wait().unwrap() {
                return exit;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_stops_the_start_with_one_clear_line() {
    require_root("mount a read-only file system");
    let disk = SmallDisk::mount("8m");
    let db = disk.path().join("punchr.sqlite");
    let db = db.to_str().unwrap();
    punchr_store::Store::open(db).await.unwrap().close().await;
    disk.remount("ro");
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_punchr-honeypot"))
        .env("PUNCHR_HONEYPOT_KEY_FILE", dir.path().join("honeypot.key"))
        .env("PUNCHR_HONEYPOT_DB", db)
        .env("PUNCHR_HONEYPOT_LISTEN_IP", "127.0.0.1")
        .env("PUNCHR_HONEYPOT_PORT", "0")
        .env("PUNCHR_HONEYPOT_TELEMETRY_PORT", "0")
        .env("PUNCHR_HONEYPOT_BOOTSTRAP_PEERS", "none")
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line:\n{stderr}");
    for words in ["error: ", db, "not writable", "Read-only file system"] {
        assert!(lines[0].contains(words), "{words:?} missing: {stderr}");
    }
}
