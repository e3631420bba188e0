//! The honeypot records the field's own implementations (issue 13, point 7): go-libp2p remotes of
//! each DCUtR role era and a real kubo node, behind port-restricted NATs, meet the honeypot
//! through their DHT lookups and are recorded with their agent version, their protocols
//! (`/libp2p/dcutr` among them) and their relay addresses; a reservation a go remote makes later
//! (on relay2, which the test starts only after the first records) reaches the honeypot as an
//! identify push and is recorded as well.
//!
//! The remotes are built outside the clone by `scripts/lab-peers`; the test fails, naming the
//! command, when one is missing.

mod common;

use std::time::{Duration, Instant};

use common::{bin_dir, build_from, build_punchr_binaries, peers_dir};
use punchr_lab::campaign::{default_db, start_role, template_context, START_ORDER};
use punchr_lab::template::{peer_id, seed};
use sqlx::Row;

/// `(peer name, implementation, agent version prefix)` of the scenario's remotes.
const REMOTES: [(&str, &str, &str); 4] = [
    (
        "remote-go40",
        "go-v0.40",
        "go-libp2p/0.40.0 (punchr-lab remote)",
    ),
    (
        "remote-go47",
        "go-v0.47",
        "go-libp2p/0.47.0 (punchr-lab remote)",
    ),
    (
        "remote-go52",
        "go-v0.52",
        "go-libp2p/0.52.0 (punchr-lab remote)",
    ),
    ("remote-kubo", "kubo", "kubo/0.43.1"),
];

/// One recorded NATed peer, from the honeypot's database.
#[derive(Debug, Default)]
struct Recorded {
    agent: Option<String>,
    protocols: Vec<String>,
    supports_dcutr: bool,
    relay_addrs: Vec<String>,
}

async fn recorded(pool: &sqlx::SqlitePool, peer: &str) -> sqlx::Result<Option<Recorded>> {
    let Some(row) = sqlx::query(
        "SELECT id, agent_version, protocols, supports_dcutr FROM peers WHERE peer_id = ?",
    )
    .bind(peer)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let id: i64 = row.get(0);
    let protocols: String = row.get(2);
    let relay_addrs = sqlx::query(
        "SELECT DISTINCT m.maddr FROM connection_events e \
         JOIN connection_event_addresses a ON a.connection_event_id = e.id \
         JOIN multi_addresses m ON m.id = a.multi_address_id \
         WHERE e.remote_peer_id = ? AND m.is_relay",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    Ok(Some(Recorded {
        agent: row.get(1),
        protocols: serde_json::from_str(&protocols).unwrap_or_default(),
        supports_dcutr: row.get::<i64, _>(3) != 0,
        relay_addrs,
    }))
}

/// Polls the database until `done` holds for every peer of `names`, or panics after `timeout`
/// with what was recorded.
fn wait_for(
    runtime: &tokio::runtime::Runtime,
    pool: &sqlx::SqlitePool,
    names: &[&str],
    timeout: Duration,
    what: &str,
    done: impl Fn(&Recorded) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut missing = Vec::new();
        for name in names {
            let rec = runtime
                .block_on(recorded(pool, &peer_id(name)))
                .unwrap_or_else(|e| panic!("reading the honeypot's database: {e}"));
            if !rec.as_ref().is_some_and(&done) {
                missing.push(format!("{name}: {rec:?}"));
            }
        }
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {timeout:?}, not recorded with {what}:\n{}",
            missing.join("\n")
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn honeypot_records_go_libp2p_remotes_and_their_identify_pushes() {
    records(&REMOTES[..3]);
}

/// kubo, on its own. It announces the address its NAT maps for it beside its relay addresses
/// until the bootstrap nodes' AutoNAT v2 servers find that address unreachable; a honeypot that
/// met it earlier skipped it as public and records it from the identify push that drops the
/// address. Without AutoNAT v2 servers in the lab it was never recorded once it had met four
/// observers before the honeypot.
#[test]
fn honeypot_records_kubo() {
    records(&REMOTES[3..]);
}

/// Starts the scenario and waits until the honeypot recorded each of `remotes`; for the go
/// remotes among them, also the identify push of a second relay reservation.
fn records(remotes: &[(&str, &str, &str)]) {
    let peers = peers_dir();
    for &(_, implementation, _) in REMOTES.iter() {
        let remote = peers.join(implementation).join("remote");
        assert!(
            remote.is_file(),
            "{} is missing: build it with `scripts/lab-peers {implementation}` \
             (PUNCHR_LAB_PEERS_DIR chooses the directory)",
            remote.display()
        );
    }
    build_punchr_binaries();
    let mut scenario = common::scenario("foreign.toml");
    for peer in &mut scenario.peers {
        if let Some(command) = &mut peer.command {
            *command = command.replace("@PEERS_DIR@", &peers.display().to_string());
        }
    }
    let lab = build_from(&scenario);
    let context = template_context(&lab, bin_dir()).unwrap_or_else(|e| panic!("{e}"));
    for role in START_ORDER {
        start_role(&lab, &context, role, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = default_db(&lab);
    let pool = runtime
        .block_on(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(
                    sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(&db)
                        .read_only(true),
                ),
        )
        .unwrap_or_else(|e| panic!("opening {}: {e}", db.display()));
    let relay = peer_id("relay");
    let names: Vec<&str> = remotes.iter().map(|r| r.0).collect();
    wait_for(
        &runtime,
        &pool,
        &names,
        Duration::from_secs(120),
        "agent version, /libp2p/dcutr and a relay address on relay",
        |r| {
            let name = remotes
                .iter()
                .find(|(_, _, agent)| r.agent.as_deref().is_some_and(|a| a.starts_with(agent)));
            name.is_some()
                && r.supports_dcutr
                && r.protocols.iter().any(|p| p == "/libp2p/dcutr")
                && r.relay_addrs.iter().any(|a| a.contains(&relay))
        },
    );
    // Each recorded agent version is that remote's own (not merely one of the four).
    for &(name, _, agent) in remotes {
        let rec = runtime
            .block_on(recorded(&pool, &peer_id(name)))
            .expect("database")
            .expect("recorded");
        assert!(
            rec.agent.as_deref().is_some_and(|a| a.starts_with(agent)),
            "{name}: {rec:?}"
        );
    }

    // A second reservation, made after the honeypot recorded the first: the go remotes retry
    // their unreachable static relay and tell their connected peers with an identify push.
    let relay2_ip = lab.plan().peer("relay2").expect("relay2").ip.to_string();
    lab.spawn_lab(
        "relay2",
        "relay2",
        &[
            "relay",
            "--listen-ip",
            &relay2_ip,
            "--port",
            "4001",
            "--seed",
            &seed("relay2"),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let relay2 = peer_id("relay2");
    let go_remotes: Vec<&str> = remotes
        .iter()
        .filter(|r| r.1.starts_with("go-"))
        .map(|r| r.0)
        .collect();
    if go_remotes.is_empty() {
        return;
    }
    wait_for(
        &runtime,
        &pool,
        &go_remotes,
        Duration::from_secs(90),
        "a relay address on relay2 (identify push)",
        |r| r.relay_addrs.iter().any(|a| a.contains(&relay2)),
    );
}
