//! `report_facts`: one narrow row per result with what the reports aggregate (migration
//! `0004_report.sql`), and the one definition of those facts, [`derive_facts_sql`].
//!
//! The store is the table's only writer. The write path derives a result's facts with that SQL
//! inside the result's own transaction, so reports never wait for a backfill;
//! [`Store::backfill_report_facts`] derives, with the same SQL, the facts of results stored any
//! other way (bulk imports, databases from before the table existed). Reports only read it.
//! `tests/integration/facts.rs` checks the rules on results of every shape and that a backfill from nothing
//! gives the rows the write path gave.

use sqlx::{AnyConnection, Row};
use tokio::task::JoinSet;

use crate::{Engine, Result, Store, StoreError};

/// The transports of `report_facts.transports`: each bit, its label and the first-hop protocol
/// names (`multi_addresses.transport`) it stands for; the last is every other transport.
pub const TRANSPORT_BITS: [(i64, &str, &[&str]); 6] = [
    (1, "TCP", &["tcp"]),
    (2, "QUIC", &["quic", "quic-v1"]),
    (4, "WebTransport", &["webtransport"]),
    (8, "WebRTC", &["webrtc-direct"]),
    (16, "WebSocket", &["ws", "wss"]),
    (32, "other", &[]),
];

/// The IP versions of `report_facts.ip_versions`: each bit, its label and the version
/// (`multi_addresses.ip_version`; none for an address without an IP).
pub const IP_BITS: [(i64, &str, Option<i64>); 3] = [
    (1, "IPv4", Some(4)),
    (2, "IPv6", Some(6)),
    (4, "other", None),
];

/// Results per INSERT … SELECT of a backfill.
const CHUNK_IDS: i64 = 100_000;

/// How far behind the newest fact a backfill looks for results that committed late (a
/// transaction that took an id before a faster one committed).
const LOOKBACK_IDS: i64 = 10_000;

/// The two masks' SQL, built once: the write path derives facts for every result it stores.
static TRANSPORT_MASK: std::sync::LazyLock<String> = std::sync::LazyLock::new(transport_mask);
static IP_MASK: std::sync::LazyLock<String> = std::sync::LazyLock::new(ip_mask);

