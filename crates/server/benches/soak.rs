//! Load soak, the figures: the real `punchr-server` binary on PostgreSQL under 500 simulated
//! clients (`punchr_loadgen`), a table every 10 s (elapsed, req/s, p99, errors, server RSS and
//! CPU) and a summary, and the server's RSS growth after the warm-up against the leak bound.
//!
//! `cargo bench -p punchr-server --bench soak` runs a minute on a scratch PostgreSQL server
//! (`eval "$(scripts/pg-scratch start)"; export PUNCHR_TEST_POSTGRES_URL`); the full soak is
//! `PUNCHR_SOAK_SECS=600`, on `scripts/pg-scratch start --durable`. `PUNCHR_SOAK_CLIENTS` and
//! `PUNCHR_SOAK_THINK_MS` change the load. Exits non-zero, without the summary, when the soak
//! itself failed: a call failed, nothing was sent, or an accepted result was not stored.
//! The behaviour under load without the figures is the soak test (`tests/integration/soak.rs`).

use std::process::ExitCode;
use std::time::Duration;

use punchr_loadgen::SoakConfig;

/// Final RSS over the post-warm-up baseline that counts as a leak. Memory is flat when the
/// figures say so; this bound only catches a leak, not the allocator's ups and downs.
const MAX_RSS_GROWTH: f64 = 1.5;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let config =
        match SoakConfig::from_env(env!("CARGO_BIN_EXE_punchr-server"), Duration::from_secs(60)) {
            Ok(config) => config,
            Err(error) => {
                eprintln!("soak bench: {error}");
                return ExitCode::FAILURE;
            }
        };
    let report = match punchr_loadgen::run(&config).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("soak bench: the soak did not run to its end: {error}");
            return ExitCode::FAILURE;
        }
    };
    let failures = report.failures();
    if !failures.is_empty() {
        eprintln!("soak bench: the soak failed, so its summary is not shown:");
        for failure in failures {
            eprintln!("  {failure}");
        }
        return ExitCode::FAILURE;
    }
    println!("{report}");
    let growth = report.memory.end_ratio();
    let verdict = if growth <= MAX_RSS_GROWTH {
        "within"
    } else {
        "OVER"
    };
    println!(
        "server RSS growth after the warm-up: {growth:.2}× ({} → {} bytes), {verdict} the leak bound of {MAX_RSS_GROWTH}×",
        report.memory.baseline_bytes, report.memory.end_bytes
    );
    ExitCode::SUCCESS
}
