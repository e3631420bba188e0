//! Prometheus metrics of the server. Names follow the original where it had them
//! (`grpc_server_handled_total`, `grpc_server_handling_seconds`,
//! `db_allocation_query_duration_seconds`) so existing dashboards keep working.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// gRPC method and status code of a finished request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodCode {
    /// `Register`, `GetAddrInfo` or `TrackHolePunch`.
    pub grpc_method: String,
    /// gRPC status code name, e.g. `OK`, `NOT_FOUND`.
    pub grpc_code: String,
}

/// A gRPC method.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Method {
    /// `Register`, `GetAddrInfo` or `TrackHolePunch`.
    pub grpc_method: String,
}

/// Whether a selection query succeeded.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Success {
    /// `true` or `false`.
    pub success: String,
}

/// Outcome of a stored result.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// The outcome's name, e.g. `SUCCESS`.
    pub outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// How long an API key counts as an active client after its last request.
const ACTIVE_CLIENT_WINDOW: Duration = Duration::from_secs(600);

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    handled: Family<MethodCode, Counter>,
    handling_seconds: HistogramFamily<Method>,
    selection_seconds: HistogramFamily<Success>,
    results_stored: Family<OutcomeLabel, Counter>,
    active_clients: Gauge,
    rate_limited: Counter,
    selection_transactions: Counter,
    last_seen: Mutex<ActiveClients>,
}

/// Most API keys the active-client count tracks; beyond it the gauge saturates. Keys are bounded
/// anyway (--max-anonymous-keys); this bounds the map whatever the key table holds.
const MAX_ACTIVE_CLIENTS: usize = 100_000;

/// How often keys that went quiet are dropped from the count at most: dropping scans the map,
/// under its lock, and must not happen on every request.
const ACTIVE_CLIENTS_PRUNE_EVERY: Duration = Duration::from_secs(1);

/// When each API key made its last request.
#[derive(Debug)]
struct ActiveClients {
    last_seen: HashMap<i64, Instant>,
    pruned_at: Instant,
}

impl ActiveClients {
    fn seen(&mut self, api_key_id: i64, now: Instant) -> usize {
        if self.last_seen.len() < MAX_ACTIVE_CLIENTS || self.last_seen.contains_key(&api_key_id) {
            self.last_seen.insert(api_key_id, now);
        }
        if now.duration_since(self.pruned_at) >= ACTIVE_CLIENTS_PRUNE_EVERY {
            self.last_seen
                .retain(|_, seen| now.duration_since(*seen) < ACTIVE_CLIENT_WINDOW);
            self.pruned_at = now;
        }
        self.last_seen.len()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let handled = Family::<MethodCode, Counter>::default();
        let handling_seconds =
            HistogramFamily::<Method>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let selection_seconds = HistogramFamily::<Success>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let results_stored = Family::<OutcomeLabel, Counter>::default();
        let active_clients = Gauge::default();
        let rate_limited = Counter::default();
        let selection_transactions = Counter::default();
        registry.register(
            "punchr_server_selection_transactions",
            "Write transactions GetAddrInfo opened to hand out a remote (at most a few per request)",
            selection_transactions.clone(),
        );
        registry.register(
            "punchr_server_rate_limited",
            "Requests refused because their API key exceeded --rate-limit",
            rate_limited.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "gRPC requests completed, by method and status code",
            handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "gRPC request latency in seconds, by method",
            handling_seconds.clone(),
        );
        registry.register(
            "db_allocation_query_duration_seconds",
            "Duration of the GetAddrInfo peer selection in seconds",
            selection_seconds.clone(),
        );
        registry.register(
            "punchr_server_results_stored",
            "Hole punch results stored, by outcome",
            results_stored.clone(),
        );
        registry.register(
            "punchr_server_active_clients",
            "API keys that made a request within the last 10 minutes",
            active_clients.clone(),
        );
        Metrics {
            registry,
            handled,
            handling_seconds,
            selection_seconds,
            results_stored,
            active_clients,
            rate_limited,
            selection_transactions,
            last_seen: Mutex::new(ActiveClients {
                last_seen: HashMap::new(),
                pruned_at: Instant::now(),
            }),
        }
    }

    /// Records a finished request.
    pub fn request(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        let code = code_name(code);
        self.handled
            .get_or_create(&MethodCode {
                grpc_method: method.to_owned(),
                grpc_code: code.to_owned(),
            })
            .inc();
        self.handling_seconds
            .get_or_create(&Method {
                grpc_method: method.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records a peer selection.
    pub fn selection(&self, success: bool, elapsed: Duration) {
        self.selection_seconds
            .get_or_create(&Success {
                success: success.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts the write transactions one peer selection opened.
    pub fn selection_transactions(&self, transactions: usize) {
        self.selection_transactions
            .inc_by(u64::try_from(transactions).unwrap_or(u64::MAX));
    }

    /// Records a stored result.
    pub fn result_stored(&self, outcome: &str) {
        self.results_stored
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Notes a request refused by the per-key rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Notes a request by an API key and updates the active client count.
    pub fn client_seen(&self, api_key_id: i64) {
        let active = self
            .last_seen
            .lock()
            .expect("metrics lock")
            .seen(api_key_id, Instant::now());
        self.active_clients
            .set(i64::try_from(active).unwrap_or(i64::MAX));
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// The upper-case name gRPC uses for a status code.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