/// SQL for the bit set of transports over the addresses `m` of a group, from [`TRANSPORT_BITS`].
fn transport_mask() -> String {
    let quoted = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let known: Vec<&str> = TRANSPORT_BITS
        .iter()
        .flat_map(|(_, _, names)| names.iter().copied())
        .collect();
    TRANSPORT_BITS
        .iter()
        .map(|(bit, _, names)| {
            let condition = if names.is_empty() {
                format!(
                    "m.transport IS NULL OR m.transport NOT IN ({})",
                    quoted(&known)
                )
            } else {
                format!("m.transport IN ({})", quoted(names))
            };
            format!("MAX(CASE WHEN {condition} THEN {bit} ELSE 0 END)")
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// SQL for the bit set of IP versions over the addresses `m` of a group, from [`IP_BITS`].
fn ip_mask() -> String {
    IP_BITS
        .iter()
        .map(|(bit, _, version)| {
            let condition = match version {
                Some(v) => format!("m.ip_version = {v}"),
                None => "m.ip_version IS NULL".to_owned(),
            };
            format!("MAX(CASE WHEN {condition} THEN {bit} ELSE 0 END)")
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The one definition of the facts: SQL that derives them for the results with
/// `low < id <= high` that have none. A SUCCESS is described by the direct connections it left
/// open (FINAL addresses), any other outcome by the direct addresses its attempts tried; the
/// successful attempt and the time to direct count only for a SUCCESS, and a direct connection
/// that predates the relayed one (the original Go client's tracer timestamps) has no time to
/// direct rather than a negative one.
pub fn derive_facts_sql(low: i64, high: i64) -> String {
    let range = |column: &str| format!("{column} > {low} AND {column} <= {high}");
    format!(
        "INSERT INTO report_facts (result_id, created_at, api_key_id, client_peer_id, remote_peer_id, outcome, \
           transports, ip_versions, attempts, successful_attempt, time_to_direct_ns) \
         SELECT r.id, r.created_at, r.api_key_id, r.client_peer_id, r.remote_peer_id, r.outcome, \
           COALESCE(d.transports, 0), COALESCE(d.ip_versions, 0), COALESCE(a.attempts, 0), \
           CASE WHEN r.outcome = 'SUCCESS' THEN a.successful_attempt END, \
           CASE WHEN r.outcome = 'SUCCESS' AND a.successful_ended_at >= r.connect_ended_at \
             THEN a.successful_ended_at - r.connect_ended_at END \
         FROM hole_punch_results r \
         LEFT JOIN ( \
           SELECT x.result_id AS id, {transports} AS transports, {ips} AS ip_versions \
           FROM hole_punch_results s \
           JOIN hole_punch_result_addresses x ON x.result_id = s.id \
           JOIN multi_addresses m ON m.id = x.multi_address_id \
           WHERE {s_range} AND s.outcome = 'SUCCESS' AND x.relationship = 'FINAL' AND NOT m.is_relay \
           GROUP BY x.result_id \
           UNION ALL \
           SELECT t.result_id, {transports}, {ips} \
           FROM hole_punch_results s \
           JOIN hole_punch_attempts t ON t.result_id = s.id \
           JOIN hole_punch_attempt_addresses y ON y.attempt_id = t.id \
           JOIN multi_addresses m ON m.id = y.multi_address_id \
           WHERE {s_range} AND s.outcome <> 'SUCCESS' AND NOT m.is_relay \
           GROUP BY t.result_id \
         ) d ON d.id = r.id \
         LEFT JOIN ( \
           SELECT t.result_id, COUNT(*) AS attempts, \
             MIN(CASE WHEN t.outcome IN ('SUCCESS', 'DIRECT_DIAL') THEN t.attempt_number END) AS successful_attempt, \
             MIN(CASE WHEN t.outcome IN ('SUCCESS', 'DIRECT_DIAL') THEN t.ended_at END) AS successful_ended_at \
           FROM hole_punch_attempts t WHERE {t_range} GROUP BY t.result_id \
         ) a ON a.result_id = r.id \
         WHERE {r_range} AND NOT EXISTS (SELECT 1 FROM report_facts f WHERE f.result_id = r.id) \
         ON CONFLICT (result_id) DO NOTHING",
        transports = TRANSPORT_MASK.as_str(),
        ips = IP_MASK.as_str(),
        s_range = range("s.id"),
        t_range = range("t.result_id"),
        r_range = range("r.id"),
    )
}

/// Derives the facts of the result `result_id`, just written on `conn` in its transaction.
pub(crate) async fn derive_for(conn: &mut AnyConnection, result_id: i64) -> Result<()> {
    let derived = sqlx::query(&derive_facts_sql(result_id - 1, result_id))
        .execute(conn)
        .await?
        .rows_affected();
    if derived != 1 {
        return Err(StoreError::Invariant(format!(
            "the facts of result {result_id} were derived {derived} times"
        )));
    }
    Ok(())
}

impl Store {
    /// Derives the facts of every stored result that has none yet (results the write path did
    /// not store); returns how many were added. PostgreSQL derives two chunks at a time (one
    /// per core of a small server); SQLite has one writer anyway.
    pub async fn backfill_report_facts(&self) -> Result<u64> {
        let pool = self.pool();
        let parallel = match self.engine() {
            Engine::Postgres => 2,
            Engine::Sqlite => 1,
        };
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(result_id), 0) FROM report_facts), \
                    (SELECT COALESCE(MAX(id), 0) FROM hole_punch_results)",
        )
        .fetch_one(pool)
        .await?;
        let (newest_fact, newest_result): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        let mut added = 0;
        let mut low = (newest_fact - LOOKBACK_IDS).max(0);
        let mut running = JoinSet::new();
        while low < newest_result || !running.is_empty() {
            while low < newest_result && running.len() < parallel {
                let high = (low + CHUNK_IDS).min(newest_result);
                let (pool, sql) = (pool.clone(), derive_facts_sql(low, high));
                running.spawn(async move { sqlx::query(&sql).execute(&pool).await });
                low = high;
            }
            if let Some(done) = running.join_next().await {
                added += done
                    .expect("a derivation task does not panic")?
                    .rows_affected();
            }
        }
        Ok(added)
    }
}
