//! Faults around the real `punchr-server` binary, each with the client's durable outbox on the
//! other side, as a volunteer's client would deliver:
//!
//! - PostgreSQL restarted under load: the server reconnects by itself, and every result sent is
//!   stored exactly once;
//! - the server killed (SIGKILL) and restarted while clients punch: their outboxes deliver
//!   everything, nothing twice;
//! - a read-only database (SQLite file system, PostgreSQL database) stops the start with one
//!   clear line, and one that turns read-only while the server runs is refused clearly;
//! - a full disk under a running server: results are refused with a message saying so, stay in
//!   the outbox, nothing is half-written, and they are accepted once space is freed.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{http_get, track_request};
use clap::Parser;
use libp2p_identity::PeerId;
use punchr_client::config::ClientConfig;
use punchr_client::delivery::{LinkError, ServerAddress, ServerLink};
use punchr_client::outbox::Outbox;
use punchr_client::run::Client;
use punchr_proto::TrackHolePunchRequest;
use punchr_store::{ConnectionEventRecord, PeerInfo, Store};
use punchr_testutil::disk::{require_root, SmallDisk};
use punchr_testutil::libp2p_peers::{spawn_nated_remote, spawn_relay, RunningPeer};
use punchr_testutil::postgres::PrivatePostgres;
use punchr_testutil::{fixtures, free_port, on_both_engines, TestDb};
use sqlx::{Connection, Executor, Row};
use tempfile::TempDir;
use tokio::sync::watch;
use tonic::Code;

const BINARY: &str = env!("CARGO_BIN_EXE_punchr-server");

/// The deadline of every wait here; generous, the suite runs on 2 cores in debug builds.
const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

/// A `punchr-server` process with its output in a log file.
struct ServerProcess {
    child: tokio::process::Child,
    grpc_port: u16,
    telemetry: SocketAddr,
    log: PathBuf,
    _log_dir: TempDir,
}

