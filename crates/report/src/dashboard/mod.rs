//! The live web dashboard the server serves on its own port (default 10002).
//!
//! - `/`: a health view (active clients, results per minute, honeypot peers per minute, server
//!   errors) and a performance view (success rate over time by transport, attempt distribution,
//!   time to direct connection, outcome mix). The page is plain HTML with vanilla JavaScript that
//!   fetches the JSON endpoints every few seconds and draws SVG; everything is embedded in the
//!   binary, nothing is loaded from elsewhere.
//! - `/api/health`: the health numbers as JSON.
//! - `/api/report`: the [`crate::Report`] as JSON, the same `report --format json` prints, for
//!   the same filter (`since`, `until`, `api_key_name`, `bucket` query parameters).
//! - `/me`: a volunteer's own results. The API key is sent in a form POST body, never in a URL,
//!   and never logged.

mod health;
mod personal;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use punchr_store::{now_unix_nanos, Store};
use serde::Deserialize;

use crate::filter::parse_span;
use crate::{build_report, parse_time_bound, ReportFilter};

pub use health::{server_error_total, Health, MinuteCount, ServerErrors, SERVER_ERROR_CODES};

/// Returns the server's metrics in the Prometheus text format; the dashboard reads its gRPC
/// error counters and active-client gauge from it.
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// How long a computed report is reused for the same query: many open dashboards cost one query
/// set per period.
const REPORT_CACHE_TTL: Duration = Duration::from_secs(5);

/// At most this many distinct report queries are cached.
const REPORT_CACHE_ENTRIES: usize = 32;

const INDEX_HTML: &str = include_str!("assets/index.html");
const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");

pub(crate) struct DashboardState {
    store: Store,
    metrics: Option<MetricsSource>,
    error_samples: Mutex<health::ErrorSamples>,
    report_cache: Mutex<HashMap<String, (Instant, Arc<String>)>>,
}

/// The dashboard's routes over `store`. With `metrics`, the health view shows the server's
/// errors. While the router is alive, a background task samples them every 15 s and derives the
/// report facts of new results (call this inside a Tokio runtime).
pub fn router(store: Store, metrics: Option<MetricsSource>) -> Router {
    let state = Arc::new(DashboardState {
        store,
        metrics,
        error_samples: Mutex::new(health::ErrorSamples::default()),
        report_cache: Mutex::new(HashMap::new()),
    });
    health::spawn_background_work(Arc::downgrade(&state));
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", DASHBOARD_JS) }),
        )
        .route(
            "/dashboard.css",
            get(|| async { asset("text/css; charset=utf-8", DASHBOARD_CSS) }),
        )
        .route("/api/health", get(health::health))
        .route("/api/report", get(report_json))
        .route("/me", get(personal::form).post(personal::results))
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Query parameters of `/api/report`, in the forms the `report` command accepts.
#[derive(Debug, Default, Deserialize)]
struct ReportQuery {
    since: Option<String>,
    until: Option<String>,
    api_key_name: Option<String>,
    bucket: Option<String>,
}

impl ReportQuery {
    fn filter(&self) -> Result<ReportFilter, String> {
        let now = now_unix_nanos();
        let bound = |text: &Option<String>| {
            text.as_deref()
                .filter(|t| !t.trim().is_empty())
                .map(|t| parse_time_bound(t, now))
                .transpose()
                .map_err(|e| e.to_string())
        };
        let bucket_seconds = match self.bucket.as_deref().filter(|b| !b.is_empty()) {
            None => None,
            Some(text) => match parse_span(text) {
                Some(Ok(span)) if span.as_secs() > 0 => Some(span.as_secs() as i64),
                _ => return Err(format!("invalid bucket {text:?}; write e.g. 5m, 1h or 1d")),
            },
        };
        Ok(ReportFilter {
            since: bound(&self.since)?,
            until: bound(&self.until)?,
            api_key_name: self.api_key_name.clone().filter(|n| !n.is_empty()),
            api_key_id: None,
            bucket_seconds,
        })
    }

    /// The cache key: relative times are rounded by the cache's lifetime anyway.
    fn cache_key(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}",
            self.since, self.until, self.api_key_name, self.bucket
        )
    }
}

async fn report_json(
    State(state): State<Arc<DashboardState>>,
    Query(query): Query<ReportQuery>,
) -> Response {
    let key = query.cache_key();
    if let Some(json) = cached(&state, &key) {
        return json_response(json.as_str().to_owned());
    }
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    match build_report(&state.store, &filter).await {
        Ok(report) => {
            let json = Arc::new(serde_json::to_string(&report).expect("a report serialises"));
            remember(&state, key, json.clone());
            json_response(json.as_str().to_owned())
        }
        Err(crate::ReportError::UnknownKeyName(name)) => {
            (StatusCode::NOT_FOUND, format!("no API key named {name:?}")).into_response()
        }
        Err(error) => {
            tracing::error!(target: "punchr::dashboard", %error, "report failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "report failed; see the server log",
            )
                .into_response()
        }
    }
}

fn cached(state: &DashboardState, key: &str) -> Option<Arc<String>> {
    let cache = state.report_cache.lock().expect("cache lock");
    cache
        .get(key)
        .filter(|(at, _)| at.elapsed() < REPORT_CACHE_TTL)
        .map(|(_, json)| json.clone())
}

fn remember(state: &DashboardState, key: String, json: Arc<String>) {
    let mut cache = state.report_cache.lock().expect("cache lock");
    cache.retain(|_, (at, _)| at.elapsed() < REPORT_CACHE_TTL);
    if cache.len() < REPORT_CACHE_ENTRIES {
        cache.insert(key, (Instant::now(), json));
    }
}

pub(crate) fn json_response(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
