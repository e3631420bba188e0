//! Honeypot benchmark: how long a walk over a simulated DHT takes, and whether memory returns to
//! its baseline after thousands of inbound connections.
//!
//! `cargo bench -p punchr-honeypot --bench honeypot` prints two tables. Walks run in-process
//! against DHTs of 50 and 200 public servers on loopback (routing tables filled, the servers'
//! own bootstrap finished), first walk (cold: every connection new) and second walk (warm). The
//! churn part runs the real `punchr-honeypot` binary as a child process, so its resident memory
//! (`/proc/<pid>/status`) is the honeypot's alone, and opens and closes 5,000 inbound connections
//! of NATed DCUtR-style peers (each identified and recorded in SQLite) from this process.
//! Set `PUNCHR_BENCH_CONNECTIONS` to change the number of connections.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use punchr_honeypot::sim::SimNode;

struct WalkRow {
    nodes: usize,
    walk: u64,
    reached: usize,
    failed: usize,
    seconds: f64,
}

async fn walk_bench(nodes: u16) -> Vec<WalkRow> {
    let servers = support::dht(nodes, 0, 0).await;
    // Let every server finish the bootstrap kad starts when peers are added ...
    for server in &servers {
        while server.bootstraps().await.unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // ... and close the connections of that bootstrap (10 s idle timeout): 200 nodes in one
    // process would otherwise hold about as many sockets as the file descriptor limit allows.
    while open_files() > 1000 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("walk.sqlite");
    let mut config = support::config(
        dir.path(),
        db.to_str().unwrap(),
        &[servers[0].addr().unwrap().clone()],
    );
    config.walk_pause = Duration::from_secs(1);
    // The honeypot shares this process with the whole simulated DHT: its memory limit would
    // count the DHT's memory.
    config.max_memory_mb = 0;
    let honeypot = punchr_honeypot::start(&config).await.unwrap();
    let mut reports = honeypot.walk_reports();
    let mut rows = Vec::new();
    for walk in 1..=2u64 {
        let report = reports
            .wait_for(|r| r.as_ref().is_some_and(|r| r.number == walk))
            .await
            .unwrap()
            .clone()
            .unwrap();
        rows.push(WalkRow {
            nodes: servers.len(),
            walk,
            reached: report.reached.len(),
            failed: report.failed,
            seconds: report.duration.as_secs_f64(),
        });
    }
    honeypot.shutdown().await.unwrap();
    support::shutdown_all(servers).await;
    rows
}

/// Peers connected at the same time during churn.
const WAVE: usize = 50;

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// (VmRSS, VmHWM) of a process in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn metric(telemetry: SocketAddr, name: &str) -> Option<f64> {
    let (_, body) = support::http_get(telemetry, "/metrics").await;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

struct ChurnResult {
    connections: usize,
    failed: usize,
    seconds: f64,
    baseline: u64,
    peak: u64,
    settled: u64,
    recorded: f64,
}

async fn churn_bench(connections: usize) -> ChurnResult {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let telemetry: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_punchr-honeypot"))
        .env("PUNCHR_HONEYPOT_KEY_FILE", dir.path().join("honeypot.key"))
        .env("PUNCHR_HONEYPOT_DB", dir.path().join("churn.sqlite"))
        .env("PUNCHR_HONEYPOT_LISTEN_IP", "127.0.0.1")
        .env("PUNCHR_HONEYPOT_PORT", port.to_string())
        .env(
            "PUNCHR_HONEYPOT_TELEMETRY_PORT",
            telemetry.port().to_string(),
        )
        .env("PUNCHR_HONEYPOT_BOOTSTRAP_PEERS", "none")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    while tokio::net::TcpStream::connect(telemetry).await.is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The honeypot's peer ID is in its key file.
    let key = punchr_keyfile::load(&dir.path().join("honeypot.key"))
        .unwrap()
        .remove(0);
    let addr: libp2p::Multiaddr = format!(
        "/ip4/127.0.0.1/tcp/{port}/p2p/{}",
        key.public().to_peer_id()
    )
    .parse()
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let baseline = memory_kib(pid).0;

    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(memory_kib(pid).0, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let mut failed = 0;
    let mut opened = 0;
    let recorded_metric = "honeypot_inbound_connections_total{outcome=\"connected\"}";
    while opened < connections {
        // A wave of peers connects, stays until the honeypot has recorded every one of them,
        // and hangs up.
        let wave = WAVE.min(connections - opened);
        let before = metric(telemetry, recorded_metric).await.unwrap_or(0.0) as usize;
        let nodes = futures::future::join_all((0..wave).map(|_| {
            let addr = addr.clone();
            async move {
                let node = SimNode::start(support::visitor_spec(true)).await.unwrap();
                let connected =
                    tokio::time::timeout(Duration::from_secs(30), node.connect(addr)).await;
                (node, matches!(connected, Ok(Ok(()))))
            }
        }))
        .await;
        let connected = nodes.iter().filter(|(_, ok)| *ok).count();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut recorded = before;
        while recorded < before + connected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            recorded = metric(telemetry, recorded_metric).await.unwrap_or(0.0) as usize;
        }
        failed += wave - (recorded - before).min(wave);
        futures::future::join_all(nodes.into_iter().map(|(node, _)| node.shutdown())).await;
        opened += wave;
        if opened % 2500 == 0 {
            eprintln!(
                "RSS after {opened}: {:.1} MiB",
                memory_kib(pid).0 as f64 / 1024.0
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    while metric(telemetry, "honeypot_tracked_connections").await != Some(0.0) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    sampler.abort();
    let (settled, high_water) = memory_kib(pid);
    let recorded = metric(
        telemetry,
        "honeypot_handled_connections_total{status=\"ok\"}",
    )
    .await
    .unwrap_or(0.0);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    ChurnResult {
        connections,
        failed,
        seconds,
        baseline,
        peak: high_water.max(peak.load(Ordering::Relaxed)),
        settled,
        recorded,
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut walks = Vec::new();
        let sizes: Vec<u16> = std::env::var("PUNCHR_BENCH_DHT_SIZES")
            .ok()
            .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![50, 200]);
        for nodes in sizes {
            walks.extend(walk_bench(nodes).await);
        }
        println!("\nDHT walk (loopback, 10 crawlers, 5 s timeouts)");
        println!("| DHT servers | walk | reached | failed | walk time (s) |");
        println!("|---:|---|---:|---:|---:|");
        for row in &walks {
            let kind = if row.walk == 1 { "1st (cold)" } else { "2nd (warm)" };
            println!("| {} | {kind} | {} | {} | {:.2} |", row.nodes, row.reached, row.failed, row.seconds);
        }

        let connections = std::env::var("PUNCHR_BENCH_CONNECTIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5_000);
        let churn = churn_bench(connections).await;
        println!("\nInbound churn ({} connections opened and closed, {WAVE} at a time; punchr-honeypot process)", churn.connections);
        println!("| measure | value |");
        println!("|---|---:|");
        println!("| connections not recorded | {} |", churn.failed);
        println!("| connection events recorded | {} |", churn.recorded);
        println!("| churn time (s) | {:.1} |", churn.seconds);
        println!("| baseline RSS (MiB) | {:.1} |", mib(churn.baseline));
        println!("| peak RSS (MiB) | {:.1} |", mib(churn.peak));
        println!("| settled RSS, 10 s after the last close (MiB) | {:.1} |", mib(churn.settled));
        println!(
            "| settled vs baseline | {:+.1} % |",
            (churn.settled as f64 / churn.baseline.max(1) as f64 - 1.0) * 100.0
        );
    });
}
