//! Load soak, the behaviour half: the real `punchr-server` binary on PostgreSQL under 500
//! simulated clients, each with its own API key, HTTP/2 connection and one or two hosts, on
//! loopback only (the driver is `punchr_loadgen`). Under that load no call may fail and every
//! result the server accepted must be in the database; a short run shows both as well as a long
//! one, since every client makes several rounds in it.
//!
//! The figures (req/s, p99, RSS over time and its growth after the warm-up) are the soak bench's,
//! `crates/server/benches/soak.rs`. Needs the test PostgreSQL server
//! (`PUNCHR_TEST_POSTGRES_URL`, `scripts/pg-scratch start`).

use std::time::Duration;

use punchr_loadgen::SoakConfig;

/// Long enough for every client to register and make rounds (a round takes about the 3 s think
/// time), short enough for CI.
const DURATION: Duration = Duration::from_secs(12);

/// Remotes for the short run: the server may hand each out 10 times a minute (its default
/// `--remote-limit`), so 600 serve 6000 handouts a minute, far more than 500 clients ask for in
/// 12 s, and seeding them takes a fifth of the bench's 3000.
const REMOTES: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_clients_on_postgres() {
    let mut config =
        SoakConfig::from_env(env!("CARGO_BIN_EXE_punchr-server"), DURATION).expect("soak settings");
    config.remotes = REMOTES;
    let report = punchr_loadgen::run(&config).await.expect("the soak ran");
    println!("{report}");
    let failures = report.failures();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
