//! Walking the whole DHT, again and again, so that the honeypot lands in many routing tables.
//!
//! One walk works like the go-libp2p-kad-dht crawler and Nebula: start from the bootstrap peers
//! (and the honeypot's own routing table), and ask every reachable DHT server for the contents of
//! each of its buckets, one FIND_NODE per bucket with a key made for that bucket ([`keys`]), over
//! one Kademlia stream ([`wire`], opened by [`client`]). Bucket 0 first, deeper buckets next,
//! stopping at the first answer that is empty or brings nothing new while holding fewer than 20
//! peers: deeper buckets would repeat it. Every peer named in an answer joins the walk
//! ([`frontier`]). At most `crawler_count` peers are crawled at a time, and connecting and each
//! answer are bounded by `crawl_timeout`. Being asked makes a server notice the honeypot (it
//! learns its addresses through identify and adds it to its table), which is the point.

pub mod client;
pub mod frontier;
pub mod keys;
pub mod wire;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use libp2p::{Multiaddr, PeerId};
use punchr_store::now_unix_nanos;
use tokio::sync::{mpsc, oneshot, watch};

use crate::address::is_crawlable;
use crate::config::BootstrapPeer;
use crate::metrics::Metrics;
use crate::TARGET;
use client::{OpenError, StreamOpener};
use frontier::Frontier;
use wire::{FoundPeer, WireError};

/// Peers a Kademlia server returns per answer when it knows enough.
const K_VALUE: usize = 20;

/// What one walk found.
#[derive(Debug, Clone)]
pub struct WalkReport {
    /// Walks since start, from 1.
    pub number: u64,
    /// When the walk started (Unix ns).
    pub started_at: i64,
    /// How long it took.
    pub duration: Duration,
    /// Peers the walk learned of (and meant to crawl).
    pub discovered: usize,
    /// Peers that answered at least one FIND_NODE.
    pub reached: Vec<PeerId>,
    /// Peers that could not be connected to or did not answer.
    pub failed: usize,
    /// Peers left out because the walk hit `--max-walk-peers`.
    pub refused: usize,
    /// The walk was cut short by `--walk-timeout` or shutdown.
    pub interrupted: bool,
}

/// Why one peer could not be crawled.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    /// No stream could be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Connecting or an answer took longer than the crawl timeout.
    #[error("timed out")]
    Timeout,
    /// The first answer was broken.
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl CrawlError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CrawlError::Open(OpenError::Dial(_)) => "dial",
            CrawlError::Open(OpenError::Unsupported) => "unsupported",
            CrawlError::Open(_) => "negotiation",
            CrawlError::Timeout => "timeout",
            CrawlError::Wire(_) => "protocol",
        }
    }
}

/// Peers with addresses to dial them.
pub type Peers = Vec<(PeerId, Vec<Multiaddr>)>;

/// Asks the swarm for the peers of the honeypot's own routing table.
pub type SeedRequests = mpsc::Sender<oneshot::Sender<Peers>>;

/// How walks run.
#[derive(Debug, Clone)]
pub struct WalkSettings {
    /// The honeypot itself (never crawled).
    pub local: PeerId,
    /// Where every walk starts.
    pub bootstrap: Vec<BootstrapPeer>,
    /// Peers crawled in parallel.
    pub crawlers: usize,
    /// Bound on connecting and on each answer.
    pub crawl_timeout: Duration,
    /// Bound on one walk.
    pub walk_timeout: Duration,
    /// Pause between walks.
    pub pause: Duration,
    /// Most peers per walk.
    pub max_peers: usize,
    /// Dial private addresses learned from other peers.
    pub allow_private: bool,
}

