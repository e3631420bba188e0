//! `punchr-server`: see the crate documentation of `punchr_server`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use punchr_server::config::{Cli, Command};

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
    if let Some(Command::Keys(command)) = &cli.command {
        let store = punchr_store::Store::open(&cli.server.db)
            .await
            .with_context(|| {
                format!(
                    "opening database {}",
                    punchr_store::redact_password(&cli.server.db)
                )
            })?;
        let output = punchr_server::keys::run(&store, command).await?;
        print!("{output}");
        store.close().await;
        return Ok(());
    }
    if let Some(Command::Report(args)) = &cli.command {
        print!("{}", punchr_report::cli::run(args, &cli.server.db).await?);
        return Ok(());
    }
    let server = punchr_server::start(&cli.server)
        .await
        .context("starting the server")?;
    let stopper = server.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(target: punchr_types::log_target::SERVER, event = "shutting_down");
        let _ = stopper.send(true);
    });
    server.wait().await.context("server stopped")?;
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