impl ServerProcess {
    /// Starts the binary on `db` and `grpc_port` (rate limit off: the load tests send fast) with
    /// `extra` flags and waits until `/healthz` answers.
    async fn start(db: &str, grpc_port: u16, extra: &[&str]) -> ServerProcess {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("server.log");
        let telemetry_port = free_port();
        let output = File::create(&log).unwrap();
        let child = tokio::process::Command::new(BINARY)
            .args(["--db", db, "--host", "127.0.0.1", "--port"])
            .arg(grpc_port.to_string())
            .arg("--telemetry-port")
            .arg(telemetry_port.to_string())
            .args(["--dashboard-port", "0", "--rate-limit", "0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0")
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .kill_on_drop(true)
            .spawn()
            .expect("start punchr-server");
        let mut server = ServerProcess {
            child,
            grpc_port,
            telemetry: ([127, 0, 0, 1], telemetry_port).into(),
            log,
            _log_dir: log_dir,
        };
        let started = Instant::now();
        while !healthy(server.telemetry).await {
            assert!(
                server.running(),
                "the server exited at start:\n{}",
                server.log()
            );
            assert!(
                started.elapsed() < DEADLINE,
                "the server never became healthy:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("the server runs")
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("query the process").is_none()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /readyz`: status and body.
    async fn readiness(&self) -> (u16, String) {
        http_get(self.telemetry, "/readyz").await
    }

    /// SIGKILL: no chance to finish requests or close the database.
    async fn kill_hard(mut self) {
        self.child.start_kill().expect("SIGKILL the server");
        self.child.wait().await.expect("reap the server");
    }
}

async fn healthy(telemetry: SocketAddr) -> bool {
    if tokio::net::TcpStream::connect(telemetry).await.is_err() {
        return false;
    }
    http_get(telemetry, "/healthz").await.0 == 200
}

/// Runs the binary to its end with `args`; panics if it has not exited within [`DEADLINE`].
async fn run_to_exit(args: &[&str]) -> std::process::Output {
    let running = tokio::process::Command::new(BINARY)
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(DEADLINE, running)
        .await
        .expect("the server exits at once instead of serving")
        .expect("run punchr-server")
}

/// Asserts that the server refused to start with exit status 1 and exactly one line on stderr
/// that contains each of `words`, and no panic.
#[track_caller]
fn assert_refused_in_one_line(output: &std::process::Output, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for word in words {
        assert!(lines[0].contains(word), "{word:?} missing in: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// Clients' results
// ---------------------------------------------------------------------------------------------

/// One volunteer's client as the server sees it: an API key, a registered host, an outbox and
/// the link that delivers from it; remembers the report id of every result it produced.
struct Sender {
    host: PeerId,
    api_key: String,
    api_key_id: i64,
    link: ServerLink,
    outbox: Outbox,
    produced: Vec<Vec<u8>>,
    _dir: TempDir,
}

impl Sender {
    async fn new(store: &Store, name: &str, server_url: &str) -> Sender {
        let (key, secret) = store.create_api_key(name).await.unwrap();
        let link = ServerLink::new(
            &ServerAddress {
                url: server_url.to_owned(),
                ca_pem: None,
                skip_verify: false,
                timeouts: Default::default(),
            },
            secret.expose().to_owned(),
        )
        .unwrap();
        let host = fixtures::peer_id();
        link.register(host.to_bytes(), "punchr/faults-test".into(), vec![])
            .await
            .expect("register the host");
        let dir = tempfile::tempdir().unwrap();
        Sender {
            host,
            api_key: secret.expose().to_owned(),
            api_key_id: key.id,
            link,
            outbox: Outbox::open(dir.path()).unwrap(),
            produced: Vec::new(),
            _dir: dir,
        }
    }

    /// Produces a result: it goes into the outbox first, as the client does after a punch.
    fn produce(&mut self) {
        let report_id = rand::random::<[u8; 16]>().to_vec();
        let request = TrackHolePunchRequest {
            report_id: Some(report_id.clone()),
            ..track_request(&self.api_key, &self.host, &fixtures::peer_id())
        };
        self.outbox.push(&request).expect("write to the outbox");
        self.produced.push(report_id);
    }

    fn pending(&self) -> usize {
        self.outbox.pending().unwrap().len()
    }

    /// Delivers until the outbox is empty; panics with the last error after [`DEADLINE`].
    async fn drain(&self) {
        let started = Instant::now();
        loop {
            match self.link.deliver(&self.outbox).await {
                Ok(_) if self.pending() == 0 => return,
                Ok(_) => {}
                Err(error) => assert!(
                    started.elapsed() < DEADLINE,
                    "the outbox still holds {} results: {error}",
                    self.pending()
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stored(&self, store: &Store) -> Vec<Vec<u8>> {
        stored_report_ids(store, self.api_key_id).await
    }
}

/// Report ids stored under an API key, including duplicates if any.
async fn stored_report_ids(store: &Store, api_key_id: i64) -> Vec<Vec<u8>> {
    sqlx::query("SELECT report_id FROM hole_punch_results WHERE api_key_id = $1")
        .bind(api_key_id)
        .fetch_all(store.pool())
        .await
        .expect("read the stored results")
        .iter()
        .map(|row| row.try_get(0).expect("a report id"))
        .collect()
}

/// Asserts that the results stored for `sender` are exactly those it produced, each once.
async fn assert_stored_exactly_once(store: &Store, sender: &Sender) {
    let stored = sender.stored(store).await;
    let distinct: BTreeSet<&Vec<u8>> = stored.iter().collect();
    assert_eq!(distinct.len(), stored.len(), "a result was stored twice");
    let produced: BTreeSet<&Vec<u8>> = sender.produced.iter().collect();
    assert_eq!(produced.len(), sender.produced.len());
    assert_eq!(
        distinct, produced,
        "stored results differ from those produced"
    );
}

/// Every stored result is whole: its report facts row exists and the database is consistent.
async fn assert_nothing_half_written(store: &Store) {
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM hole_punch_results r \
         WHERE NOT EXISTS (SELECT 1 FROM report_facts f WHERE f.result_id = r.id) \
            OR NOT EXISTS (SELECT 1 FROM hole_punch_attempts a WHERE a.result_id = r.id)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(orphans, 0, "results without their parts");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL restarted under load
// ---------------------------------------------------------------------------------------------

/// How the senders' delivery rounds went while the database was away.
#[derive(Default)]
struct Refusals {
    codes: BTreeSet<String>,
    count: usize,
    /// The senders that had a delivery refused.
    senders: BTreeSet<usize>,
}

impl Refusals {
    fn note(&mut self, sender: usize, error: &LinkError) {
        self.count += 1;
        self.senders.insert(sender);
        self.codes.insert(match error {
            LinkError::Status(status) => format!("{:?}", status.code()),
            other => other.to_string(),
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_and_duplicates_no_result() {
    const SENDERS: usize = 20;
    let postgres = PrivatePostgres::start().await;
    let database = postgres.create_database().await;
    let db = database.url().to_owned();
    let store = Store::open(&db).await.unwrap();
    let mut server = ServerProcess::start(&db, free_port(), &[]).await;
    let pid = server.pid();
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        senders.push(Sender::new(&store, &format!("volunteer-{i}"), &server.url()).await);
    }

    // Every sender produces and delivers results without pause until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let refusals = Arc::new(Mutex::new(Refusals::default()));
    let running: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut sender)| {
            let (stop, refusals) = (stop.clone(), refusals.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    sender.produce();
                    if let Err(error) = sender.link.deliver(&sender.outbox).await {
                        refusals.lock().unwrap().note(i, &error);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                sender
            })
        })
        .collect();

    // The outage begins once every sender has delivered, lasts until every sender has had a
    // delivery refused (each then holds results in its outbox), and the senders stop once each
    // has delivered again after it.
    eventually("every sender delivers", || async {
        senders_with_results_after(&store, 0).await == SENDERS as i64
    })
    .await;
    let before_restart = count_results(&store).await;
    postgres.stop().await;
    eventually("every sender feels the outage", || async {
        refusals.lock().unwrap().senders.len() == SENDERS
    })
    .await;
    postgres.start_again().await;
    let last_before: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM hole_punch_results")
            .fetch_one(store.pool())
            .await
            .unwrap();
    eventually("every sender delivers again", || async {
        senders_with_results_after(&store, last_before).await == SENDERS as i64
    })
    .await;
    stop.store(true, Ordering::Relaxed);

    let mut senders = Vec::new();
    for task in running {
        senders.push(task.await.expect("a sender ran"));
    }
    for sender in &senders {
        tokio::time::timeout(DEADLINE, sender.drain())
            .await
            .expect("the outbox empties once the database is back");
    }

    // The server process lived through it and is ready again.
    assert!(server.running(), "the server exited:\n{}", server.log());
    assert_eq!(server.pid(), pid);
    let (status, body) = server.readiness().await;
    assert_eq!(status, 200, "{body}");
    // The outage was felt, as UNAVAILABLE (the client retries), not as an internal error.
    let (refused, codes) = {
        let refusals = refusals.lock().unwrap();
        (refusals.count, refusals.codes.clone())
    };
    assert!(
        refused > 0,
        "no delivery failed: was the database really down?"
    );
    assert_eq!(
        codes,
        BTreeSet::from(["Unavailable".to_owned()]),
        "server log:\n{}",
        server.log()
    );

    let mut produced = 0;
    for sender in &senders {
        assert_stored_exactly_once(&store, sender).await;
        produced += sender.produced.len();
    }
    assert_eq!(count_results(&store).await, produced as i64);
    assert!(
        produced as i64 > before_restart,
        "results were produced during the outage"
    );
    assert_nothing_half_written(&store).await;
    store.close().await;
}

/// Polls `done` until it holds; panics after [`DEADLINE`] saying what did not happen.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < DEADLINE,
            "not within {DEADLINE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many API keys have results stored with an id above `id`; -1 while the database cannot
/// answer (the test's pool may still hold connections that died with the server).
async fn senders_with_results_after(store: &Store, id: i64) -> i64 {
    sqlx::query_scalar("SELECT COUNT(DISTINCT api_key_id) FROM hole_punch_results WHERE id > $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap_or(-1)
}

async fn count_results(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM hole_punch_results")
        .fetch_one(store.pool())
        .await
        .expect("count results")
}

// ---------------------------------------------------------------------------------------------
// The server killed and restarted while clients punch
// ---------------------------------------------------------------------------------------------

on_both_engines!(a_server_killed_and_restarted_under_running_clients_loses_nothing);

/// Selection rules that hand the one remote (behind a loopback relay) out again and again, so
/// clients punch without pause.
const SELECTION: &[&str] = &[
    "--repeat-window",
    "0s",
    "--remote-limit",
    "100000",
    "--remote-limit-per-key",
    "100000",
    "--handouts-per-key",
    "100000",
    "--serve-private-relays",
];

/// Records what the honeypot would have seen of `remote`: a DCUtR peer with its relay address.
async fn seed_sighting(store: &Store, remote: &RunningPeer) {
    store
        .record_connection_event(&ConnectionEventRecord {
            local: PeerInfo::bare(fixtures::peer_id().to_string()),
            remote: PeerInfo {
                peer_id: remote.peer_id.to_string(),
                agent_version: Some("nated-remote/test".into()),
                protocols: vec!["/libp2p/dcutr".into(), "/ipfs/id/1.0.0".into()],
            },
            connection_address: "/ip4/198.18.9.9/tcp/4001".parse().unwrap(),
            advertised_addresses: vec![remote.address.clone()],
            opened_at: punchr_store::now_unix_nanos(),
        })
        .await
        .expect("seed the honeypot's sighting");
}

/// A real client (the library's run loop, as the binary runs it) doing `rounds` punches.
fn client(
    port: u16,
    key: &str,
    seed: &str,
    outbox: &Path,
    relay: &RunningPeer,
    rounds: u32,
) -> Client {
    let config = ClientConfig::parse_from([
        "punchr-client",
        "--api-key",
        key,
        "--server-host",
        "127.0.0.1",
        "--server-port",
        &port.to_string(),
        "--host-count",
        "1",
        "--seed",
        seed,
        "--assume-public",
        "--dial-private-relays",
        "--listen",
        "127.0.0.1",
        "--telemetry-port",
        "0",
        "--no-pings",
        "--no-peer-wait",
        "300ms",
        "--rounds",
        &rounds.to_string(),
        "--bootstrap-peers",
        &relay.address.to_string(),
        "--outbox",
        outbox.to_str().expect("utf-8 path"),
    ]);
    Client::start(config).expect("the client starts")
}

/// Listens on the dead server's `port` and hangs up on every connection until `count` have come;
/// fails if every client run ends meanwhile (then none was left to feel the outage).
async fn turn_away_until<T>(port: u16, count: usize, runs: &[tokio::task::JoinHandle<T>]) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("listen on the dead server's port");
    let started = Instant::now();
    let mut turned_away = 0;
    while turned_away < count {
        assert!(
            runs.iter().any(|run| !run.is_finished()),
            "the clients finished before the server died"
        );
        assert!(
            started.elapsed() < DEADLINE,
            "only {turned_away} connections to the dead server within {DEADLINE:?}"
        );
        if let Ok(Ok((stream, _))) =
            tokio::time::timeout(Duration::from_millis(100), listener.accept()).await
        {
            drop(stream);
            turned_away += 1;
        }
    }
}

async fn a_server_killed_and_restarted_under_running_clients_loses_nothing(db: TestDb) {
    const CLIENTS: usize = 2;
    const ROUNDS: u32 = 30;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("punchr=info")
        .with_test_writer()
        .try_init();
    let port = free_port();
    let server = ServerProcess::start(&db.location, port, SELECTION).await;
    let relay = spawn_relay().await;
    let remote = spawn_nated_remote(&relay).await;
    seed_sighting(&db.store, &remote).await;

    let mut keys = Vec::new();
    let mut runs = Vec::new();
    let mut outboxes = Vec::new();
    let (_stop, stopped) = watch::channel(false);
    for i in 0..CLIENTS {
        let (key, secret) = db
            .store
            .create_api_key(&format!("volunteer-{i}"))
            .await
            .unwrap();
        let outbox = tempfile::tempdir().unwrap();
        let client = client(
            port,
            secret.expose(),
            &format!("faults-{i}"),
            outbox.path(),
            &relay,
            ROUNDS,
        );
        runs.push(tokio::spawn(client.run(stopped.clone())));
        keys.push(key.id);
        outboxes.push(outbox);
    }

    // Once the clients have delivered something, the server dies without warning, stays away
    // for a while, and comes back on the same port and database.
    let started = Instant::now();
    while count_results(&db.store).await < 5 {
        assert!(started.elapsed() < DEADLINE, "the clients deliver nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill_hard().await;
    let at_kill = count_results(&db.store).await;
    // The outage lasts until the clients have come to the dead server's port and been turned
    // away (a listener there hangs up on each), so they felt it whatever the machine's pace.
    turn_away_until(port, CLIENTS, &runs).await;
    let mut server = ServerProcess::start(&db.location, port, SELECTION).await;

    let mut punches = Vec::new();
    for run in runs {
        let summary = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the clients did not finish their rounds; server log:\n{}",
                    server.log()
                )
            })
            .expect("a client ran")
            .expect("the client survives the server's death");
        assert_eq!(summary.punches, u64::from(ROUNDS));
        assert_eq!(summary.undelivered, 0, "results left in an outbox");
        punches.push(summary.punches);
    }
    for outbox in &outboxes {
        let left = Outbox::open(outbox.path()).unwrap().pending().unwrap();
        assert!(left.is_empty(), "{left:?}");
        assert!(
            !outbox.path().join("rejected").exists(),
            "a result was refused"
        );
    }
    // Each client's punches are stored, each once.
    for (key, punches) in keys.iter().zip(&punches) {
        let stored = stored_report_ids(&db.store, *key).await;
        let distinct: BTreeSet<&Vec<u8>> = stored.iter().collect();
        assert_eq!(distinct.len(), stored.len(), "a result was stored twice");
        assert_eq!(stored.len() as u64, *punches, "results lost");
    }
    assert!(
        count_results(&db.store).await > at_kill,
        "results were delivered after the restart"
    );
    assert_nothing_half_written(&db.store).await;
    assert!(server.running());
}

// ---------------------------------------------------------------------------------------------
// Read-only databases
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_sqlite_database_stops_the_start_with_one_clear_line() {
    require_root("mount a read-only file system");
    let disk = SmallDisk::mount("8m");
    let existing = disk.path().join("existing.sqlite");
    Store::open(existing.to_str().unwrap())
        .await
        .unwrap()
        .close()
        .await;
    disk.remount("ro");

    // A new database on a read-only file system, and an existing one.
    let missing = disk.path().join("new.sqlite");
    for db in [&missing, &existing] {
        let db = db.to_str().unwrap();
        let output = run_to_exit(&[
            "--db",
            db,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--telemetry-port",
            "0",
            "--dashboard-port",
            "0",
        ])
        .await;
        assert_refused_in_one_line(&output, &[db, "not writable", "Read-only file system"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_postgres_database_is_refused_clearly() {
    let db = TestDb::postgres().await;
    let name = database_name(&db.location);
    let mut admin = sqlx::PgConnection::connect(&punchr_testutil::postgres_admin_url())
        .await
        .unwrap();
    let read_only = |on: bool| {
        let setting = if on {
            "SET default_transaction_read_only = on"
        } else {
            "RESET default_transaction_read_only"
        };
        format!("ALTER DATABASE {name} {setting}")
    };
    // New sessions see the setting; ending the old ones makes the server's pool reconnect, as
    // after a failover to a standby.
    let end_sessions = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    );

    // At start: refused in one line.
    admin.execute(read_only(true).as_str()).await.unwrap();
    let output = run_to_exit(&[
        "--db",
        &db.location,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--telemetry-port",
        "0",
        "--dashboard-port",
        "0",
    ])
    .await;
    assert_refused_in_one_line(&output, &[&name, "not writable", "read-only"]);

    // While running: results are refused with a message saying why, and wait in the outbox.
    admin.execute(read_only(false).as_str()).await.unwrap();
    let mut server = ServerProcess::start(&db.location, free_port(), &[]).await;
    let mut sender = Sender::new(&db.store, "volunteer", &server.url()).await;
    sender.produce();
    sender.drain().await;
    admin.execute(read_only(true).as_str()).await.unwrap();
    admin.execute(end_sessions.as_str()).await.unwrap();
    let status = first_refusal(&mut sender).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("read-only"), "{status:?}");
    assert!(sender.pending() > 0);
    let (ready, body) = server.readiness().await;
    assert_eq!((ready, body.trim()), (503, "database is read-only"));
    assert!(
        server.log().contains("database is read-only"),
        "{}",
        server.log()
    );

    // Writable again: everything is delivered, once.
    admin.execute(read_only(false).as_str()).await.unwrap();
    admin.execute(end_sessions.as_str()).await.unwrap();
    sender.drain().await;
    assert_stored_exactly_once(&db.store, &sender).await;
    assert_eq!(server.readiness().await.0, 200);
    assert!(server.running());
}

/// The database name in a PostgreSQL URL.
fn database_name(url: &str) -> String {
    let path = url.rsplit('/').next().expect("a database name");
    path.split('?').next().unwrap().to_owned()
}

/// Produces and delivers results until the server refuses one; returns its status.
async fn first_refusal(sender: &mut Sender) -> tonic::Status {
    let started = Instant::now();
    loop {
        sender.produce();
        match sender.link.deliver(&sender.outbox).await {
            Err(LinkError::Status(status)) => return status,
            Err(other) => panic!("unexpected failure: {other}"),
            Ok(_) => assert!(
                started.elapsed() < DEADLINE,
                "the server never refused a result"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A full disk
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_results_clearly_until_space_is_freed() {
    require_root("mount a small file system and fill it");
    let disk = SmallDisk::mount("16m");
    let db = disk.path().join("punchr.sqlite");
    let db = db.to_str().unwrap();
    let store = Store::open(db).await.unwrap();
    let mut server = ServerProcess::start(db, free_port(), &[]).await;
    let mut sender = Sender::new(&store, "volunteer", &server.url()).await;
    for _ in 0..3 {
        sender.produce();
    }
    sender.drain().await;

    // The disk fills up: the next results are refused, saying why, and wait in the outbox.
    let filler = disk.fill();
    let status = first_refusal(&mut sender).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("storage is full"), "{status:?}");
    let (ready, body) = server.readiness().await;
    assert_eq!((ready, body.trim()), (503, "database storage is full"));
    assert!(
        server.log().contains("database storage is full"),
        "{}",
        server.log()
    );
    // More results while the disk stays full (topped up: a rolled back write frees the room it
    // had taken): they wait in the outbox.
    for _ in 0..5 {
        disk.fill();
        sender.produce();
        let _ = sender.link.deliver(&sender.outbox).await;
    }
    let waiting = sender.pending();
    assert!(waiting >= 1, "{waiting} results in the outbox");
    assert!(server.running(), "the server died:\n{}", server.log());
    let stored_while_full = sender.stored(&store).await.len();
    assert_eq!(stored_while_full + waiting, sender.produced.len());
    assert_nothing_half_written(&store).await;

    // Space is freed: the same results are accepted, each once.
    std::fs::remove_file(filler).unwrap();
    sender.drain().await;
    assert_stored_exactly_once(&store, &sender).await;
    assert_nothing_half_written(&store).await;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(server.readiness().await.0, 200);
    assert!(server.running());
    drop(server);
    store.close().await;
}
