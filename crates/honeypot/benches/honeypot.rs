//! Honeypot benchmark: how long a walk over a simulated DHT takes, and whether memory returns to
//! its baseline after thousands of inbound connections.
//!
//! `cargo bench -p punchr-honeypot --bench honeypot` prints two tables. Walks run in-process
//! against DHTs of 50 and 200 public servers on loopback (routing tables filled, the servers'
//! own bootstrap finished): the first walk (cold: every connection new) and the second (warm:
//! connections of the first still open). The churn part runs the real `punchr-honeypot` binary
//! as a child process, so its resident memory (`/proc/<pid>/status`) is the honeypot's alone. From
//! this process, NATed DCUtR-style peers connect 50 at a time, stay until the honeypot has
//! recorded them (SQLite) and hang up: 500 as a warm-up, then 5,000 measured against the RSS
//! after the warm-up; on PostgreSQL too when `PUNCHR_TEST_POSTGRES_URL` is set.
//! `PUNCHR_BENCH_CONNECTIONS` and `PUNCHR_BENCH_DHT_SIZES` (comma separated) change the sizes,
//! `PUNCHR_BENCH_HONEYPOT_BIN` runs another build of the binary (e.g. under heaptrack), and
//! `RUST_LOG` shows the in-process honeypot's logs. A run whose work failed prints no figures of
//! it: the bench panics (non-zero exit) when the honeypot process exits or /proc has no live
//! process to read, when a connection of the churn is not recorded, or when a walk reaches no
//! server.

#[path = "../tests/integration/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use punchr_testutil::free_port;
use punchr_testutil::sim::SimNode;

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
        assert!(
            !report.reached.is_empty(),
            "the walk bench failed: walk {walk} over {} servers reached none ({} failed)",
            servers.len(),
            report.failed
        );
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

/// Connections before the baseline is taken.
const WARM_UP: usize = 500;

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident memory (VmRSS) of a live process in KiB; an error once it has exited (a zombie has
/// no memory left, and a 0 would read as memory returned).
fn memory_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("the honeypot (pid {pid}) is gone: /proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    if field("State:").is_some_and(|state| state.starts_with('Z')) {
        return Err(format!(
            "the honeypot (pid {pid}) exited: /proc shows a zombie"
        ));
    }
    field("VmRSS:")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status:\n{status}"))
}

/// [`memory_kib`], ending the bench when the process is gone: no figure of a dead honeypot is
/// reported.
fn live_memory_kib(pid: u32) -> u64 {
    memory_kib(pid).unwrap_or_else(|e| panic!("the churn bench failed: {e}"))
}

