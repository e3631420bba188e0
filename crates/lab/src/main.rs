//! `punchr-lab`: see the crate documentation of `punchr_lab`.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use punchr_lab::cli::Cli;
use punchr_lab::LabError;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let command = cli.command.name();
    match punchr_lab::commands::execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(LabError::Interrupted) => {
            eprintln!("punchr-lab: interrupted; everything the lab created was removed");
            ExitCode::from(130)
        }
        Err(e) => {
            // Errors are printed whole and without a backtrace: they say what to do.
            let e = Err::<(), _>(e)
                .with_context(|| format!("punchr-lab {command}"))
                .unwrap_err();
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
