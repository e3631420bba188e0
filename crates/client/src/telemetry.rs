//! The client's telemetry endpoint: Prometheus metrics, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use punchr_types::log_target::CLIENT;

/// Outcome label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// The client's metrics.
#[derive(Debug)]
pub struct ClientMetrics {
    registry: Registry,
    punches: Family<OutcomeLabel, Counter>,
    outbox_pending: Gauge,
    hosts: Gauge,
    ready: AtomicBool,
}

impl Default for ClientMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientMetrics {
    /// Creates and registers the metrics.
    pub fn new() -> ClientMetrics {
        let mut registry = Registry::default();
        let punches = Family::<OutcomeLabel, Counter>::default();
        let outbox_pending = Gauge::default();
        let hosts = Gauge::default();
        registry.register(
            "punchr_client_hole_punches",
            "Hole punches performed, by outcome",
            punches.clone(),
        );
        registry.register(
            "punchr_client_outbox_pending",
            "Results waiting for the server",
            outbox_pending.clone(),
        );
        registry.register(
            "punchr_client_hosts",
            "Hosts that bootstrapped and punch",
            hosts.clone(),
        );
        ClientMetrics {
            registry,
            punches,
            outbox_pending,
            hosts,
            ready: AtomicBool::new(false),
        }
    }

    /// Counts a finished punch.
    pub fn punched(&self, outcome: &str) {
        self.punches
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Sets the outbox size.
    pub fn outbox(&self, pending: usize) {
        self.outbox_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// Marks the client as punching with `hosts` hosts.
    pub fn ready(&self, hosts: usize) {
        self.hosts.set(i64::try_from(hosts).unwrap_or(i64::MAX));
        self.ready.store(true, Ordering::Relaxed);
    }

    fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String");
        text
    }
}

fn router(metrics: Arc<ClientMetrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<ClientMetrics>>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(m): State<Arc<ClientMetrics>>| async move {
                if m.ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ready\n").into_response()
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "bootstrapping\n").into_response()
                }
            }),
        )
        .with_state(metrics)
}

/// Serves the endpoint in the background; returns the bound address.
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<ClientMetrics>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router(metrics)).await {
            tracing::warn!(target: CLIENT, event = "telemetry_stopped", %error, "telemetry endpoint stopped");
        }
    });
    Ok(bound)
}
