//! The telemetry endpoint: Prometheus metrics and health checks.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use punchr_store::Store;

use crate::metrics::Metrics;

#[derive(Clone)]
struct Telemetry {
    metrics: Arc<Metrics>,
    store: Store,
}

/// `/metrics` (OpenMetrics text), `/healthz` (the process runs) and `/readyz` (the database
/// answers).
pub(crate) fn router(metrics: Arc<Metrics>, store: Store) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .with_state(Telemetry { metrics, store })
}

async fn metrics_text(State(telemetry): State<Telemetry>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        telemetry.metrics.encode(),
    )
}

async fn readiness(State(telemetry): State<Telemetry>) -> impl IntoResponse {
    // A read that touches the schema: fails when the database is down or not migrated.
    match telemetry.store.peer_db_id("").await {
        Ok(_) => (StatusCode::OK, "ready\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n"),
    }
}
