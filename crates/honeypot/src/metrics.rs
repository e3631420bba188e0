//! Prometheus metrics of the honeypot. The original's names stay (`honeypot_handled_connections`,
//! `honeypot_crawled_peers`, `honeypot_completed_walks`, `punchr-original.md` §10) so existing
//! dashboards keep working; libp2p's own metrics follow under the `libp2p_` prefix.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::crawl::WalkReport;
use crate::inbound::TrackerSizes;

/// `ok` or `error`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Status {
    /// `ok` or `error`.
    pub status: &'static str,
}

/// What became of an inbound connection.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// A record reason or skip reason of [`crate::inbound`].
    pub outcome: &'static str,
}

/// Why a peer could not be crawled.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// See [`crate::crawl::CrawlError::kind`].
    pub reason: &'static str,
}

/// Every metric the honeypot exports.
pub struct Metrics {
    registry: Registry,
    libp2p: libp2p::metrics::Metrics,
    handled: Family<Status, Counter>,
    inbound: Family<Outcome, Counter>,
    crawled: Family<Status, Counter>,
    crawl_errors: Family<Reason, Counter>,
    walks: Counter,
    walk_discovered: Gauge,
    walk_reached: Gauge,
    walk_seconds: Histogram,
    record_dropped: Counter,
    record_seconds: Histogram,
    tracked: Gauge,
    awaiting: Gauge,
    kept: Gauge,
    tracked_peers: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn gauge(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let libp2p = libp2p::metrics::Metrics::new(&mut registry);
        let metrics = Metrics {
            libp2p,
            handled: Family::default(),
            inbound: Family::default(),
            crawled: Family::default(),
            crawl_errors: Family::default(),
            walks: Counter::default(),
            walk_discovered: Gauge::default(),
            walk_reached: Gauge::default(),
            walk_seconds: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            record_dropped: Counter::default(),
            record_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            tracked: Gauge::default(),
            awaiting: Gauge::default(),
            kept: Gauge::default(),
            tracked_peers: Gauge::default(),
            registry: Registry::default(),
        };
        let m = &metrics;
        registry.register(
            "honeypot_handled_connections",
            "Connection events written, by status (ok, error)",
            m.handled.clone(),
        );
        registry.register(
            "honeypot_inbound_connections",
            "Inbound connections by what became of them",
            m.inbound.clone(),
        );
        registry.register(
            "honeypot_crawled_peers",
            "Peers crawled during walks, by status (ok, error)",
            m.crawled.clone(),
        );
        registry.register(
            "honeypot_crawl_errors",
            "Peers that could not be crawled, by reason",
            m.crawl_errors.clone(),
        );
        registry.register(
            "honeypot_completed_walks",
            "Walks finished (also those cut short)",
            m.walks.clone(),
        );
        registry.register(
            "honeypot_walk_discovered_peers",
            "Peers the last walk learned of",
            m.walk_discovered.clone(),
        );
        registry.register(
            "honeypot_walk_reached_peers",
            "Peers that answered during the last walk",
            m.walk_reached.clone(),
        );
        registry.register(
            "honeypot_walk_duration_seconds",
            "How long walks took",
            m.walk_seconds.clone(),
        );
        registry.register(
            "honeypot_record_dropped",
            "Connection events dropped because the database fell behind",
            m.record_dropped.clone(),
        );
        registry.register(
            "honeypot_record_duration_seconds",
            "Time to write one connection event",
            m.record_seconds.clone(),
        );
        registry.register(
            "honeypot_tracked_connections",
            "Inbound connections tracked",
            m.tracked.clone(),
        );
        registry.register(
            "honeypot_awaiting_identify",
            "Inbound connections waiting for identify",
            m.awaiting.clone(),
        );
        registry.register(
            "honeypot_kept_connections",
            "Recorded peers' connections kept open",
            m.kept.clone(),
        );
        registry.register(
            "honeypot_tracked_peers",
            "Distinct peers with tracked inbound connections",
            m.tracked_peers.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// libp2p's recorder for swarm, identify, Kademlia and ping events.
    pub fn libp2p(&self) -> &libp2p::metrics::Metrics {
        &self.libp2p
    }

    /// An inbound connection's fate.
    pub fn inbound(&self, outcome: &'static str) {
        self.inbound.get_or_create(&Outcome { outcome }).inc();
    }

    /// A connection event was written (`ok`) or not (`error`).
    pub fn handled(&self, ok: bool, elapsed: Duration) {
        let status = if ok { "ok" } else { "error" };
        self.handled.get_or_create(&Status { status }).inc();
        self.record_seconds.observe(elapsed.as_secs_f64());
    }

    /// A connection event was dropped.
    pub fn record_dropped(&self) {
        self.record_dropped.inc();
    }

    /// A peer was crawled, or not for the given reason.
    pub fn crawled(&self, error: Option<&'static str>) {
        let status = if error.is_some() { "error" } else { "ok" };
        self.crawled.get_or_create(&Status { status }).inc();
        if let Some(reason) = error {
            self.crawl_errors.get_or_create(&Reason { reason }).inc();
        }
    }

    /// A walk finished.
    pub fn walk_finished(&self, report: &WalkReport) {
        self.walks.inc();
        self.walk_discovered.set(gauge(report.discovered));
        self.walk_reached.set(gauge(report.reached.len()));
        self.walk_seconds.observe(report.duration.as_secs_f64());
    }

    /// The tracker's current sizes.
    pub fn tracker(&self, sizes: TrackerSizes) {
        self.tracked.set(gauge(sizes.connections));
        self.awaiting.set(gauge(sizes.awaiting));
        self.kept.set(gauge(sizes.kept));
        self.tracked_peers.set(gauge(sizes.peers));
    }

    /// The tracker's sizes as last reported.
    pub fn tracker_sizes(&self) -> TrackerSizes {
        let size = |g: &Gauge| usize::try_from(g.get()).unwrap_or(0);
        TrackerSizes {
            connections: size(&self.tracked),
            awaiting: size(&self.awaiting),
            kept: size(&self.kept),
            peers: size(&self.tracked_peers),
        }
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
