//! What strangers make a client host remember (issue 15, point 10). A host listens on a public
//! port, so anyone can connect to it, identify and tell it where they observed it. A host is
//! started here as the client binary starts its hosts (its settings from the command line's
//! defaults), and real libp2p peers on loopback connect to it: it remembers the identities of
//! connected peers only, and at most 64 addresses waiting for confirmation, however many
//! strangers come and whatever they claim.

use std::time::Duration;

use clap::Parser;
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use punchr_client::config::ClientConfig;
use punchr_client::host::{Host, HostSizes};
use punchr_client::run::host_settings;
use punchr_testutil::libp2p_peers::Stranger;

/// Every wait of these tests; generous, for a loaded 2-core machine running debug builds.
const DEADLINE: Duration = Duration::from_secs(90);

/// The most addresses waiting for observers (`observed.rs`).
const MAX_PENDING: usize = 64;

/// A host with the client binary's default settings, listening on 127.0.0.1; returns it with
/// its TCP address (ending in `/p2p/<peer ID>`).
async fn host() -> (Host, Multiaddr) {
    let config = ClientConfig::parse_from([
        "punchr-client",
        "--listen",
        "127.0.0.1",
        "--bootstrap-peers",
        "none",
    ]);
    let key = libp2p::identity::Keypair::generate_ed25519();
    let host = Host::spawn(key, host_settings(&config)).expect("the host starts");
    let address = tokio::time::timeout(DEADLINE, async {
        loop {
            let tcp = host.addresses().await.unwrap().into_iter().find(|a| {
                a.iter()
                    .any(|p| matches!(p, Protocol::Tcp(port) if port != 0))
            });
            if let Some(address) = tcp {
                return address;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the host listens");
    let address = address.with(Protocol::P2p(host.peer_id()));
    (host, address)
}

/// Waits until the host's sizes satisfy `done`; panics with the last sizes after [`DEADLINE`].
async fn sizes_until(host: &Host, what: &str, done: impl Fn(&HostSizes) -> bool) -> HostSizes {
    let mut last = HostSizes::default();
    let waited = tokio::time::timeout(DEADLINE, async {
        loop {
            last = host.sizes().await.unwrap();
            if done(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("timed out after {DEADLINE:?} waiting for {what}: {last:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_of_strangers_are_forgotten_when_they_leave() {
    const STRANGERS: usize = 40;
    let (host, address) = host().await;
    let strangers = futures::future::join_all(
        (0..STRANGERS).map(|_| tokio::time::timeout(DEADLINE, Stranger::connect(address.clone()))),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .expect("every stranger connects and identifies");
    sizes_until(&host, "every stranger's identity", |s| {
        s.identities == STRANGERS
    })
    .await;
    drop(strangers);
    sizes_until(&host, "the identities to be forgotten", |s| {
        s.identities == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimed_observed_addresses_stay_bounded() {
    const CLAIMS: u16 = 300;
    let (host, address) = host().await;
    let mut liar = Stranger::connect(address.clone()).await;
    for n in 0..CLAIMS {
        let [hi, lo] = n.to_be_bytes();
        let claim: Multiaddr = format!("/ip4/11.77.{hi}.{lo}/tcp/4001").parse().unwrap();
        liar.claim_observed(&claim).await;
        let sizes = host.sizes().await.unwrap();
        assert!(
            sizes.pending_observations <= MAX_PENDING,
            "after {} claims: {sizes:?}",
            n + 1
        );
    }
    // A last claim that a second stranger repeats, so that it is confirmed: the host has then
    // handled every claim before it on the liar's connection.
    let mut accomplice = Stranger::connect(address).await;
    let last: Multiaddr = "/ip4/11.78.0.1/tcp/4001".parse().unwrap();
    tokio::time::timeout(DEADLINE, async {
        while !host.addresses().await.unwrap().contains(&last) {
            liar.claim_observed(&last).await;
            accomplice.claim_observed(&last).await;
        }
    })
    .await
    .expect("two observers confirm an address");
    let sizes = host.sizes().await.unwrap();
    assert!(
        (MAX_PENDING - 1..=MAX_PENDING).contains(&sizes.pending_observations),
        "{CLAIMS} claims left {sizes:?}"
    );
}
