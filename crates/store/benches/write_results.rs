//! Baseline: how many hole punch results per second each engine stores.
//!
//! Results have the field's shape (3 attempts, 4 addresses each, 2 latency measurements, a NAT
//! mapping, network information), spread over 50 client hosts and 500 remotes. Each engine is
//! measured with one writer and with 16 concurrent writers (the server handles many clients at
//! once). Run with `scripts/bench` (starts a durable scratch PostgreSQL), or set
//! PUNCHR_TEST_POSTGRES_URL and run `cargo bench -p punchr-store --bench write_results`.
//! `PUNCHR_BENCH_RESULTS` sets the number of results per run (default 2000).

use std::time::{Duration, Instant};

use libp2p_identity::PeerId;
use punchr_store::{Engine, HolePunchRecord, Store};
use punchr_testutil::{fixtures, TestDb};

const CLIENTS: usize = 50;
const REMOTES: usize = 500;

struct Run {
    engine: Engine,
    writers: usize,
    results: usize,
    elapsed: Duration,
}

fn workload(api_key_id: i64, count: usize) -> Vec<HolePunchRecord> {
    let clients: Vec<PeerId> = (0..CLIENTS).map(|_| fixtures::peer_id()).collect();
    let remotes: Vec<PeerId> = (0..REMOTES).map(|_| fixtures::peer_id()).collect();
    (0..count)
        .map(|i| {
            let seq = u32::try_from(i).expect("bounded count");
            fixtures::hole_punch_result(
                api_key_id,
                &clients[i % CLIENTS],
                &remotes[i % REMOTES],
                seq,
            )
        })
        .collect()
}

async fn measure(engine: Engine, writers: usize, count: usize) -> Run {
    let db = TestDb::new(engine).await;
    let (key, _) = db.store.create_api_key("bench").await.expect("create key");
    let results = workload(key.id, count);
    let chunks: Vec<Vec<HolePunchRecord>> = results
        .chunks(count.div_ceil(writers))
        .map(<[HolePunchRecord]>::to_vec)
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let store: Store = db.store.clone();
            tokio::spawn(async move {
                for result in &chunk {
                    store
                        .insert_hole_punch_result(result)
                        .await
                        .expect("store result");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    let elapsed = started.elapsed();
    db.store.close().await;
    Run {
        engine,
        writers,
        results: count,
        elapsed,
    }
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("PUNCHR_BENCH_RESULTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut runs = Vec::new();
    for engine in [Engine::Sqlite, Engine::Postgres] {
        for writers in [1, 16] {
            runs.push(measure(engine, writers, count).await);
        }
    }
    let baseline = runs[0].results as f64 / runs[0].elapsed.as_secs_f64();
    println!("hole punch results written (3 attempts, 4 addresses each, 2 latency measurements)");
    println!(
        "{:<10} {:>8} {:>9} {:>10} {:>12} {:>16}",
        "engine", "writers", "results", "seconds", "results/s", "vs sqlite x1"
    );
    for run in &runs {
        let rate = run.results as f64 / run.elapsed.as_secs_f64();
        println!(
            "{:<10} {:>8} {:>9} {:>10.2} {:>12.0} {:>15.2}x",
            run.engine.name(),
            run.writers,
            run.results,
            run.elapsed.as_secs_f64(),
            rate,
            rate / baseline
        );
    }
}
