//! `punchr-client`: see the crate documentation of `punchr_client`.

use anyhow::Context;
use clap::Parser;
use punchr_client::config::ClientConfig;
use punchr_client::run::Client;
use punchr_types::log_target::CLIENT;
use tokio::sync::watch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ClientConfig::parse();
    punchr_logging::init(config.log_format);
    let telemetry = (config.telemetry_port != 0)
        .then(|| std::net::SocketAddr::new(config.telemetry_host, config.telemetry_port));
    let client = Client::start(config).context("starting the client")?;
    if let Some(address) = telemetry {
        let bound = punchr_client::telemetry::serve(address, client.metrics())
            .await
            .with_context(|| format!("serving telemetry on {address}"))?;
        tracing::info!(target: CLIENT, event = "telemetry_serving", %bound, "telemetry");
    }
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(target: CLIENT, event = "stopping", "stopping: the punch in flight is reported as CANCELLED");
        let _ = stop.send(true);
    });
    let summary = client.run(stopped).await.context("client stopped")?;
    tracing::info!(
        target: CLIENT,
        event = "stopped",
        punches = summary.punches,
        undelivered = summary.undelivered,
        "done"
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
