//! How long a report takes over a million hole punch results, on each engine.
//!
//! Loads synthetic results of the field's shape straight into the tables with multi-row INSERTs
//! (the per-result transactional API would take an hour for a million): 50 API keys, 200 client
//! hosts, 100,000 remotes with a TCP and a QUIC address each, results spread over 30 days with
//! the outcome mix of a real campaign (35 % SUCCESS, 25 % FAILED, 20 % NO_STREAM, …), 1–3
//! attempts with two addresses each, INITIAL and FINAL addresses, and derives their report facts
//! (which the write path does per result). Then times `build_report` over everything, over the
//! last 24 hours, and for one API key.
//!
//! Run: `eval "$(scripts/pg-scratch start)"; cargo bench -p punchr-report --bench report_1m`
//! (without `PUNCHR_TEST_POSTGRES_URL` only SQLite runs). `PUNCHR_BENCH_RESULTS` sets the
//! number of results (default 1,000,000); `PUNCHR_BENCH_SQLITE=<file>` keeps the SQLite database
//! there for inspection (the PostgreSQL database's URL is printed); `RUST_LOG=punchr::report=debug`
//! shows each report section's time. Each report's total is checked against a count straight
//! from the tables (everything, the last 24 hours, the one key); a report that covers other
//! results fails the bench instead of being timed.

use std::fmt::Write;
use std::time::{Duration, Instant};

use punchr_report::{build_report, ReportFilter};
use punchr_store::{now_unix_nanos, Engine, ReadOnlyStore, Store};
use punchr_testutil::TestDb;

const API_KEYS: u64 = 50;
const CLIENT_HOSTS: u64 = 200;
const REMOTES: u64 = 100_000;
const RELAYS: u64 = 10;
const ROWS_PER_INSERT: usize = 1_000;
const SECOND: i64 = 1_000_000_000;
const DAY: i64 = 86_400 * SECOND;

const AGENTS: [&str; 6] = [
    "kubo/0.25.0/413a52d",
    "kubo/0.24.0/",
    "go-ipfs/0.18.1/675f8bd",
    "rust-libp2p/0.53.2",
    "lotus-1.25.0+mainnet",
    "punchr/remote/0.1.0",
];

/// A deterministic stream of pseudo-random numbers (SplitMix64).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Batches rows into multi-row INSERT statements.
struct BulkInsert<'a> {
    store: &'a Store,
    prefix: String,
    rows: Vec<String>,
    written: u64,
}

