//! Helpers shared by the honeypot's integration tests: configurations, deadlines, observations,
//! a minimal HTTP client and a simulated DHT.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use punchr_honeypot::{HoneypotConfig, Observation, RunningHoneypot, WalkReport};
use punchr_testutil::sim::{NodeSpec, SimNode};
use tokio::sync::broadcast;

/// The deadline of every wait in these tests. Generous: the suite runs on 2 cores in debug builds.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// Awaits `future` or panics after [`DEADLINE`] saying what did not happen.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {DEADLINE:?} waiting for {what}"))
}

/// A honeypot configuration for loopback tests: ephemeral ports, private addresses crawlable,
/// one walk (the next one an hour later).
pub fn config(dir: &Path, db: &str, bootstrap: &[Multiaddr]) -> HoneypotConfig {
    let mut config = HoneypotConfig::defaults();
    config.key_file = dir.join("honeypot.key");
    config.db = db.to_string();
    config.listen_ip = vec!["127.0.0.1".parse().unwrap()];
    config.port = 0;
    config.telemetry_port = 0;
    config.bootstrap_peers = if bootstrap.is_empty() {
        vec!["none".into()]
    } else {
        bootstrap.iter().map(ToString::to_string).collect()
    };
    config.crawl_private_addrs = true;
    // The sim's relays announce 198.18.x.y (not public); tests of the relay hop rule turn it off.
    config.record_private_relays = true;
    // Every simulated peer comes from 127.0.0.1; tests of the per-address limit lower it.
    config.max_peers_per_address = 100_000;
    config.walk_pause = Duration::from_secs(3600);
    // Tests ask whether a walk reaches every server, not how fast: with the default 5 s per peer,
    // a CI run with two 30-node DHTs and builds beside it failed 5 of 21 crawls (dht.rs).
    config.crawl_timeout = Duration::from_secs(30);
    config
}

/// Waits for the first walk report.
pub async fn first_walk(honeypot: &RunningHoneypot) -> std::sync::Arc<WalkReport> {
    let mut reports = honeypot.walk_reports();
    within("the first walk", async {
        let report = reports
            .wait_for(Option::is_some)
            .await
            .expect("honeypot running");
        report.clone().expect("checked")
    })
    .await
}

/// Collects observations until every peer in `peers` has `count` of them.
pub async fn observations_of(
    observations: &mut broadcast::Receiver<Observation>,
    peers: &[PeerId],
    count: usize,
) -> HashMap<PeerId, Vec<Observation>> {
    let mut seen: HashMap<PeerId, Vec<Observation>> = HashMap::new();
    within("observations of every peer", async {
        while peers
            .iter()
            .any(|p| seen.get(p).map_or(0, Vec::len) < count)
        {
            let observation = observations.recv().await.expect("observations flow");
            let peer = match &observation {
                Observation::Recorded { peer, .. }
                | Observation::Skipped { peer, .. }
                | Observation::Failed { peer, .. } => *peer,
            };
            if peers.contains(&peer) {
                seen.entry(peer).or_default().push(observation);
            }
        }
    })
    .await;
    seen
}

pub use punchr_testutil::http::http_get;

/// `count` public DHT servers that know each other; the first `relays` are relays too, the
/// next `dcutr` speak DCUtR.
pub async fn dht(count: u16, relays: u16, dcutr: u16) -> Vec<SimNode> {
    let mut nodes = Vec::new();
    for i in 0..count {
        let mut spec = NodeSpec::public(i + 1);
        spec.relay_server = i < relays;
        spec.dcutr = (relays..relays + dcutr).contains(&i);
        nodes.push(SimNode::start(spec).await.expect("start a DHT server"));
    }
    let addrs: Vec<Multiaddr> = nodes.iter().map(|n| n.addr().unwrap().clone()).collect();
    for node in &nodes {
        let others = addrs
            .iter()
            .filter(|a| Some(*a) != node.addr())
            .cloned()
            .collect();
        node.add_peers(others)
            .await
            .expect("fill the routing table");
    }
    nodes
}

/// A NATed peer announcing a (fake) relay address with a public relay hop, for visits that need
/// no real relay.
pub fn visitor_spec(dcutr: bool) -> NodeSpec {
    let relay = PeerId::random();
    let mut spec = NodeSpec::nated(dcutr);
    spec.external_addrs = vec![format!("/ip4/11.0.0.1/tcp/4001/p2p/{relay}/p2p-circuit")
        .parse()
        .unwrap()];
    spec
}

/// Stops every node.
pub async fn shutdown_all(nodes: Vec<SimNode>) {
    futures::future::join_all(nodes.into_iter().map(SimNode::shutdown)).await;
}
