//! The live web dashboard the server serves on its own port (default 10002).
//!
//! - `/`: a health view (active clients, results per minute, honeypot peers per minute, server
//!   errors) and a performance view (success rate over time by transport, attempt distribution,
//!   time to direct connection, outcome mix). The page is plain HTML with vanilla JavaScript that
//!   fetches the JSON endpoints every few seconds and draws SVG; everything is embedded in the
//!   binary, nothing is loaded from elsewhere.
//! - `/api/health`: the health numbers as JSON.
//! - `/api/report`: the [`crate::Report`] as JSON, the same `report --format json` prints, for
//!   the same filter (`since`, `until`, `bucket` query parameters). It serves the whole campaign
//!   only: a key's own results need the key.
//! - `/me`: a volunteer's own results. The API key is sent in a form POST body, never in a URL,
//!   and never logged; revoked keys are refused.
//!
//! Everything here is open to whoever reaches the port, so the work it does is bounded: reports
//! hold at most [`crate::MAX_BUCKETS`] buckets, are cached by their typed query, run a few at a
//! time within a deadline ([`DashboardLimits`]), and request bodies are small. Every response
//! carries a Content-Security-Policy, `nosniff` and `frame-ancestors 'none'`.

mod health;
mod personal;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use punchr_store::{now_unix_nanos, ReadOnlyStore};
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::filter::{parse_bound, parse_bucket, TimeBound};
use crate::{build_report, ReportFilter};
use punchr_types::log_target::DASHBOARD;

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

/// How much report work the dashboard takes on for strangers.
#[derive(Debug, Clone, Copy)]
pub struct DashboardLimits {
    /// Reports computed at once; further requests wait for a turn within the deadline.
    pub concurrent_reports: usize,
    /// How long a report request may wait for its turn and take, before it is answered 503.
    pub report_deadline: Duration,
}

impl Default for DashboardLimits {
    fn default() -> Self {
        DashboardLimits {
            concurrent_reports: 2,
            report_deadline: Duration::from_secs(30),
        }
    }
}

/// The largest request body the dashboard reads (the personal page's form holds one key).
const MAX_BODY_BYTES: usize = 4 * 1024;

/// Sent with every page and asset: nothing is loaded from elsewhere or run inline, no other site
/// may frame the pages (clickjacking of the key form), and browsers take content types as sent.
const SECURITY_HEADERS: [(header::HeaderName, &str); 4] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; \
         style-src 'self' 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

pub(crate) struct DashboardState {
    store: ReadOnlyStore,
    metrics: Option<MetricsSource>,
    error_samples: Mutex<health::ErrorSamples>,
    report_cache: Mutex<HashMap<ReportKey, (Instant, Arc<String>)>>,
    limits: DashboardLimits,
    report_turns: Semaphore,
}

/// The dashboard's routes over `store` (a pool of its own, [`ReadOnlyStore::connect`]: reports
/// must not take the connections that store results, and the dashboard never writes). With
/// `metrics`, the health view shows the server's errors; while the router is alive, a background
/// task samples them every 15 s (call this inside a Tokio runtime).
pub fn router(
    store: ReadOnlyStore,
    metrics: Option<MetricsSource>,
    limits: DashboardLimits,
) -> Router {
    let state = Arc::new(DashboardState {
        store,
        metrics,
        error_samples: Mutex::new(health::ErrorSamples::default()),
        report_cache: Mutex::new(HashMap::new()),
        limits,
        report_turns: Semaphore::new(limits.concurrent_reports.max(1)),
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
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
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

/// A report query in its typed form: the cache key, so that `1s`, `01s` and `001s` (or `1d` and
/// `24h`) share one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ReportKey {
    since: Option<TimeBound>,
    until: Option<TimeBound>,
    bucket_seconds: Option<i64>,
}

impl ReportQuery {
    fn parse(&self) -> Result<ReportKey, String> {
        if self.api_key_name.as_deref().is_some_and(|n| !n.is_empty()) {
            // Anyone may load this endpoint; a key's own results need the key (`/me`), and the
            // answer must not tell which names exist.
            return Err(
                "api_key_name is not accepted here; a key's own results are on /me, which asks for the key"
                    .to_owned(),
            );
        }
        let bound = |text: &Option<String>| {
            text.as_deref()
                .filter(|t| !t.trim().is_empty())
                .map(parse_bound)
                .transpose()
                .map_err(|e| e.to_string())
        };
        let bucket_seconds = self
            .bucket
            .as_deref()
            .filter(|b| !b.is_empty())
            .map(parse_bucket)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(ReportKey {
            since: bound(&self.since)?,
            until: bound(&self.until)?,
            bucket_seconds,
        })
    }
}

impl ReportKey {
    /// The filter, relative times counted back from now (the cache's lifetime rounds them).
    fn filter(&self) -> ReportFilter {
        let now = now_unix_nanos();
        ReportFilter {
            since: self.since.map(|b| b.resolve(now)),
            until: self.until.map(|b| b.resolve(now)),
            api_key_name: None,
            api_key_id: None,
            bucket_seconds: self.bucket_seconds,
        }
    }
}

async fn report_json(
    State(state): State<Arc<DashboardState>>,
    Query(query): Query<ReportQuery>,
) -> Response {
    let key = match query.parse() {
        Ok(key) => key,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    if let Some(json) = cached(&state, &key) {
        return json_response(json.as_str().to_owned());
    }
    match bounded_report(&state, &key.filter()).await {
        Ok(report) => {
            let json = Arc::new(serde_json::to_string(&report).expect("a report serialises"));
            remember(&state, key, json.clone());
            json_response(json.as_str().to_owned())
        }
        Err(error) => report_error(error),
    }
}

/// Why a report was not served.
pub(crate) enum ReportRefusal {
    /// The report failed.
    Failed(crate::ReportError),
    /// No turn came, or the report took longer than the deadline.
    Busy,
}

/// Builds a report when one of the few turns is free, within the deadline.
pub(crate) async fn bounded_report(
    state: &DashboardState,
    filter: &ReportFilter,
) -> Result<crate::Report, ReportRefusal> {
    let work = async {
        let _turn = state.report_turns.acquire().await.ok();
        build_report(&state.store, filter).await
    };
    match tokio::time::timeout(state.limits.report_deadline, work).await {
        Ok(result) => result.map_err(ReportRefusal::Failed),
        Err(_) => Err(ReportRefusal::Busy),
    }
}

pub(crate) fn report_error(error: ReportRefusal) -> Response {
    match error {
        ReportRefusal::Failed(
            error @ (crate::ReportError::TooManyBuckets { .. }
            | crate::ReportError::InvalidBucket { .. }),
        ) => (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
        ReportRefusal::Busy => {
            tracing::warn!(target: DASHBOARD, event = "report_not_served", "report not served: no turn or deadline passed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "10")],
                "the dashboard is busy with other reports; try again shortly",
            )
                .into_response()
        }
        ReportRefusal::Failed(error) => {
            tracing::error!(target: DASHBOARD, event = "report_failed", %error, "report failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "report failed; see the server log",
            )
                .into_response()
        }
    }
}

fn cached(state: &DashboardState, key: &ReportKey) -> Option<Arc<String>> {
    let cache = state.report_cache.lock().expect("cache lock");
    cache
        .get(key)
        .filter(|(at, _)| at.elapsed() < REPORT_CACHE_TTL)
        .map(|(_, json)| json.clone())
}

fn remember(state: &DashboardState, key: ReportKey, json: Arc<String>) {
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
