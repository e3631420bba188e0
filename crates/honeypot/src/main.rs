//! `punchr-honeypot`: see the crate documentation of `punchr_honeypot`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use punchr_honeypot::config::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    punchr_logging::init(cli.log_format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line naming what failed and why; a service manager's log shows it whole.
            eprintln!("error: {}", punchr_store::error_line(&*error));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
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
