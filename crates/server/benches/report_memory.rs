//! How much memory a report takes when one key has filled the attempts with large distinct error
//! texts (issue 15, point 6: 10 attempts × 4 KiB per result, 80 MB of them, took a report to
//! 193 MB RSS when every distinct text was loaded).
//!
//! Everything goes through the real binary, as an operator and a stranger would use it: a fresh
//! SQLite file, `punchr-server keys add`, the server on loopback, then `PUNCHR_BENCH_RESULTS`
//! (default 2,000) FAILED results over gRPC, each with 10 attempts whose error texts are 4 KiB
//! and distinct from their first bytes on. Then the dashboard's `/api/report` (the server's
//! peak RSS before and after, `VmHWM`), and `punchr-server report` as its own process (its peak
//! RSS from `wait4`). A second run stores the same results with one short error text, so the
//! table shows what the texts add to a report's usual footprint. Each report must cover every
//! result sent, or the bench fails instead of printing figures.
//!
//! Run: `cargo bench -p punchr-server --bench report_memory` (release), or with
//! `--profile dev` to compare debug builds. `PUNCHR_BENCH_SERVER_BIN=<path>` measures another
//! build of `punchr-server`, such as one built from the commit before the fix; the bench speaks
//! only the wire protocol and the command line to it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use punchr_loadgen::ServerProcess;
use punchr_proto as pb;
use punchr_testutil::fixtures;
use punchr_testutil::http::http_get;
use tokio::task::JoinSet;

const ATTEMPTS: usize = 10;
const ERROR_BYTES: usize = 4096;
const SENDERS: usize = 4;
const MIB: f64 = 1024.0 * 1024.0;
const MS: u64 = 1_000_000;

/// What the attempts' error texts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Texts {
    /// 4 KiB each, no two alike.
    Distinct,
    /// One short text for every attempt.
    Same,
}

impl Texts {
    fn label(self) -> &'static str {
        match self {
            Texts::Distinct => "distinct 4 KiB",
            Texts::Same => "one short text",
        }
    }

    fn error(self, result: usize, attempt: usize) -> String {
        match self {
            Texts::Distinct => {
                let head = format!("{result}-{attempt} ");
                format!("{head}{}", "x".repeat(ERROR_BYTES - head.len()))
            }
            Texts::Same => "all dials failed".to_owned(),
        }
    }
}

/// The figures of one run.
struct Measured {
    texts: Texts,
    error_bytes: u64,
    server_before: u64,
    server_peak: u64,
    command_peak: u64,
}

fn now() -> u64 {
    u64::try_from(punchr_store::now_unix_nanos()).expect("after 1970")
}

/// A FAILED result whose every attempt failed with its own error text.
fn failed_result(
    api_key: &str,
    host: &PeerId,
    seq: usize,
    texts: Texts,
) -> pb::TrackHolePunchRequest {
    let remote = fixtures::peer_id();
    let start = now() - 60_000 * MS;
    let connected = start + 150 * MS;
    let direct: Multiaddr = "/ip4/198.51.100.9/tcp/4001".parse().expect("an address");
    let attempts = (0..ATTEMPTS)
        .map(|n| {
            let opened = connected + 100 * MS + n as u64 * 1_000 * MS;
            pb::HolePunchAttempt {
                opened_at: opened,
                started_at: Some(opened + 60 * MS),
                ended_at: opened + 700 * MS,
                start_rtt: Some(0.0625),
                elapsed_time: 0.640625,
                outcome: pb::HolePunchAttemptOutcome::Failed.into(),
                error: Some(texts.error(seq, n)),
                direct_dial_error: None,
                multi_addresses: vec![direct.to_vec()],
                handshake_role: None,
            }
        })
        .collect();
    pb::TrackHolePunchRequest {
        client_id: host.to_bytes(),
        remote_id: remote.to_bytes(),
        remote_multi_addresses: vec![fixtures::relay_address(1, &remote).to_vec()],
        connect_started_at: start,
        connect_ended_at: connected,
        hole_punch_attempts: attempts,
        open_multi_addresses: vec![fixtures::relay_address(1, &remote).to_vec()],
        has_direct_conns: false,
        error: Some("none of the attempts succeeded".to_owned()),
        outcome: pb::HolePunchOutcome::Failed.into(),
        ended_at: connected + 100 * MS + ATTEMPTS as u64 * 1_000 * MS,
        api_key: api_key.to_owned(),
        protocols: vec![4, 6],
        ..Default::default()
    }
}

/// `punchr-server --db <db> keys add --name <name>`; returns the key it prints last.
fn create_key(binary: &Path, db: &str, name: &str) -> String {
    let output = std::process::Command::new(binary)
        .args(["--db", db, "keys", "add", "--name", name])
        .output()
        .expect("run keys add");
    assert!(output.status.success(), "keys add failed: {output:?}");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .rfind(|line| !line.trim().is_empty())
        .expect("the key")
        .trim()
        .to_owned()
}

