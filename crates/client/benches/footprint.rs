//! Footprint of the client on a small machine: peak RSS and CPU of `punchr-client` with 10 hosts
//! doing a fixed number of hole punches, its idle CPU while the server has no peer for it, and
//! the size of the release binary. Run with `cargo bench -p punchr-client --bench footprint`
//! for the bench profile's binary, or `scripts/bench-client` for the `small` profile build that
//! users get (`PUNCHR_CLIENT_BIN` names the binary to measure). Targets (the original Rust client
//! with one host: ~20 MB RAM, 0.2 % CPU, ~12 MB on disk): with 10 hosts, peak RSS ≤ 20 MB, idle
//! CPU ≤ 0.2 %, binary ≤ 12 MB. `PUNCHR_BENCH_ROUNDS` (default 20) and `PUNCHR_BENCH_IDLE_SECS`
//! (default 60) change the run. A run whose work failed reports no figures: the bench exits
//! non-zero when the client exits early, when /proc has no live process to read, or when fewer
//! than the rounds' punches succeed within 10 minutes (the outcomes are printed).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

#[path = "../tests/integration/common/mod.rs"]
mod common;

use common::{seed_honeypot_sighting, start_server};
use punchr_testutil::libp2p_peers::{spawn_nated_remote, spawn_relay};
use punchr_testutil::TestDb;
use sqlx::Row;

/// How long the rounds' punches may take before the run counts as failed.
const PUNCH_DEADLINE: Duration = Duration::from_secs(600);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (peak RSS in KiB, CPU seconds) of a live process, from /proc; an error once it has exited
/// (a zombie has no memory left to report, and defaults would read as a target met).
fn usage(pid: u32) -> anyhow::Result<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status: the client is gone"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    if field("State:").is_some_and(|state| state.starts_with('Z')) {
        bail!("the client (pid {pid}) exited: /proc shows a zombie");
    }
    let peak_kib = field("VmHWM:")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no VmHWM in /proc/{pid}/status:\n{status}"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat: the client is gone"))?;
    // Fields after the command name (which may contain spaces) start after the last ')';
    // utime and stime are the 12th and 13th of them.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no field {i} in /proc/{pid}/stat: {stat}"))
    };
    Ok((peak_kib, (tick(11)? + tick(12)?) as f64 / 100.0))
}

/// Fails when the client has exited: nothing it would report after that is its footprint.
fn still_running(child: &mut tokio::process::Child) -> anyhow::Result<()> {
    match child.try_wait()? {
        Some(status) => bail!("the client exited ({status}) before the bench was done"),
        None => Ok(()),
    }
}

/// Stored results by outcome.
async fn stored(db: &TestDb) -> BTreeMap<String, i64> {
    sqlx::query("SELECT outcome, COUNT(*) FROM hole_punch_results GROUP BY outcome")
        .fetch_all(db.store.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| (row.try_get(0).unwrap(), row.try_get(1).unwrap()))
        .collect()
}

fn successes(outcomes: &BTreeMap<String, i64>) -> i64 {
    outcomes.get("SUCCESS").copied().unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds = env_number("PUNCHR_BENCH_ROUNDS", 20);
    let idle_secs = env_number("PUNCHR_BENCH_IDLE_SECS", 60);
    let db = TestDb::sqlite().await;
    let server = start_server(
        &db.location,
        0,
        &["--repeat-window", "0ms", "--remote-limit", "1000"],
    )
    .await;
    let (_, key) = db.store.create_api_key("bench").await.unwrap();
    let relay = spawn_relay().await;
    let remote = spawn_nated_remote(&relay).await;
    seed_honeypot_sighting(&db.store, &remote).await;

    // scripts/bench-client points this at the `small` profile build users get.
    let binary = std::env::var("PUNCHR_CLIENT_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_punchr-client").to_owned());
    let binary = binary.as_str();
    let size = std::fs::metadata(binary)
        .with_context(|| format!("the client binary {binary}"))?
        .len();
    let outbox = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(binary)
        .args([
            "--server-host",
            "127.0.0.1",
            "--server-port",
            &server.grpc_addr().port().to_string(),
        ])
        .args([
            "--host-count",
            "10",
            "--seed",
            "footprint",
            "--assume-public",
            "--dial-private-relays",
            "--listen",
            "127.0.0.1",
        ])
        .args(["--telemetry-port", "0", "--no-peer-wait", "5s", "--outbox"])
        .arg(outbox.path())
        .arg("--bootstrap-peers")
        .arg(relay.address.to_string())
        .env("API_KEY", key.expose())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();

    // The measured work: `rounds` hole punches that succeeded (other outcomes are not the
    // footprint of punching, and a broken punch path must not pass for a frugal one).
    let started = Instant::now();
    let mut outcomes = stored(&db).await;
    while successes(&outcomes) < rounds as i64 && started.elapsed() < PUNCH_DEADLINE {
        still_running(&mut child)?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        outcomes = stored(&db).await;
    }
    let punch_wall = started.elapsed();
    let (peak_after_punches, cpu_after_punches) = usage(pid)?;
    if successes(&outcomes) < rounds as i64 {
        bail!(
            "only {} of {rounds} hole punches succeeded within {PUNCH_DEADLINE:?}; results by \
             outcome: {outcomes:?}",
            successes(&outcomes)
        );
    }

    // Idle: nothing to punch any more; the client only asks the server now and then.
    sqlx::query("DELETE FROM connection_events")
        .execute(db.store.pool())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, cpu_idle_start) = usage(pid)?;
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    still_running(&mut child)?;
    let (peak, cpu_idle_end) = usage(pid)?;
    let idle_share = (cpu_idle_end - cpu_idle_start) / idle_secs as f64 * 100.0;
    child.kill().await.ok();

    println!("punchr-client footprint (10 hosts, loopback): {binary}");
    println!("{:<40} {:>14} {:>10}", "measure", "value", "target");
    println!(
        "{:<40} {:>14} {:>10}",
        "hole punches succeeded",
        successes(&outcomes),
        rounds
    );
    let mix: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
    println!("{:<40} {}", "results by outcome", mix.join(", "));
    println!(
        "{:<40} {:>13.1}s {:>10}",
        "wall time of the punches",
        punch_wall.as_secs_f64(),
        ""
    );
    println!(
        "{:<40} {:>11.1} MB {:>10}",
        "peak RSS after the punches",
        peak_after_punches as f64 / 1024.0,
        ""
    );
    println!(
        "{:<40} {:>11.1} MB {:>10}",
        "peak RSS overall",
        peak as f64 / 1024.0,
        "<= 20 MB"
    );
    println!(
        "{:<40} {:>13.2}s {:>10}",
        "CPU seconds for the punches", cpu_after_punches, ""
    );
    println!(
        "{:<40} {:>11.0} s/h {:>10}",
        "CPU seconds per hour while punching",
        cpu_after_punches / punch_wall.as_secs_f64() * 3600.0,
        ""
    );
    println!(
        "{:<40} {:>12.3} % {:>10}",
        "idle CPU", idle_share, "<= 0.2 %"
    );
    println!(
        "{:<40} {:>11.1} MB {:>10}",
        "release binary size (stripped)",
        size as f64 / 1_048_576.0,
        "<= 12 MB"
    );
    server.shutdown().await.unwrap();
    Ok(())
}