async fn metric(telemetry: SocketAddr, name: &str) -> Option<f64> {
    let (_, body) = support::http_get(telemetry, "/metrics").await;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

struct ChurnResult {
    seconds: f64,
    cold: u64,
    baseline: u64,
    series: Vec<(usize, u64)>,
    peak: u64,
    settled: u64,
}

/// A running `punchr-honeypot` process and how to reach it.
struct Honeypot {
    child: Child,
    telemetry: SocketAddr,
    addr: libp2p::Multiaddr,
    _dir: tempfile::TempDir,
}

impl Honeypot {
    /// Starts the honeypot on `db` (a PostgreSQL URL), or on a fresh SQLite file.
    async fn spawn(db: Option<String>) -> Honeypot {
        let dir = tempfile::tempdir().unwrap();
        let db = db.unwrap_or_else(|| dir.path().join("churn.sqlite").display().to_string());
        let port = free_port();
        let telemetry: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let binary = std::env::var("PUNCHR_BENCH_HONEYPOT_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_punchr-honeypot").to_string());
        let mut child = Command::new(binary)
            .env("PUNCHR_HONEYPOT_KEY_FILE", dir.path().join("honeypot.key"))
            .env("PUNCHR_HONEYPOT_DB", db)
            .env("PUNCHR_HONEYPOT_LISTEN_IP", "127.0.0.1")
            .env("PUNCHR_HONEYPOT_PORT", port.to_string())
            .env(
                "PUNCHR_HONEYPOT_TELEMETRY_PORT",
                telemetry.port().to_string(),
            )
            .env("PUNCHR_HONEYPOT_BOOTSTRAP_PEERS", "none")
            // Every visitor comes from 127.0.0.1; the default limit of the field (16 peers per
            // address and hour) would leave all but the first unrecorded.
            .env("PUNCHR_HONEYPOT_MAX_PEERS_PER_ADDRESS", "1000000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        while tokio::net::TcpStream::connect(telemetry).await.is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the churn bench failed: the honeypot exited at start ({status})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The honeypot's peer ID is in its key file.
        let key = punchr_keyfile::load(&dir.path().join("honeypot.key"))
            .unwrap()
            .remove(0);
        let peer = key.public().to_peer_id();
        let addr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer}")
            .parse()
            .unwrap();
        Honeypot {
            child,
            telemetry,
            addr,
            _dir: dir,
        }
    }

    fn rss(&self) -> u64 {
        live_memory_kib(self.child.id())
    }

    /// Connection events written so far, whatever their fate.
    async fn handled(&self) -> usize {
        let mut total = 0.0;
        for name in [
            "honeypot_handled_connections_total{status=\"ok\"}",
            "honeypot_handled_connections_total{status=\"error\"}",
            "honeypot_record_dropped_total",
        ] {
            total += metric(self.telemetry, name).await.unwrap_or(0.0);
        }
        total as usize
    }

    /// Opens and closes `count` connections of NATed DCUtR peers, [`WAVE`] at a time: a wave
    /// connects, stays until the honeypot has handled every one of them, and hangs up. Fails
    /// the bench when a wave is not handled whole within a minute: memory after connections
    /// the honeypot never handled says nothing about churn.
    async fn churn(&self, count: usize, mut progress: impl FnMut(usize)) {
        let mut opened = 0;
        while opened < count {
            let wave = WAVE.min(count - opened);
            let before = self.handled().await;
            let nodes = futures::future::join_all((0..wave).map(|_| async {
                let node = SimNode::start(support::visitor_spec(true)).await.unwrap();
                let connected =
                    tokio::time::timeout(Duration::from_secs(30), node.connect(self.addr.clone()))
                        .await;
                (node, matches!(connected, Ok(Ok(()))))
            }))
            .await;
            let connected = nodes.iter().filter(|(_, ok)| *ok).count();
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut handled = before;
            while handled < before + connected && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                handled = self.handled().await;
            }
            assert!(
                connected == wave && handled >= before + wave,
                "the churn bench failed: of a wave of {wave} after {opened} connections, {connected} \
                 connected and {} were handled within a minute",
                handled - before
            );
            futures::future::join_all(nodes.into_iter().map(|(node, _)| node.shutdown())).await;
            opened += wave;
            progress(opened);
        }
    }

    /// Waits until every connection is gone from the honeypot's state, then 10 s more.
    async fn settle(&self) {
        while metric(self.telemetry, "honeypot_tracked_connections").await != Some(0.0) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Honeypot {
    /// A bench that fails midway leaves no honeypot running (after `stop` it has exited).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn churn_bench(connections: usize, db: Option<String>) -> ChurnResult {
    let honeypot = Honeypot::spawn(db).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cold = honeypot.rss();
    // Warm-up: the first connections size the allocator's pools, the runtime's slabs and the
    // database's caches once; what follows shows whether churn itself leaves memory behind.
    honeypot.churn(WARM_UP, |_| {}).await;
    honeypot.settle().await;
    let baseline = honeypot.rss();

    let peak = Arc::new(AtomicU64::new(baseline));
    let pid = honeypot.child.id();
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                match memory_kib(pid) {
                    Ok(kib) => peak.fetch_max(kib, Ordering::Relaxed),
                    // Ends the sampler; the next RSS the bench reads fails it, saying why.
                    Err(e) => return Err::<(), String>(e),
                };
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let mut series = Vec::new();
    let step = (connections / 5).div_ceil(WAVE).max(1) * WAVE;
    honeypot
        .churn(connections, |opened| {
            if opened % step == 0 {
                series.push((opened, live_memory_kib(pid)));
            }
        })
        .await;
    let seconds = started.elapsed().as_secs_f64();
    honeypot.settle().await;
    let settled = honeypot.rss();
    sampler.abort();
    if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_millis(1), sampler).await {
        panic!("the churn bench failed: {e}");
    }
    honeypot.stop();
    ChurnResult {
        seconds,
        cold,
        baseline,
        series,
        peak: peak.load(Ordering::Relaxed).max(settled),
        settled,
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
        let mut engines = vec![("SQLite", churn_bench(connections, None).await)];
        if std::env::var_os(punchr_testutil::POSTGRES_URL_VAR).is_some() {
            let database = punchr_testutil::PostgresDatabase::create().await;
            let url = database.url().to_owned();
            engines.push(("PostgreSQL", churn_bench(connections, Some(url)).await));
        }
        println!(
            "\nInbound churn ({connections} connections opened and closed, {WAVE} at a time, after a warm-up of {WARM_UP}; punchr-honeypot process)"
        );
        let names: Vec<&str> = engines.iter().map(|(name, _)| *name).collect();
        println!("| measure | {} |", names.join(" | "));
        println!("|---|{}", "---:|".repeat(engines.len()));
        let row = |label: String, cell: &dyn Fn(&ChurnResult) -> String| {
            let cells: Vec<String> = engines.iter().map(|(_, r)| cell(r)).collect();
            println!("| {label} | {} |", cells.join(" | "));
        };
        let relative = |r: &ChurnResult, kib: u64| {
            format!("{:.1} ({:+.1} %)", mib(kib), (kib as f64 / r.baseline.max(1) as f64 - 1.0) * 100.0)
        };
        row("churn time (s)".into(), &|r| format!("{:.1}", r.seconds));
        row("RSS at start, idle (MiB)".into(), &|r| format!("{:.1}", mib(r.cold)));
        row("baseline: RSS after the warm-up (MiB)".into(), &|r| format!("{:.1}", mib(r.baseline)));
        for i in 0..engines[0].1.series.len() {
            let opened = engines[0].1.series[i].0;
            row(format!("RSS after {opened} connections (MiB)"), &|r| relative(r, r.series[i].1));
        }
        row("peak RSS (MiB)".into(), &|r| relative(r, r.peak));
        row("settled RSS, 10 s after the last close (MiB)".into(), &|r| relative(r, r.settled));
    });
}