/// Stores `results` results over gRPC, a few at a time.
async fn send_results(server: &ServerProcess, api_key: &str, results: usize, texts: Texts) {
    let endpoint = format!("http://{}", server.grpc_addr());
    let mut client = pb::punchr_service_client::PunchrServiceClient::connect(endpoint)
        .await
        .expect("connect to gRPC");
    let host = fixtures::peer_id();
    client
        .register(pb::RegisterRequest {
            client_id: host.to_bytes(),
            agent_version: "punchr-rs/client/bench".into(),
            protocols: vec!["/libp2p/dcutr".into()],
            api_key: api_key.to_owned(),
        })
        .await
        .expect("register the host");
    let mut senders = JoinSet::new();
    for sender in 0..SENDERS {
        let mut client = client.clone();
        let api_key = api_key.to_owned();
        senders.spawn(async move {
            for seq in (sender..results).step_by(SENDERS) {
                client
                    .track_hole_punch(failed_result(&api_key, &host, seq, texts))
                    .await
                    .unwrap_or_else(|status| panic!("result {seq} refused: {status}"));
            }
        });
    }
    while let Some(done) = senders.join_next().await {
        done.expect("a sender");
    }
}

/// A kB figure of `/proc/<pid>/status`, in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

/// The FAILED count of a report's JSON.
fn failed_in(json: &str) -> u64 {
    let report: serde_json::Value = serde_json::from_str(json).expect("a JSON report");
    report["outcomes"]["FAILED"]
        .as_u64()
        .expect("outcomes.FAILED")
}

/// Runs `punchr-server report --format json` to its end; returns its output and peak RSS
/// (`ru_maxrss` of this one child, read by `wait4`).
// wait4 reaps the child: `Child::wait` would reap it without its resource usage.
#[allow(clippy::zombie_processes)]
fn report_command(binary: &Path, db: &str, dir: &Path) -> (String, u64) {
    let output_path = dir.join("report.json");
    let output = std::fs::File::create(&output_path).expect("create the output file");
    let child = std::process::Command::new(binary)
        .args(["--db", db, "report", "--format", "json"])
        .stdin(Stdio::null())
        .stdout(output)
        .spawn()
        .expect("run the report command");
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for the kernel to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our unwaited child; status and usage point to live locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the report command failed (wait status {status})"
    );
    let peak = u64::try_from(usage.ru_maxrss).expect("a size") * 1024;
    (
        std::fs::read_to_string(output_path).expect("the report"),
        peak,
    )
}

async fn measure(binary: &Path, results: usize, texts: Texts) -> Measured {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let db = dir.path().join("punchr.sqlite").display().to_string();
    let api_key = create_key(binary, &db, "bloater");
    let mut server = ServerProcess::start(
        binary,
        &db,
        &["--rate-limit".to_owned(), "0".to_owned()],
        &dir.path().join("server.log"),
    )
    .await
    .expect("start punchr-server");
    let started = Instant::now();
    send_results(&server, &api_key, results, texts).await;
    eprintln!(
        "{}: {results} results stored in {:.1} s",
        texts.label(),
        started.elapsed().as_secs_f64()
    );
    server.live_rss_bytes().expect("the server runs");
    let server_before = proc_status_bytes(server.pid(), "VmHWM:");
    let (status, body) = http_get(server.dashboard_addr(), "/api/report").await;
    assert_eq!(status, 200, "/api/report: {body}");
    assert_eq!(failed_in(&body), results as u64, "the dashboard's report");
    server
        .live_rss_bytes()
        .expect("the server survived the report");
    let server_peak = proc_status_bytes(server.pid(), "VmHWM:");
    server.stop().await.expect("stop the server");
    let (json, command_peak) = report_command(binary, &db, dir.path());
    assert_eq!(
        failed_in(&json),
        results as u64,
        "the report command's report"
    );
    let error_bytes = (0..results)
        .flat_map(|seq| (0..ATTEMPTS).map(move |n| texts.error(seq, n).len() as u64))
        .sum();
    Measured {
        texts,
        error_bytes,
        server_before,
        server_peak,
        command_peak,
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / MIB)
}

#[tokio::main]
async fn main() {
    let results: usize = std::env::var("PUNCHR_BENCH_RESULTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let binary = std::env::var_os("PUNCHR_BENCH_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_punchr-server")));
    eprintln!("measuring {}", binary.display());
    let mut rows = Vec::new();
    for texts in [Texts::Distinct, Texts::Same] {
        rows.push(measure(&binary, results, texts).await);
    }
    println!(
        "\nReport memory, {results} FAILED results × {ATTEMPTS} attempts, {}\n",
        binary.display()
    );
    println!(
        "{:<15} {:>12} | {:>22} {:>22}",
        "attempt errors", "error texts", "server before/peak", "report command peak"
    );
    for row in rows {
        println!(
            "{:<15} {:>12} | {:>22} {:>22}",
            row.texts.label(),
            mib(row.error_bytes),
            format!("{} / {}", mib(row.server_before), mib(row.server_peak)),
            mib(row.command_peak)
        );
    }
}
