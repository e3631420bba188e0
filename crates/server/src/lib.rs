//! The Punchr server: the gRPC API that hands NATed peers to clients and stores their results.
//!
//! `punchr-server` (this crate's binary) is a thin wrapper around [`start`], which opens the
//! database ([`punchr_store::Store`], SQLite by default), binds the gRPC and telemetry ports and
//! returns a [`RunningServer`]. Tests start servers the same way, in-process, on port 0.
//!
//! - [`service::PunchrService`] implements the three RPCs: Register, GetAddrInfo (peer
//!   selection, `punchr-original.md` §5) and TrackHolePunch (validated by [`validate`], then
//!   stored in one transaction);
//! - [`metrics::Metrics`] holds the Prometheus metrics served on the telemetry port.

pub mod config;
pub mod connections;
pub mod filter;
mod health;
pub mod keys;
pub mod metrics;
pub mod service;
mod telemetry;
pub mod validate;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use punchr_proto::punchr_service_server::PunchrServiceServer;
use punchr_store::{ReadOnlyStore, Store, StoreError};
use punchr_types::log_target::SERVER;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::{Identity, ServerTlsConfig};

pub use config::ServerConfig;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be read or used.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The gRPC transport failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The telemetry endpoint failed.
    #[error("telemetry endpoint failed: {0}")]
    Telemetry(std::io::Error),
}

/// A server that is running; stop it with [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    grpc_addr: SocketAddr,
    telemetry_addr: SocketAddr,
    dashboard_addr: Option<SocketAddr>,
    store: Store,
    stop: watch::Sender<bool>,
    grpc: JoinHandle<Result<(), ServerError>>,
    telemetry: JoinHandle<Result<(), ServerError>>,
    dashboard: Option<JoinHandle<Result<(), ServerError>>>,
}

impl RunningServer {
    /// Where gRPC listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn telemetry_addr(&self) -> SocketAddr {
        self.telemetry_addr
    }

    /// Where the web dashboard is served, unless its port was taken (see `--dashboard-port`).
    pub fn dashboard_addr(&self) -> Option<SocketAddr> {
        self.dashboard_addr
    }

    /// The database the server writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops accepting requests, lets the ones in flight finish, and closes the database.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.stop.send(true);
        self.wait().await
    }

    /// Runs until the server fails or [`RunningServer::shutdown`] is called elsewhere.
    pub async fn wait(self) -> Result<(), ServerError> {
        let grpc = self.grpc.await.unwrap_or(Ok(()));
        let _ = self.stop.send(true);
        let telemetry = self.telemetry.await.unwrap_or(Ok(()));
        if let Some(dashboard) = self.dashboard {
            let _ = dashboard.await;
        }
        self.store.close().await;
        grpc.and(telemetry)
    }

    /// A handle that stops the server from elsewhere (e.g. a signal handler).
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

fn tls_config(cert: &Path, key: &Path) -> Result<ServerTlsConfig, ServerError> {
    // With several rustls providers linked into one process (libp2p brings aws-lc-rs), rustls
    // needs to be told which one to use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |path: &Path| {
        std::fs::read(path)
            .map_err(|e| ServerError::Tls(format!("cannot read {}: {e}", path.display())))
    };
    Ok(ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?)))
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// How often the server derives the report facts of results it did not store itself.
const BACKFILL_EVERY: Duration = Duration::from_secs(15);

/// Until the server stops: derives, at start and then every [`BACKFILL_EVERY`], the report
/// facts of results stored other than through the write path (a database from before
/// `report_facts` existed, a bulk import), so that the dashboard's read-only reports see them.
async fn backfill_report_facts(store: Store, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(BACKFILL_EVERY);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        match store.backfill_report_facts().await {
            Ok(0) => {}
            Ok(added) => {
                tracing::info!(target: SERVER, event = "facts_backfilled", added, "derived report facts of results stored elsewhere");
            }
            Err(error) => {
                tracing::warn!(target: SERVER, event = "facts_backfill_failed", %error, "deriving report facts failed");
            }
        }
    }
}

