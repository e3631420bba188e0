//! `punchr-honeypot`: see the crate documentation of `punchr_honeypot`.

use anyhow::Context;
use clap::Parser;
use punchr_honeypot::config::Cli;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let honeypot = punchr_honeypot::start(&cli.honeypot)
        .await
        .context("starting the honeypot")?;
    let stopper = honeypot.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(target: punchr_honeypot::TARGET, event = "shutting_down");
        let _ = stopper.send(true);
    });
    honeypot.wait().await.context("honeypot stopped")?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