impl<'a> BulkInsert<'a> {
    fn new(store: &'a Store, table: &str, columns: &str) -> BulkInsert<'a> {
        // Ids are written explicitly so that rows can refer to each other without reading back.
        let overriding = match store.engine() {
            Engine::Postgres => " OVERRIDING SYSTEM VALUE",
            Engine::Sqlite => "",
        };
        BulkInsert {
            store,
            prefix: format!("INSERT INTO {table} ({columns}){overriding} VALUES "),
            rows: Vec::with_capacity(ROWS_PER_INSERT),
            written: 0,
        }
    }

    /// Adds a row, writing the batch when it is full.
    async fn row(&mut self, values: String) {
        self.push(values);
        if self.rows.len() >= ROWS_PER_INSERT {
            self.flush().await;
        }
    }

    /// Adds a row; the caller flushes (rows that refer to rows of another batch must wait until
    /// that batch is written).
    fn push(&mut self, values: String) {
        self.rows.push(values);
    }

    async fn flush(&mut self) {
        if self.rows.is_empty() {
            return;
        }
        let mut sql = self.prefix.clone();
        for (i, row) in self.rows.drain(..).enumerate() {
            if i > 0 {
                sql.push(',');
            }
            let _ = write!(sql, "({row})");
            self.written += 1;
        }
        sqlx::raw_sql(&sql)
            .execute(self.store.pool())
            .await
            .expect("bulk insert");
    }

    async fn finish(mut self) -> u64 {
        self.flush().await;
        self.written
    }
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Writes `results` synthetic results; returns the number of rows written.
async fn load(store: &Store, results: u64) -> u64 {
    let now = now_unix_nanos();
    let mut random = Random(7);
    let mut rows = 0;
    for i in 0..API_KEYS {
        store
            .create_api_key(&format!("volunteer-{i:02}"))
            .await
            .expect("key");
    }

    let mut peers = BulkInsert::new(
        store,
        "peers",
        "id, peer_id, agent_version, protocols, supports_dcutr, created_at, updated_at",
    );
    for id in 1..=CLIENT_HOSTS + REMOTES {
        let (name, agent) = if id <= CLIENT_HOSTS {
            (format!("client-host-{id}"), "punchr-rs/client/0.1.0")
        } else {
            (
                format!("remote-{id}"),
                AGENTS[(random.below(100) as usize * AGENTS.len()) / 100],
            )
        };
        peers
            .row(format!(
                "{id}, {}, {}, '[\"/libp2p/dcutr\"]', TRUE, {now}, {now}",
                quoted(&name),
                quoted(agent)
            ))
            .await;
    }
    rows += peers.finish().await;

    // Remote r (0-based) has a TCP address (id 2r + 1) and a QUIC address (id 2r + 2); every
    // fifth remote is on IPv6. Relay addresses follow.
    let mut addresses = BulkInsert::new(
        store,
        "multi_addresses",
        "id, maddr, is_relay, is_public, ip_address, ip_version, transport, created_at",
    );
    for r in 0..REMOTES {
        let (ip, version, family) = if r % 5 == 0 {
            (format!("2a01:4f8::{:x}", r + 1), 6, "ip6")
        } else {
            (
                format!("198.18.{}.{}", (r / 250) % 256, r % 250 + 1),
                4,
                "ip4",
            )
        };
        for (offset, transport, suffix) in
            [(1, "tcp", "tcp/4001"), (2, "quic-v1", "udp/4001/quic-v1")]
        {
            let maddr = format!("/{family}/{ip}/{suffix}/p2p/remote-{r}");
            addresses
                .row(format!(
                    "{}, {}, FALSE, TRUE, {}, {version}, '{transport}', {now}",
                    2 * r + offset,
                    quoted(&maddr),
                    quoted(&ip)
                ))
                .await;
        }
    }
    for k in 0..RELAYS {
        let id = 2 * REMOTES + 1 + k;
        let maddr = format!("/ip4/198.19.0.{k}/tcp/4001/p2p/relay-{k}/p2p-circuit");
        addresses
            .row(format!(
                "{id}, {}, TRUE, TRUE, '198.19.0.{k}', 4, 'tcp', {now}",
                quoted(&maddr)
            ))
            .await;
    }
    rows += addresses.finish().await;

    let mut hole_punches = BulkInsert::new(
        store,
        "hole_punch_results",
        "id, api_key_id, client_peer_id, remote_peer_id, connect_started_at, connect_ended_at, ended_at, has_direct_conns, outcome, error, protocol_filters, created_at",
    );
    let mut linked = BulkInsert::new(
        store,
        "hole_punch_result_addresses",
        "result_id, multi_address_id, relationship",
    );
    let mut attempts = BulkInsert::new(
        store,
        "hole_punch_attempts",
        "id, result_id, attempt_number, opened_at, started_at, ended_at, start_rtt_seconds, elapsed_seconds, outcome, error, direct_dial_error",
    );
    let mut attempt_addresses = BulkInsert::new(
        store,
        "hole_punch_attempt_addresses",
        "attempt_id, multi_address_id",
    );
    let mut attempt_id = 0u64;
    let spacing = 30 * DAY / results.max(1) as i64;
    for id in 1..=results {
        let created_at = now - (results - id) as i64 * spacing;
        let remote = random.below(REMOTES);
        let client = 1 + random.below(CLIENT_HOSTS);
        let api_key = 1 + (client - 1) % API_KEYS;
        let relay = 2 * REMOTES + 1 + random.below(RELAYS);
        let started = created_at - 40 * SECOND;
        let connected = started + 300_000_000 + random.below(1_700_000_000) as i64;
        let draw = random.below(100);
        let (outcome, tries, error) = match draw {
            0..=34 => (
                "SUCCESS",
                [1, 1, 1, 2, 2, 3][random.below(6) as usize],
                None,
            ),
            35..=59 => (
                "FAILED",
                3,
                Some("none of the 3 attempts succeeded".to_owned()),
            ),
            60..=79 => (
                "NO_STREAM",
                0,
                Some("/libp2p/dcutr stream was not opened after 30s".to_owned()),
            ),
            80..=89 => (
                "NO_CONNECTION",
                0,
                Some(format!(
                    "failed to dial: dial tcp 198.19.{}.{}:4001: connect: connection refused",
                    random.below(8),
                    random.below(250)
                )),
            ),
            90..=93 => ("CONNECTION_REVERSED", 0, None),
            94..=97 => ("CANCELLED", 1, Some("context canceled".to_owned())),
            _ => (
                "UNKNOWN",
                0,
                Some("unknown hole punch attempt outcome".to_owned()),
            ),
        };
        let direct_address = 2 * remote + 1 + random.below(2);
        let mut attempt_end = connected;
        for number in 1..=tries {
            attempt_id += 1;
            let opened = attempt_end + 50_000_000;
            let last = number == tries;
            let (attempt_outcome, elapsed) = match outcome {
                "SUCCESS" if last => (
                    "SUCCESS",
                    0.2 + (random.below(20_000) as f64 / 1_000.0).powf(1.5) / 10.0,
                ),
                "CANCELLED" => ("CANCELLED", 0.5),
                _ => ("FAILED", 0.6 + random.below(500) as f64 / 1_000.0),
            };
            attempt_end = opened + (elapsed * SECOND as f64) as i64;
            let attempt_error = match attempt_outcome {
                "SUCCESS" => "NULL".to_owned(),
                "CANCELLED" => "'context canceled'".to_owned(),
                _ => quoted(&format!(
                    "dial tcp 198.18.{}.{}:4001: i/o timeout",
                    random.below(4),
                    random.below(250)
                )),
            };
            attempts.push(format!(
                    "{attempt_id}, {id}, {number}, {opened}, {}, {attempt_end}, 0.0625, {elapsed}, '{attempt_outcome}', {attempt_error}, NULL",
                    opened + 1_000_000
                ));
            for address in [2 * remote + 1, 2 * remote + 2] {
                attempt_addresses.push(format!("{attempt_id}, {address}"));
            }
        }
        let ended = attempt_end + 100_000_000;
        let direct = matches!(outcome, "SUCCESS" | "CONNECTION_REVERSED");
        hole_punches.push(format!(
                "{id}, {api_key}, {client}, {}, {started}, {connected}, {ended}, {}, '{outcome}', {}, '[]', {created_at}",
                CLIENT_HOSTS + 1 + remote,
                if direct { "TRUE" } else { "FALSE" },
                error.as_deref().map_or("NULL".to_owned(), quoted)
            ));
        linked.push(format!("{id}, {relay}, 'INITIAL'"));
        if outcome != "NO_CONNECTION" {
            linked.push(format!("{id}, {relay}, 'FINAL'"));
        }
        if direct {
            linked.push(format!("{id}, {direct_address}, 'FINAL'"));
        }
        if hole_punches.rows.len() >= ROWS_PER_INSERT {
            hole_punches.flush().await;
            linked.flush().await;
            attempts.flush().await;
            attempt_addresses.flush().await;
        }
    }
    rows += hole_punches.finish().await;
    rows += linked.finish().await;
    rows += attempts.finish().await;
    rows += attempt_addresses.finish().await;
    if store.engine() == Engine::Postgres {
        // What autovacuum does after a bulk load; a campaign's database is analysed routinely.
        sqlx::raw_sql("VACUUM ANALYZE")
            .execute(store.pool())
            .await
            .expect("analyse");
    }
    rows
}

/// A scratch database, or a SQLite file kept for inspection.
enum KeptOrTest {
    Kept(Store),
    Test(TestDb),
}

impl KeptOrTest {
    fn location(&self) -> String {
        match self {
            KeptOrTest::Kept(_) => std::env::var("PUNCHR_BENCH_SQLITE").unwrap_or_default(),
            KeptOrTest::Test(db) => db.location.clone(),
        }
    }
}

impl std::ops::Deref for KeptOrTest {
    type Target = Store;
    fn deref(&self) -> &Store {
        match self {
            KeptOrTest::Kept(store) => store,
            KeptOrTest::Test(db) => &db.store,
        }
    }
}

/// Runs `build_report` three times; returns the first and the fastest duration, and the
/// number of results the report covers (the same each time, or the bench fails).
async fn time_report(store: &ReadOnlyStore, filter: &ReportFilter) -> (Duration, Duration, u64) {
    let mut times = Vec::new();
    let mut total = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let report = build_report(store, filter).await.expect("report");
        times.push(started.elapsed());
        let covered = report.outcomes.total();
        assert!(
            times.len() == 1 || covered == total,
            "a repeated report covered {covered} results, the first {total}"
        );
        total = covered;
    }
    (times[0], *times.iter().min().expect("three runs"), total)
}

/// The single number a `SELECT COUNT(*) …` returns, straight from the tables.
async fn stored_count(store: &Store, sql: &str) -> u64 {
    let count: i64 = sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect("count the stored results");
    u64::try_from(count).expect("a count")
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[tokio::main]
async fn main() {
    let results: u64 = std::env::var("PUNCHR_BENCH_RESULTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let mut engines = vec![Engine::Sqlite];
    if std::env::var(punchr_testutil::POSTGRES_URL_VAR).is_ok() {
        engines.push(Engine::Postgres);
    } else {
        eprintln!(
            "{} is not set: PostgreSQL is skipped",
            punchr_testutil::POSTGRES_URL_VAR
        );
    }
    let mut lines = vec![format!(
        "{:<9} {:>9} {:>10} {:>7} | {:>22} {:>22} {:>22}",
        "engine",
        "results",
        "rows",
        "load",
        "report, all (1st/best)",
        "last 24 h (1st/best)",
        "one API key (1st/best)"
    )];
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    for engine in engines {
        let db = match (engine, std::env::var("PUNCHR_BENCH_SQLITE")) {
            (Engine::Sqlite, Ok(path)) => {
                let _ = std::fs::remove_file(&path);
                let store = Store::open(&path).await.expect("open the kept SQLite file");
                KeptOrTest::Kept(store)
            }
            _ => KeptOrTest::Test(TestDb::new(engine).await),
        };
        eprintln!("{}: {}", engine.name(), db.location());
        let started = Instant::now();
        let rows = load(&db, results).await;
        // The write path derives each result's report facts in the result's own transaction;
        // rows loaded straight into the tables get theirs here, as part of the load.
        let facts = punchr_report::refresh_facts(&db)
            .await
            .expect("derive facts");
        assert_eq!(facts, results, "a fact per loaded result");
        let load_time = started.elapsed();
        eprintln!(
            "{}: loaded {rows} rows in {}",
            engine.name(),
            seconds(load_time)
        );
        let reader = db.read_only();
        let all = time_report(&reader, &ReportFilter::default()).await;
        assert_eq!(all.2, results, "every result is in the report");
        let day = ReportFilter {
            since: Some(now_unix_nanos() - DAY),
            ..ReportFilter::default()
        };
        let recent = time_report(&reader, &day).await;
        let in_the_last_day = stored_count(
            &db,
            &format!(
                "SELECT COUNT(*) FROM hole_punch_results WHERE created_at >= {}",
                day.since.expect("a start")
            ),
        )
        .await;
        assert_eq!(
            recent.2, in_the_last_day,
            "the last 24 hours' report covers the results stored in them"
        );
        let one_key = ReportFilter {
            api_key_name: Some("volunteer-07".to_owned()),
            ..ReportFilter::default()
        };
        let key = time_report(&reader, &one_key).await;
        let of_the_key = stored_count(
            &db,
            "SELECT COUNT(*) FROM hole_punch_results r JOIN api_keys k ON k.id = r.api_key_id \
             WHERE k.name = 'volunteer-07'",
        )
        .await;
        assert_eq!(
            key.2, of_the_key,
            "the one key's report covers the key's results"
        );
        // A filter that selected nothing would time an empty report.
        assert!(
            in_the_last_day > 0 && of_the_key > 0,
            "filters that select results"
        );
        let pair = |(first, best, _): (Duration, Duration, u64)| {
            format!("{} / {}", seconds(first), seconds(best))
        };
        lines.push(format!(
            "{:<9} {:>9} {:>10} {:>7} | {:>22} {:>22} {:>22}",
            engine.name(),
            results,
            rows,
            format!("{:.0} s", load_time.as_secs_f64()),
            pair(all),
            pair(recent),
            pair(key)
        ));
        db.close().await;
    }
    println!("\nReport over {results} hole punch results (target: under 5 s)\n");
    for line in lines {
        println!("{line}");
    }
}