/// The gRPC server's per-connection limits: streams, request time, header size, HTTP/2
/// keepalive (the connection cap, idle and header timeouts and TCP keepalive are
/// [`connections::GuardedListener`]'s).
fn grpc_builder(config: &ServerConfig) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(config.max_streams_per_connection)
        .concurrency_limit_per_connection(config.max_streams_per_connection as usize)
        .timeout(config.request_timeout)
        .http2_keepalive_interval(Some(config.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(config.http2_keepalive_timeout))
        .http2_max_header_list_size(16 * 1024)
        .http2_max_pending_accept_reset_streams(Some(32))
}

/// Opens the database, binds both ports and starts serving.
pub async fn start(config: &ServerConfig) -> Result<RunningServer, ServerError> {
    // Read the TLS files first: a bad path must not leave an open database or bound ports.
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        _ => None,
    };
    let store = Store::open(&config.db).await?;
    store.ensure_writable().await?;
    let grpc_listener = bind(SocketAddr::new(config.host, config.port)).await?;
    let telemetry_listener = bind(SocketAddr::new(
        config.telemetry_host,
        config.telemetry_port,
    ))
    .await?;
    let grpc_addr = grpc_listener.local_addr().map_err(ServerError::Telemetry)?;
    let telemetry_addr = telemetry_listener
        .local_addr()
        .map_err(ServerError::Telemetry)?;
    let metrics = Arc::new(metrics::Metrics::new());
    let write_health = Arc::new(health::WriteHealth::default());
    let service = service::PunchrService::new(
        store.clone(),
        metrics.clone(),
        config.selection_rules(),
        config.allow_anonymous,
        config.filter_draw(),
    )
    .with_rate_limit(config.rate_quota())
    .with_self_registration(config.self_registration())
    .with_write_health(write_health.clone());
    let mut builder = grpc_builder(config);
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let (stop, stop_rx) = watch::channel(false);
    let mut builder = builder.layer(connections::TrackRequestsLayer);
    let router = builder.add_service(
        PunchrServiceServer::new(service)
            .max_decoding_message_size(config.max_request_bytes)
            .max_encoding_message_size(config.max_request_bytes),
    );
    let grpc_stop = stop_rx.clone();
    let grpc_incoming =
        connections::GuardedListener::new(grpc_listener, config.grpc_connection_limits())
            .into_stream();
    let grpc = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(grpc_incoming, stopped(grpc_stop))
            .await
            .map_err(ServerError::from)
    });
    let dashboard_addr = SocketAddr::new(config.dashboard_host, config.dashboard_port);
    let (dashboard_addr, dashboard) = match TcpListener::bind(dashboard_addr).await {
        Ok(listener) => {
            let bound = listener.local_addr().ok();
            let metrics = metrics.clone();
            // Reports get connections of their own: however many strangers load them, results
            // keep their pool.
            let report_store = ReadOnlyStore::connect(&config.db, config.report_pool_size).await?;
            let app = punchr_report::dashboard::router(
                report_store,
                Some(Arc::new(move || metrics.encode())),
                config.dashboard_limits(),
            )
            .layer(axum::middleware::from_fn(
                connections::track_dashboard_request,
            ));
            let listener =
                connections::GuardedListener::new(listener, config.dashboard_connection_limits());
            let dashboard_stop = stop_rx.clone();
            let serving = tokio::spawn(async move {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<connections::ConnectionInfo>(),
                )
                .with_graceful_shutdown(stopped(dashboard_stop))
                .await
                .map_err(ServerError::Telemetry)
            });
            (bound, Some(serving))
        }
        Err(error) => {
            tracing::warn!(target: SERVER, event = "dashboard_disabled", addr = %dashboard_addr, %error, "dashboard disabled: cannot listen; pass a free --dashboard-port");
            (None, None)
        }
    };
    tokio::spawn(backfill_report_facts(store.clone(), stop_rx.clone()));
    let app = telemetry::router(metrics, store.clone(), write_health);
    let telemetry = tokio::spawn(async move {
        axum::serve(telemetry_listener, app)
            .with_graceful_shutdown(stopped(stop_rx))
            .await
            .map_err(ServerError::Telemetry)
    });
    tracing::info!(target: SERVER, event = "serving", %grpc_addr, %telemetry_addr, dashboard_addr = ?dashboard_addr, engine = store.engine().name(), tls = config.tls_cert.is_some(), "serving");
    Ok(RunningServer {
        grpc_addr,
        telemetry_addr,
        dashboard_addr,
        store,
        stop,
        grpc,
        telemetry,
        dashboard,
    })
}
