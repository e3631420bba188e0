//! The telemetry endpoint: Prometheus metrics and health checks.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use punchr_store::Store;

use crate::health::WriteHealth;
use crate::metrics::Metrics;

#[derive(Clone)]
struct Telemetry {
    metrics: Arc<Metrics>,
    store: Store,
    write_health: Arc<WriteHealth>,
}

/// `/metrics` (Prometheus text format), `/healthz` (the process runs) and `/readyz` (the
/// database answers and did not refuse a write lately, see [`WriteHealth`]).
pub(crate) fn router(
    metrics: Arc<Metrics>,
    store: Store,
    write_health: Arc<WriteHealth>,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .with_state(Telemetry {
            metrics,
            store,
            write_health,
        })
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
    let answers = sqlx::query("SELECT 1")
        .execute(telemetry.store.pool())
        .await
        .is_ok();
    match (answers, telemetry.write_health.problem()) {
        (false, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable\n".to_owned(),
        ),
        (true, Some(problem)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n")),
        (true, None) => (StatusCode::OK, "ready\n".to_owned()),
    }
}
