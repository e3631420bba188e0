//! The cross-built clients (`scripts/cross-client`) run under Debian's qemu-user-static:
//! `--version`, `--help`, and one real round against a server, a relay and a NATed-style remote
//! on loopback that ends with a stored result.
//!
//! aarch64 (64-bit Pis) and armv6 (every 32-bit Pi: the Pi Zero and Pi 1 need it, and it runs
//! unchanged on the ARMv7 CPUs of a Pi 2/3/4 on a 32-bit OS) must be given; `scripts/test`
//! builds just these two, since each cross build of the client costs CI about four minutes.
//! An armv7 build, which only `scripts/release` makes, is run too when it is given.
//!
//! `scripts/test` builds them first and names them in `PUNCHR_TEST_CROSS_CLIENTS`
//! (`<target>=<path>` pairs, comma separated).
//!
//! The ARMv6 build must not contain ARMv7 code: its ELF attributes must say ARMv6 and Thumb-1
//! (zig links it against a glibc built for ARMv6). It runs here on qemu's default ARM CPU with
//! Debian's armhf libraries (ARMv7), since Debian has no ARMv6 hard-float glibc to run it with.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{seed_honeypot_sighting, start_server};
use punchr_testutil::libp2p_peers::{spawn_nated_remote, spawn_relay};
use punchr_testutil::TestDb;
use sqlx::Row;

const CROSS_CLIENTS_VAR: &str = "PUNCHR_TEST_CROSS_CLIENTS";

/// The 64-bit and the 32-bit ARM builds every Raspberry Pi runs one of.
const REQUIRED_TARGETS: [&str; 2] = ["aarch64-unknown-linux-gnu", "arm-unknown-linux-gnueabihf"];

/// A cross-built client and how to run it here.
struct CrossClient {
    target: String,
    binary: PathBuf,
    qemu: &'static str,
    sysroot: &'static str,
}

fn cross_clients() -> Vec<CrossClient> {
    let list = std::env::var(CROSS_CLIENTS_VAR).unwrap_or_else(|_| {
        panic!(
            "{CROSS_CLIENTS_VAR} is not set, so the cross-built clients cannot be tested. Run \
             the whole suite with `scripts/test`, or build them with `scripts/cross-client \
             --profile dev` and set {CROSS_CLIENTS_VAR}=<target>=<path>,…"
        )
    });
    list.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (target, path) = entry
                .split_once('=')
                .unwrap_or_else(|| panic!("{CROSS_CLIENTS_VAR}: {entry:?} is not <target>=<path>"));
            let (qemu, sysroot) = match target {
                "aarch64-unknown-linux-gnu" => ("qemu-aarch64-static", "/usr/aarch64-linux-gnu"),
                "armv7-unknown-linux-gnueabihf" | "arm-unknown-linux-gnueabihf" => {
                    ("qemu-arm-static", "/usr/arm-linux-gnueabihf")
                }
                other => panic!("{CROSS_CLIENTS_VAR}: no emulator known for {other}"),
            };
            CrossClient {
                target: target.to_owned(),
                binary: PathBuf::from(path),
                qemu,
                sysroot,
            }
        })
        .collect()
}

impl CrossClient {
    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(self.qemu);
        command
            .arg("-L")
            .arg(self.sysroot)
            .arg(&self.binary)
            .kill_on_drop(true);
        command
    }

    async fn output(&self, args: &[&str]) -> String {
        let output = self
            .command()
            .args(args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("{}: running {}: {e}", self.target, self.qemu));
        assert!(
            output.status.success(),
            "{} {args:?}: {:?}\n{}",
            self.target,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_built_clients_run_a_round_under_qemu() {
    let clients = cross_clients();
    for required in REQUIRED_TARGETS {
        assert!(
            clients.iter().any(|c| c.target == required),
            "{required} is expected in {CROSS_CLIENTS_VAR}"
        );
    }
    for client in &clients {
        if client.target == "arm-unknown-linux-gnueabihf" {
            assert_armv6(&client.binary);
        }
        let version = client.output(&["--version"]).await;
        assert!(
            version.starts_with("punchr-client "),
            "{}: {version}",
            client.target
        );
        let help = client.output(&["--help"]).await;
        assert!(
            help.contains("--server-host") && help.contains("PUNCHR_CLIENT_"),
            "{}: {help}",
            client.target
        );
        one_round(client).await;
    }
}

/// The binary's ELF attributes: built for ARMv6 with Thumb-1 at most (a Pi Zero or Pi 1 cannot
/// run ARMv7 or Thumb-2 code).
fn assert_armv6(binary: &std::path::Path) {
    let output = std::process::Command::new("readelf")
        .arg("-A")
        .arg(binary)
        .output()
        .expect("run readelf");
    let attributes = String::from_utf8_lossy(&output.stdout);
    let value = |tag: &str| {
        attributes
            .lines()
            .find_map(|line| line.trim().strip_prefix(tag))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {tag} in:\n{attributes}"))
            .to_owned()
    };
    assert_eq!(value("Tag_CPU_arch:"), "v6", "{attributes}");
    assert_eq!(value("Tag_THUMB_ISA_use:"), "Thumb-1", "{attributes}");
}

/// One real round: register, get the remote, punch through the relay, report; the server stores
/// the result with the emulated client's host as the client.
async fn one_round(client: &CrossClient) {
    let db = TestDb::sqlite().await;
    let server = start_server(&db.location, 0, &[]).await;
    let (_, key) = db.store.create_api_key("raspberry").await.unwrap();
    let relay = spawn_relay().await;
    let remote = spawn_nated_remote(&relay).await;
    seed_honeypot_sighting(&db.store, &remote).await;
    let outbox = tempfile::tempdir().unwrap();
    let port = server.grpc_addr().port().to_string();
    let seed = format!("cross-{}", client.target);
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        client
            .command()
            .args(["--server-host", "127.0.0.1", "--server-port", &port])
            .args(["--host-count", "1", "--seed", &seed, "--rounds", "1"])
            .args([
                "--assume-public",
                "--dial-private-relays",
                "--bootstrap-peers",
                "none",
            ])
            .args(["--listen", "127.0.0.1"])
            .args(["--telemetry-port", "0", "--outbox"])
            .arg(outbox.path())
            .env("API_KEY", key.expose())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{}: one round took over 3 minutes", client.target))
    .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{}: {:?}\n{log}",
        client.target,
        output.status
    );
    let host = punchr_keyfile::from_seed(seed.as_bytes(), 0)
        .public()
        .to_peer_id()
        .to_string();
    let row = sqlx::query(
        "SELECT r.outcome, p.peer_id FROM hole_punch_results r \
         JOIN peers c ON c.id = r.client_peer_id JOIN peers p ON p.id = r.remote_peer_id \
         WHERE c.peer_id = $1",
    )
    .bind(&host)
    .fetch_one(db.store.pool())
    .await
    .unwrap_or_else(|e| panic!("{}: no stored result ({e})\n{log}", client.target));
    let outcome: String = row.get(0);
    let remote_id: String = row.get(1);
    assert_eq!(remote_id, remote.peer_id.to_string(), "{}", client.target);
    assert_eq!(outcome, "SUCCESS", "{}: {log}", client.target);
    println!("{}: one round stored, outcome {outcome}", client.target);
}