/// Runs walks until `stop` turns true, publishing each report.
pub async fn run(
    settings: WalkSettings,
    opener: StreamOpener,
    seeds: SeedRequests,
    metrics: Arc<Metrics>,
    reports: watch::Sender<Option<Arc<WalkReport>>>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = tokio::task::spawn_blocking(keys::prepare).await;
    for number in 1.. {
        if *stop.borrow() {
            break;
        }
        let table = routing_table(&seeds).await;
        tracing::info!(target: TARGET, event = "walk_started", walk = number, seeds = settings.bootstrap.len() + table.len());
        let report = walk(&settings, number, table, &opener, &metrics, &mut stop).await;
        tracing::info!(
            target: TARGET,
            event = "walk_finished",
            walk = number,
            discovered = report.discovered,
            reached = report.reached.len(),
            failed = report.failed,
            refused = report.refused,
            duration_s = report.duration.as_secs_f64(),
            interrupted = report.interrupted,
        );
        metrics.walk_finished(&report);
        let _ = reports.send(Some(Arc::new(report)));
        tokio::select! {
            _ = tokio::time::sleep(settings.pause) => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
}

async fn routing_table(seeds: &SeedRequests) -> Peers {
    let (reply, answer) = oneshot::channel();
    if seeds.send(reply).await.is_err() {
        return Vec::new();
    }
    tokio::time::timeout(Duration::from_secs(5), answer)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

/// One walk over the DHT.
async fn walk(
    settings: &WalkSettings,
    number: u64,
    table: Peers,
    opener: &StreamOpener,
    metrics: &Metrics,
    stop: &mut watch::Receiver<bool>,
) -> WalkReport {
    let started = Instant::now();
    let started_at = now_unix_nanos();
    let deadline = tokio::time::Instant::now() + settings.walk_timeout;
    let dialable = |addrs: Vec<Multiaddr>| -> Vec<Multiaddr> {
        addrs
            .into_iter()
            .filter(|a| is_crawlable(a, settings.allow_private))
            .collect()
    };
    let mut frontier = Frontier::new(settings.local, settings.max_peers);
    for peer in &settings.bootstrap {
        frontier.discover(peer.peer_id, peer.addrs.clone());
    }
    for (peer, addrs) in table {
        frontier.discover(peer, dialable(addrs));
    }
    let mut running = FuturesUnordered::new();
    let interrupted = loop {
        while running.len() < settings.crawlers {
            let Some((peer, addrs)) = frontier.next_peer() else {
                break;
            };
            let opener = opener.clone();
            let timeout = settings.crawl_timeout;
            running.push(async move { (peer, crawl_peer(&opener, peer, addrs, timeout).await) });
        }
        if running.is_empty() {
            break false;
        }
        tokio::select! {
            Some((peer, result)) = running.next() => match result {
                Ok(found) => {
                    metrics.crawled(None);
                    tracing::debug!(target: TARGET, event = "peer_crawled", %peer, neighbours = found.len());
                    frontier.answered(peer);
                    for FoundPeer { peer_id, addrs } in found {
                        frontier.discover(peer_id, dialable(addrs));
                    }
                }
                Err(error) => {
                    metrics.crawled(Some(error.kind()));
                    tracing::debug!(target: TARGET, event = "crawl_failed", %peer, %error);
                    frontier.failed();
                }
            },
            _ = tokio::time::sleep_until(deadline) => break true,
            _ = stop.wait_for(|stopped| *stopped) => break true,
        }
    };
    WalkReport {
        number,
        started_at,
        duration: started.elapsed(),
        discovered: frontier.discovered(),
        failed: frontier.failures() + running.len(),
        refused: frontier.refused(),
        interrupted,
        reached: frontier.into_reached(),
    }
}

/// Asks one peer for every non-empty bucket of its routing table.
pub async fn crawl_peer(
    opener: &StreamOpener,
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    timeout: Duration,
) -> Result<Vec<FoundPeer>, CrawlError> {
    let mut stream = tokio::time::timeout(timeout, opener.open(peer, addrs))
        .await
        .map_err(|_| CrawlError::Timeout)??;
    let target = keys::peer_key(&peer);
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for cpl in 0..=keys::MAX_CPL {
        let key = keys::key_in_bucket(&target, cpl, rand::random());
        let answer = match tokio::time::timeout(timeout, wire::find_node(&mut stream, key)).await {
            Ok(Ok(answer)) => answer,
            // A server that breaks off later still told us its first buckets.
            Ok(Err(error)) if cpl == 0 => return Err(error.into()),
            Err(_) if cpl == 0 => return Err(CrawlError::Timeout),
            Ok(Err(_)) | Err(_) => break,
        };
        let size = answer.len();
        let mut new = 0;
        for neighbour in answer {
            if seen.insert(neighbour.peer_id) {
                new += 1;
                found.push(neighbour);
            }
        }
        if size == 0 || (new == 0 && size < K_VALUE) {
            break;
        }
    }
    Ok(found)
}
