//! The health view: is the campaign running? Clients reporting, results and honeypot peers per
//! minute from the database, server errors from the server's own gRPC counters.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use punchr_store::now_unix_nanos;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{json_response, DashboardState};
use punchr_types::log_target::DASHBOARD;

/// gRPC status codes that mean the server failed, not the client.
pub const SERVER_ERROR_CODES: [&str; 5] = [
    "UNKNOWN",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "DEADLINE_EXCEEDED",
];

/// A client counts as active while it reported a result within this window.
const ACTIVE_WINDOW_MINUTES: i64 = 10;

/// How often the error counters are sampled, and for how long samples are kept.
const SAMPLE_EVERY: Duration = Duration::from_secs(15);
const SAMPLES_KEPT: usize = 24 * 60 * 4;

const MINUTE_NS: i64 = 60_000_000_000;

/// Total server errors sampled over time: (Unix seconds, total so far).
#[derive(Debug, Default)]
pub(crate) struct ErrorSamples(VecDeque<(i64, u64)>);

impl ErrorSamples {
    fn push(&mut self, unix_s: i64, total: u64) {
        if self.0.len() == SAMPLES_KEPT {
            self.0.pop_front();
        }
        self.0.push_back((unix_s, total));
    }

    /// Errors per minute for the minutes starting at `first_minute` (Unix seconds), as the
    /// growth of the total between the last samples of consecutive minutes.
    fn per_minute(&self, first_minute: i64, minutes: i64) -> Vec<MinuteCount> {
        let mut last_in_minute: BTreeMap<i64, u64> = BTreeMap::new();
        for &(t, total) in &self.0 {
            last_in_minute.insert(t - t.rem_euclid(60), total);
        }
        (0..minutes)
            .map(|i| {
                let minute = first_minute + 60 * i;
                let now = last_in_minute.get(&minute);
                let before = last_in_minute.range(..minute).next_back().map(|(_, v)| *v);
                let count = match (now, before) {
                    (Some(now), Some(before)) => now.saturating_sub(before),
                    _ => 0,
                };
                MinuteCount { minute, count }
            })
            .collect()
    }
}

/// Every [`SAMPLE_EVERY`] until the dashboard is dropped: samples the server's error total.
pub(super) fn spawn_background_work(state: Weak<DashboardState>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SAMPLE_EVERY);
        loop {
            ticks.tick().await;
            let Some(state) = state.upgrade() else { break };
            sample_errors(&state);
        }
    });
}

fn sample_errors(state: &DashboardState) -> Option<(u64, BTreeMap<String, u64>)> {
    let metrics = state.metrics.as_ref()?;
    let (total, by_code) = server_error_total(&metrics());
    let now = now_unix_nanos() / 1_000_000_000;
    state
        .error_samples
        .lock()
        .expect("samples lock")
        .push(now, total);
    Some((total, by_code))
}

/// The number of gRPC requests that ended with a server-side error code
/// ([`SERVER_ERROR_CODES`]) in Prometheus text `metrics`, in total and by code.
pub fn server_error_total(metrics: &str) -> (u64, BTreeMap<String, u64>) {
    let mut by_code = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("grpc_server_handled_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Some(code) = label_value(labels, "grpc_code") else {
            continue;
        };
        if !SERVER_ERROR_CODES.contains(&code) {
            continue;
        }
        let value = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        *by_code.entry(code.to_owned()).or_default() += value as u64;
    }
    (by_code.values().sum(), by_code)
}

fn label_value<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &labels[start..];
    Some(&rest[..rest.find('"')?])
}

/// The value of an unlabelled gauge in Prometheus text `metrics`.
fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct HealthQuery {
    minutes: Option<i64>,
}

/// A count for the minute starting at `minute` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCount {
    /// Start of the minute, Unix seconds.
    pub minute: i64,
    /// The count.
    pub count: u64,
}

/// The health view's numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// Unix seconds.
    pub now: i64,
    /// Minutes covered by the series.
    pub window_minutes: i64,
    /// API keys that reported a result within the last 10 minutes.
    pub active_clients: u64,
    /// The server's `punchr_server_active_clients` gauge (API keys with any request in the
    /// last 10 minutes), when the dashboard runs inside the server.
    pub active_api_keys_metric: Option<f64>,
    /// Results stored per minute.
    pub results_per_minute: Vec<MinuteCount>,
    /// API keys that reported per minute.
    pub clients_per_minute: Vec<MinuteCount>,
    /// Distinct NATed peers that connected to the honeypot per minute.
    pub honeypot_peers_per_minute: Vec<MinuteCount>,
    /// Server-side gRPC errors.
    pub server_errors: ServerErrors,
}

/// Server-side gRPC errors (codes in [`SERVER_ERROR_CODES`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerErrors {
    /// Whether the dashboard can read the server's counters.
    pub available: bool,
    /// Since the server started.
    pub total: u64,
    /// Since the server started, by gRPC code.
    pub by_code: BTreeMap<String, u64>,
    /// Per minute over the window.
    pub per_minute: Vec<MinuteCount>,
}

