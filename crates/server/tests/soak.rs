//! Load soak: the real `punchr-server` binary on PostgreSQL under 500 simulated clients, each
//! with its own API key, HTTP/2 connection and one or two hosts, on loopback only (the driver is
//! `punchr_loadgen`). It prints a table every 10 s (elapsed, req/s, p99, errors, server RSS; see
//! it with `--nocapture`) and a summary, and holds the server to: no failed call, every accepted
//! result stored, and memory that does not grow past the end of the warm-up.
//!
//! About a minute by default; `PUNCHR_SOAK_SECS` runs it longer (at most 600), e.g. the full
//! soak on a release build:
//! `PUNCHR_SOAK_SECS=600 cargo test -p punchr-server --release --test soak -- --nocapture`.
//! Needs the test PostgreSQL server (`PUNCHR_TEST_POSTGRES_URL`, `scripts/pg-scratch start`).
//! In a debug build the latencies mostly measure unoptimised code (driver and server); take
//! figures from a release build.

use punchr_loadgen::SoakConfig;

/// Final RSS over the post-warm-up baseline that counts as a leak. Memory is flat when the
/// figures say so; this bound only catches a leak, not the allocator's ups and downs.
const MAX_RSS_GROWTH: f64 = 1.5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_clients_on_postgres() {
    let config = SoakConfig::from_env(env!("CARGO_BIN_EXE_punchr-server")).expect("soak settings");
    let report = punchr_loadgen::run(&config).await.expect("the soak ran");
    println!("{report}");
    assert_eq!(
        report.errors(),
        0,
        "calls failed: {:?}",
        report.run.all().errors
    );
    assert!(report.sent_total() > 0, "no result was sent");
    assert_eq!(
        report.results_sent, report.results_stored,
        "results sent (left) and stored (right) differ"
    );
    assert!(
        report.memory.end_ratio() <= MAX_RSS_GROWTH,
        "server RSS grew from {} to {} bytes ({:.2}×) after the warm-up",
        report.memory.baseline_bytes,
        report.memory.end_bytes,
        report.memory.end_ratio()
    );
}
