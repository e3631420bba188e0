//! `punchr-lab`: see the crate documentation of `punchr_lab`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use punchr_lab::cli::Cli;
use punchr_lab::LabError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    punchr_logging::init(cli.log_format);
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