pub(super) async fn health(
    State(state): State<Arc<DashboardState>>,
    Query(query): Query<HealthQuery>,
) -> Response {
    match collect(&state, query.minutes.unwrap_or(60).clamp(5, 24 * 60)).await {
        Ok(health) => json_response(serde_json::to_string(&health).expect("health serialises")),
        Err(error) => {
            tracing::error!(target: DASHBOARD, event = "health_query_failed", %error, "health query failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

async fn collect(state: &DashboardState, minutes: i64) -> Result<Health, sqlx::Error> {
    let now_ns = now_unix_nanos();
    let current_minute_ns = now_ns - now_ns.rem_euclid(MINUTE_NS);
    let since_ns = current_minute_ns - (minutes - 1) * MINUTE_NS;
    let active_since = now_ns - ACTIVE_WINDOW_MINUTES * MINUTE_NS;
    let pool = state.store.pool();
    let results_sql = format!(
        "SELECT (created_at / {MINUTE_NS}) * {MINUTE_NS}, COUNT(*), COUNT(DISTINCT api_key_id) \
         FROM hole_punch_results WHERE created_at >= {since_ns} GROUP BY 1"
    );
    let peers_sql = format!(
        "SELECT (opened_at / {MINUTE_NS}) * {MINUTE_NS}, COUNT(DISTINCT remote_peer_id) \
         FROM connection_events WHERE opened_at >= {since_ns} GROUP BY 1"
    );
    let active_sql = format!("SELECT COUNT(DISTINCT api_key_id) FROM hole_punch_results WHERE created_at >= {active_since}");
    let (result_rows, peer_rows, active_row) = tokio::try_join!(
        sqlx::query(&results_sql).fetch_all(pool),
        sqlx::query(&peers_sql).fetch_all(pool),
        sqlx::query(&active_sql).fetch_one(pool),
    )?;
    let first_minute = since_ns / 1_000_000_000;
    let mut results = BTreeMap::new();
    let mut clients = BTreeMap::new();
    for row in &result_rows {
        let minute: i64 = row.try_get(0)?;
        results.insert(minute / 1_000_000_000, row.try_get::<i64, _>(1)? as u64);
        clients.insert(minute / 1_000_000_000, row.try_get::<i64, _>(2)? as u64);
    }
    let mut peers = BTreeMap::new();
    for row in &peer_rows {
        let minute: i64 = row.try_get(0)?;
        peers.insert(minute / 1_000_000_000, row.try_get::<i64, _>(1)? as u64);
    }
    let metrics_text = state.metrics.as_ref().map(|metrics| metrics());
    let server_errors = match sample_errors(state) {
        Some((total, by_code)) => ServerErrors {
            available: true,
            total,
            by_code,
            per_minute: state
                .error_samples
                .lock()
                .expect("samples lock")
                .per_minute(first_minute, minutes),
        },
        None => ServerErrors {
            available: false,
            total: 0,
            by_code: BTreeMap::new(),
            per_minute: Vec::new(),
        },
    };
    Ok(Health {
        now: now_ns / 1_000_000_000,
        window_minutes: minutes,
        active_clients: active_row.try_get::<i64, _>(0)? as u64,
        active_api_keys_metric: metrics_text
            .as_deref()
            .and_then(|m| gauge(m, "punchr_server_active_clients")),
        results_per_minute: zero_filled(&results, first_minute, minutes),
        clients_per_minute: zero_filled(&clients, first_minute, minutes),
        honeypot_peers_per_minute: zero_filled(&peers, first_minute, minutes),
        server_errors,
    })
}

fn zero_filled(counts: &BTreeMap<i64, u64>, first_minute: i64, minutes: i64) -> Vec<MinuteCount> {
    (0..minutes)
        .map(|i| {
            let minute = first_minute + 60 * i;
            MinuteCount {
                minute,
                count: counts.get(&minute).copied().unwrap_or(0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "# TYPE grpc_server_handled counter\n\
        grpc_server_handled_total{grpc_method=\"TrackHolePunch\",grpc_code=\"INTERNAL\"} 3\n\
        grpc_server_handled_total{grpc_method=\"GetAddrInfo\",grpc_code=\"UNAVAILABLE\"} 2\n\
        grpc_server_handled_total{grpc_method=\"GetAddrInfo\",grpc_code=\"NOT_FOUND\"} 40\n\
        grpc_server_handled_total{grpc_method=\"Register\",grpc_code=\"OK\"} 7\n\
        punchr_server_active_clients 4\n";

    #[test]
    fn only_server_side_codes_count_as_errors() {
        let (total, by_code) = server_error_total(METRICS);
        assert_eq!(total, 5);
        assert_eq!(by_code["INTERNAL"], 3);
        assert!(!by_code.contains_key("NOT_FOUND"));
        assert_eq!(gauge(METRICS, "punchr_server_active_clients"), Some(4.0));
    }

    #[test]
    fn errors_per_minute_are_differences_of_samples() {
        let mut samples = ErrorSamples::default();
        for (t, total) in [(600, 1), (615, 2), (660, 2), (675, 5), (750, 6)] {
            samples.push(t, total);
        }
        let per_minute = samples.per_minute(600, 3);
        let counts: Vec<u64> = per_minute.iter().map(|m| m.count).collect();
        assert_eq!(counts, [0, 3, 1]);
    }

    #[test]
    fn minutes_without_rows_are_zero() {
        let mut counts = BTreeMap::new();
        counts.insert(660, 4);
        let filled = zero_filled(&counts, 600, 3);
        assert_eq!(
            filled.iter().map(|m| m.count).collect::<Vec<_>>(),
            [0, 4, 0]
        );
    }
}
