//! The `punchr-honeypot` binary restarted, gracefully (SIGTERM) and not (SIGKILL), with the same
//! flags in a small DHT on loopback: it comes back with the same peer ID on the same port (the
//! DHT's routing tables still point at it), walks the DHT again, records NATed peers that find
//! it after the restart, and leaves what it recorded before intact.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{dht, http_get, shutdown_all, within};
use libp2p::{Multiaddr, PeerId};
use punchr_testutil::sim::{NodeSpec, SimNode};
use punchr_testutil::{free_port, on_both_engines, TestDb};
use sqlx::Row;

on_both_engines!(a_restarted_honeypot_keeps_identity_and_port_and_resumes);

/// How the honeypot is started, every time the same.
struct Settings {
    key_file: PathBuf,
    db: String,
    port: u16,
    telemetry: SocketAddr,
    bootstrap: Multiaddr,
}

/// A running `punchr-honeypot` process with its output in a log file.
struct Honeypot {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Honeypot {
    /// Starts the binary with `settings` and waits for its first finished walk.
    async fn start(settings: &Settings, log: &Path) -> Honeypot {
        let output = std::fs::File::create(log).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_punchr-honeypot"))
            .env("PUNCHR_HONEYPOT_KEY_FILE", &settings.key_file)
            .env("PUNCHR_HONEYPOT_DB", &settings.db)
            .env("PUNCHR_HONEYPOT_LISTEN_IP", "127.0.0.1")
            .env("PUNCHR_HONEYPOT_PORT", settings.port.to_string())
            .env(
                "PUNCHR_HONEYPOT_TELEMETRY_PORT",
                settings.telemetry.port().to_string(),
            )
            .env(
                "PUNCHR_HONEYPOT_BOOTSTRAP_PEERS",
                settings.bootstrap.to_string(),
            )
            .env("PUNCHR_HONEYPOT_CRAWL_PRIVATE_ADDRS", "true")
            // The simulated relays announce 198.18.x.y, which is not public.
            .env("PUNCHR_HONEYPOT_RECORD_PRIVATE_RELAYS", "true")
            .env("PUNCHR_HONEYPOT_WALK_PAUSE", "1s")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .kill_on_drop(true)
            .spawn()
            .expect("start punchr-honeypot");
        let mut honeypot = Honeypot {
            child,
            log: log.to_owned(),
        };
        within("a walk of the restarted honeypot", async {
            while completed_walks(settings.telemetry).await < 1 {
                assert!(
                    honeypot.child.try_wait().unwrap().is_none(),
                    "the honeypot exited:\n{}",
                    honeypot.log()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        honeypot
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it with `signal` (`TERM` or `KILL`); returns whether it exited successfully.
    async fn stop(mut self, signal: &str) -> bool {
        let pid = self.child.id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        within("the honeypot to exit", self.child.wait())
            .await
            .unwrap()
            .success()
    }
}

/// `honeypot_completed_walks_total` of this process, 0 while telemetry is not up.
async fn completed_walks(telemetry: SocketAddr) -> u64 {
    if tokio::net::TcpStream::connect(telemetry).await.is_err() {
        return 0;
    }
    let (_, metrics) = http_get(telemetry, "/metrics").await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("honeypot_completed_walks_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

/// A NATed DCUtR peer with a reservation on `relay` that knows the DHT servers `dht`.
async fn nated_peer(relay: &Multiaddr, dht: &[Multiaddr]) -> SimNode {
    let node = SimNode::start(NodeSpec::nated(true)).await.unwrap();
    within("a reservation", node.reserve(relay.clone()))
        .await
        .unwrap();
    node.add_peers(dht.to_vec()).await.unwrap();
    node
}

/// Connection events stored for `peer`: (event id, opened at).
async fn events_of(db: &TestDb, peer: &PeerId) -> Vec<(i64, i64)> {
    sqlx::query(
        "SELECT ce.id, ce.opened_at FROM connection_events ce \
         JOIN peers p ON p.id = ce.remote_peer_id WHERE p.peer_id = $1 ORDER BY ce.id",
    )
    .bind(peer.to_base58())
    .fetch_all(db.store.pool())
    .await
    .unwrap()
    .iter()
    .map(|row| (row.try_get(0).unwrap(), row.try_get(1).unwrap()))
    .collect()
}

/// `peer` looks the honeypot up in the DHT, which dials it; waits until the honeypot has
/// recorded the peer.
async fn find_and_get_recorded(db: &TestDb, peer: &SimNode, honeypot: PeerId, log: &str) {
    let closest = within("a lookup", peer.lookup(honeypot)).await.unwrap();
    assert!(
        closest.contains(&honeypot),
        "the DHT no longer hands out the honeypot: {closest:?}"
    );
    let started = std::time::Instant::now();
    while events_of(db, &peer.peer_id()).await.is_empty() {
        assert!(
            started.elapsed() < crate::support::DEADLINE,
            "the honeypot did not record the NATed peer; its log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_restarted_honeypot_keeps_identity_and_port_and_resumes(db: TestDb) {
    // Eight DHT servers; the first is also a relay for the NATed peers.
    let servers = dht(8, 1, 0).await;
    let addrs: Vec<Multiaddr> = servers.iter().map(|n| n.addr().unwrap().clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        key_file: dir.path().join("honeypot.key"),
        db: db.location.clone(),
        port: free_port(),
        telemetry: ([127, 0, 0, 1], free_port()).into(),
        bootstrap: addrs[1].clone(),
    };
    let log = dir.path().join("honeypot.log");

    let mut honeypot = Honeypot::start(&settings, &log).await;
    let peer_id = punchr_keyfile::load(&settings.key_file).expect("the key file was created")[0]
        .public()
        .to_peer_id();
    let first = nated_peer(&addrs[0], &addrs[2..]).await;
    find_and_get_recorded(&db, &first, peer_id, &honeypot.log()).await;
    let recorded_before = events_of(&db, &first.peer_id()).await;

    let mut visitors = vec![first];
    for signal in ["TERM", "KILL"] {
        let exited_cleanly = honeypot.stop(signal).await;
        assert_eq!(
            exited_cleanly,
            signal == "TERM",
            "exit status after SIG{signal}"
        );
        honeypot = Honeypot::start(&settings, &log).await;
        let text = honeypot.log();
        assert!(!text.to_lowercase().contains("in use"), "{text}");
        let keys = punchr_keyfile::load(&settings.key_file).unwrap();
        assert_eq!(keys[0].public().to_peer_id(), peer_id, "a new identity");

        // A peer that finds it now: through the DHT, which still has the old address and peer
        // ID, so the dial works only if both stayed the same.
        let visitor = nated_peer(&addrs[0], &addrs[2..]).await;
        find_and_get_recorded(&db, &visitor, peer_id, &text).await;
        visitors.push(visitor);
        // The first peer's event is still there as it was (the peer may have connected again
        // since, which is another event).
        let events = events_of(&db, &visitors[0].peer_id()).await;
        assert!(
            events.starts_with(&recorded_before),
            "what was recorded before the restart changed: {recorded_before:?} became {events:?}"
        );
    }
    assert!(honeypot.stop("TERM").await);
    shutdown_all(visitors).await;
    shutdown_all(servers).await;
}
