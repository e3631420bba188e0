//! Hole punch results: written whole in one transaction, read back whole.
//!
//! Write order follows the original's final version (`punchr-original.md` §4.4) without its bugs
//! (§14): attempts exist before their addresses are linked, duplicate addresses are linked once,
//! and any failure rolls everything back instead of being swallowed.

use std::collections::{BTreeSet, HashMap};

use multiaddr::Multiaddr;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Connection, Row};

use crate::engine::discard_if_failed;
use crate::peers::{upsert_multi_addresses, upsert_peer, FactSource};
use crate::reason::failure_reason;
use crate::sql::{flag, optional_flag};
use crate::{
    now_unix_nanos, AttemptOutcome, HandshakeRole, HolePunchAttemptRecord, HolePunchRecord,
    LatencyKind, LatencyRecord, NatMapping, NetworkInformation, Outcome, PeerInfo, Relationship,
    Result, RoleStrategy, Store, StoreError,
};

/// What [`Store::insert_hole_punch_result`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsertedResult {
    /// The stored result's id.
    pub id: i64,
    /// False when the same report (API key and report id) was stored before.
    pub new: bool,
}

impl Store {
    /// Writes a result with all its parts in one transaction. Either all of it is stored or, on
    /// any error, nothing. A result whose report id this API key delivered before is not stored
    /// again; the earlier one's id is returned.
    pub async fn insert_hole_punch_result(
        &self,
        result: &HolePunchRecord,
    ) -> Result<InsertedResult> {
        if let Some(id) = self.result_with_report_id(result).await? {
            return Ok(InsertedResult { id, new: false });
        }
        let mut conn = self.pool().acquire().await?;
        let written = async {
            let mut tx = conn.begin().await?;
            match insert_result(&mut tx, result).await {
                Ok(id) => {
                    tx.commit().await?;
                    Ok(id)
                }
                Err(error) => {
                    // The write's own error says more than a failed rollback would; the
                    // connection is closed below either way.
                    let _ = tx.rollback().await;
                    Err(error)
                }
            }
        }
        .await;
        discard_if_failed(&mut conn, &written);
        // Back to the pool (or closed) before the lookup below takes a connection: holding
        // one while waiting for another deadlocks racing writers once the pool is used up.
        drop(conn);
        match written {
            Ok(id) => Ok(InsertedResult { id, new: true }),
            // A concurrent delivery of the same report won the race: that is success.
            Err(error) => match self.result_with_report_id(result).await? {
                Some(id) => Ok(InsertedResult { id, new: false }),
                None => Err(error),
            },
        }
    }

    async fn result_with_report_id(&self, result: &HolePunchRecord) -> Result<Option<i64>> {
        let Some(report_id) = &result.report_id else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT id FROM hole_punch_results WHERE api_key_id = $1 AND report_id = $2",
        )
        .bind(result.api_key_id)
        .bind(report_id.clone())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Reads a stored result back in the shape it was written. Address lists come back sorted
    /// and without duplicates; attempts in their order.
    pub async fn load_hole_punch_result(&self, id: i64) -> Result<Option<HolePunchRecord>> {
        let mut conn = self.pool().acquire().await?;
        load_result(&mut conn, id).await
    }
}

async fn insert_result(conn: &mut AnyConnection, result: &HolePunchRecord) -> Result<i64> {
    let client_id = upsert_peer(
        &mut *conn,
        &PeerInfo::bare(&result.client_peer_id),
        FactSource::Other,
    )
    .await?;
    let remote_id = upsert_peer(
        &mut *conn,
        &PeerInfo::bare(&result.remote_peer_id),
        FactSource::Other,
    )
    .await?;
    let address_ids = upsert_multi_addresses(&mut *conn, all_addresses(result)).await?;
    let listen_set_id =
        upsert_listen_set(&mut *conn, &result.listen_addresses, &address_ids).await?;
    let protocol_filters = serde_json::to_string(&result.protocol_filters).expect("ints serialise");
    let created_at = now_unix_nanos();
    let row = sqlx::query(
        "INSERT INTO hole_punch_results (api_key_id, client_peer_id, remote_peer_id, listen_address_set_id, \
           connect_started_at, connect_ended_at, ended_at, has_direct_conns, outcome, error, protocol_filters, created_at, \
           report_id, role_strategy, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
    )
    .bind(result.api_key_id)
    .bind(client_id)
    .bind(remote_id)
    .bind(listen_set_id)
    .bind(result.connect_started_at)
    .bind(result.connect_ended_at)
    .bind(result.ended_at)
    .bind(result.has_direct_conns)
    .bind(result.outcome.as_str())
    .bind(result.error.as_deref())
    .bind(protocol_filters)
    .bind(created_at)
    .bind(result.report_id.clone())
    .bind(result.role_strategy.map(RoleStrategy::as_str))
    .bind(failure_reason(result.error.as_deref()))
    .fetch_one(&mut *conn)
    .await?;
    let result_id: i64 = row.try_get(0)?;

    link_result_addresses(
        &mut *conn,
        result_id,
        Relationship::Initial,
        &result.remote_addresses,
        &address_ids,
    )
    .await?;
    link_result_addresses(
        &mut *conn,
        result_id,
        Relationship::Final,
        &result.open_addresses,
        &address_ids,
    )
    .await?;
    for (index, attempt) in result.attempts.iter().enumerate() {
        insert_attempt(&mut *conn, result_id, index + 1, attempt, &address_ids).await?;
    }
    for measurement in &result.latency_measurements {
        insert_latency_measurement(&mut *conn, result_id, measurement, &address_ids).await?;
    }
    for mapping in &result.nat_mappings {
        insert_nat_mapping(&mut *conn, result_id, mapping).await?;
    }
    if let Some(info) = &result.network_information {
        insert_network_information(&mut *conn, result_id, info).await?;
    }
    // The report facts are derived now, in this transaction and by the one definition the
    // backfill uses too, so that no report ever has to derive a backlog first.
    crate::facts::derive_for(&mut *conn, result_id).await?;
    Ok(result_id)
}

fn all_addresses(result: &HolePunchRecord) -> impl Iterator<Item = &Multiaddr> {
    result
        .remote_addresses
        .iter()
        .chain(&result.open_addresses)
        .chain(&result.listen_addresses)
        .chain(result.attempts.iter().flat_map(|a| &a.addresses))
        .chain(result.latency_measurements.iter().map(|m| &m.address))
}

/// Distinct ids of `maddrs`, ascending.
fn distinct_ids(maddrs: &[Multiaddr], ids: &HashMap<String, i64>) -> BTreeSet<i64> {
    maddrs.iter().map(|m| ids[&m.to_string()]).collect()
}

/// Stores a set of listen addresses once, identified by a digest of its sorted member ids.
async fn upsert_listen_set(
    conn: &mut AnyConnection,
    maddrs: &[Multiaddr],
    ids: &HashMap<String, i64>,
) -> Result<Option<i64>> {
    let members = distinct_ids(maddrs, ids);
    if members.is_empty() {
        return Ok(None);
    }
    let joined = members
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(":");
    let digest = Sha256::digest(joined.as_bytes()).to_vec();
    let inserted = sqlx::query(
        "INSERT INTO listen_address_sets (digest) VALUES ($1) ON CONFLICT (digest) DO NOTHING RETURNING id",
    )
    .bind(digest.clone())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = inserted else {
        let row = sqlx::query("SELECT id FROM listen_address_sets WHERE digest = $1")
            .bind(digest)
            .fetch_one(&mut *conn)
            .await?;
        return Ok(Some(row.try_get(0)?));
    };
    let set_id: i64 = row.try_get(0)?;
    for member in members {
        sqlx::query(
            "INSERT INTO listen_address_set_members (set_id, multi_address_id) VALUES ($1, $2)",
        )
        .bind(set_id)
        .bind(member)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(set_id))
}

async fn link_result_addresses(
    conn: &mut AnyConnection,
    result_id: i64,
    relationship: Relationship,
    maddrs: &[Multiaddr],
    ids: &HashMap<String, i64>,
) -> Result<()> {
    for address_id in distinct_ids(maddrs, ids) {
        sqlx::query(
            "INSERT INTO hole_punch_result_addresses (result_id, multi_address_id, relationship) VALUES ($1, $2, $3)",
        )
        .bind(result_id)
        .bind(address_id)
        .bind(relationship.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn insert_attempt(
    conn: &mut AnyConnection,
    result_id: i64,
    number: usize,
    attempt: &HolePunchAttemptRecord,
    ids: &HashMap<String, i64>,
) -> Result<()> {
    let row = sqlx::query(
        "INSERT INTO hole_punch_attempts (result_id, attempt_number, opened_at, started_at, ended_at, \
           start_rtt_seconds, elapsed_seconds, outcome, error, direct_dial_error, elapsed_time_raw, handshake_role, reason) \
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $12 THEN $6 END, $7, $8, $9, $10, CASE WHEN $13 THEN $11 END, $14, $15) \
         RETURNING id",
    )
    .bind(result_id)
    .bind(i64::try_from(number).map_err(|_| too_many("hole_punch_attempts"))?)
    .bind(attempt.opened_at)
    .bind(attempt.started_at)
    .bind(attempt.ended_at)
    .bind(present(attempt.start_rtt_seconds).0)
    .bind(attempt.elapsed_seconds)
    .bind(attempt.outcome.as_str())
    .bind(attempt.error.as_deref())
    .bind(attempt.direct_dial_error.as_deref())
    .bind(present(attempt.elapsed_time_raw).0)
    .bind(present(attempt.start_rtt_seconds).1)
    .bind(present(attempt.elapsed_time_raw).1)
    .bind(attempt.handshake_role.map(HandshakeRole::as_str))
    .bind(failure_reason(attempt.error.as_deref()))
    .fetch_one(&mut *conn)
    .await?;
    let attempt_id: i64 = row.try_get(0)?;
    for address_id in distinct_ids(&attempt.addresses, ids) {
        sqlx::query("INSERT INTO hole_punch_attempt_addresses (attempt_id, multi_address_id) VALUES ($1, $2)")
            .bind(attempt_id)
            .bind(address_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn too_many(field: &'static str) -> StoreError {
    StoreError::InvalidValue {
        field,
        reason: "too many entries".into(),
    }
}

/// An optional float as a value and a flag, for `CASE WHEN <flag> THEN <value> END`. sqlx 0.8's
/// Any driver sends a NULL `f64` to PostgreSQL typed as `float4` (it swaps the Real and Double
/// kinds for NULLs) and the connection caches the statement with that type, so a later non-NULL
/// `f64` on the same statement fails ("incorrect binary data format"): the original Rust
/// client's results (no start RTT) then broke our client's. A float bound never as NULL keeps
/// its `float8` type.
fn present(value: Option<f64>) -> (f64, bool) {
    (value.unwrap_or(0.0), value.is_some())
}

/// Statistics over the successful samples (negative values mark failed ones).
#[derive(Debug, PartialEq)]
struct RttStats {
    ok: i64,
    failed: i64,
    avg: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    std: Option<f64>,
}

fn rtt_stats(rtts: &[f64]) -> RttStats {
    let ok: Vec<f64> = rtts.iter().copied().filter(|rtt| *rtt >= 0.0).collect();
    let n = ok.len() as f64;
    let avg = (!ok.is_empty()).then(|| ok.iter().sum::<f64>() / n);
    let std = avg.filter(|_| ok.len() >= 2).map(|avg| {
        let squares: f64 = ok.iter().map(|rtt| (rtt - avg).powi(2)).sum();
        (squares / (n - 1.0)).sqrt()
    });
    RttStats {
        ok: ok.len() as i64,
        failed: (rtts.len() - ok.len()) as i64,
        avg,
        min: ok.iter().copied().reduce(f64::min),
        max: ok.iter().copied().reduce(f64::max),
        std,
    }
}

async fn insert_latency_measurement(
    conn: &mut AnyConnection,
    result_id: i64,
    measurement: &LatencyRecord,
    ids: &HashMap<String, i64>,
) -> Result<()> {
    // What the client says about the pinged peer stays with the measurement: a client must not
    // change the facts the selection relies on (a remote's DCUtR support).
    let peer_id = upsert_peer(
        &mut *conn,
        &PeerInfo::bare(&measurement.peer.peer_id),
        FactSource::Other,
    )
    .await?;
    let mut protocols = measurement.peer.protocols.clone();
    protocols.sort();
    let stats = rtt_stats(&measurement.rtts);
    sqlx::query(
        "INSERT INTO latency_measurements (result_id, peer_id, multi_address_id, kind, rtts, rtt_errs, \
           samples_ok, samples_failed, rtt_avg, rtt_min, rtt_max, rtt_std, agent_version, protocols) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $15 THEN $9 END, CASE WHEN $15 THEN $10 END, \
           CASE WHEN $15 THEN $11 END, CASE WHEN $16 THEN $12 END, $13, $14)",
    )
    .bind(result_id)
    .bind(peer_id)
    .bind(ids[&measurement.address.to_string()])
    .bind(measurement.kind.as_str())
    .bind(serde_json::to_string(&measurement.rtts).map_err(|e| StoreError::InvalidValue {
        field: "rtts",
        reason: e.to_string(),
    })?)
    .bind(serde_json::to_string(&measurement.rtt_errors).expect("strings serialise"))
    .bind(stats.ok)
    .bind(stats.failed)
    .bind(present(stats.avg).0)
    .bind(present(stats.min).0)
    .bind(present(stats.max).0)
    .bind(present(stats.std).0)
    .bind(measurement.peer.agent_version.as_deref())
    .bind(serde_json::to_string(&protocols).expect("strings serialise"))
    // avg, min and max exist together (any successful sample), std from two samples on.
    .bind(stats.avg.is_some())
    .bind(stats.std.is_some())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_nat_mapping(
    conn: &mut AnyConnection,
    result_id: i64,
    mapping: &NatMapping,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO nat_mappings (result_id, internal_port, external_port, protocol, addr, addr_network) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(result_id)
    .bind(mapping.internal_port)
    .bind(mapping.external_port)
    .bind(&mapping.protocol)
    .bind(&mapping.addr)
    .bind(&mapping.addr_network)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_network_information(
    conn: &mut AnyConnection,
    result_id: i64,
    info: &NetworkInformation,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO network_information (result_id, supports_ipv6, supports_ipv6_error, router_login_html, \
           router_login_html_error) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(result_id)
    .bind(info.supports_ipv6)
    .bind(info.supports_ipv6_error.as_deref())
    .bind(info.router_login_html.as_deref())
    .bind(info.router_login_html_error.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

// ---- reading back ----

async fn load_result(conn: &mut AnyConnection, id: i64) -> Result<Option<HolePunchRecord>> {
    let row = sqlx::query(
        "SELECT r.api_key_id, r.report_id, c.peer_id AS client, p.peer_id AS remote, r.listen_address_set_id, \
           r.connect_started_at, r.connect_ended_at, r.ended_at, r.has_direct_conns, r.outcome, r.error, \
           r.protocol_filters, r.role_strategy \
         FROM hole_punch_results r JOIN peers c ON c.id = r.client_peer_id JOIN peers p ON p.id = r.remote_peer_id \
         WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let listen_set_id: Option<i64> = row.try_get("listen_address_set_id")?;
    let listen_addresses = match listen_set_id {
        Some(set_id) => addresses(&mut *conn, LISTEN_SET_ADDRESSES, set_id, None).await?,
        None => Vec::new(),
    };
    Ok(Some(HolePunchRecord {
        api_key_id: row.try_get("api_key_id")?,
        report_id: row.try_get("report_id")?,
        client_peer_id: row.try_get("client")?,
        remote_peer_id: row.try_get("remote")?,
        remote_addresses: addresses(
            &mut *conn,
            RESULT_ADDRESSES,
            id,
            Some(Relationship::Initial),
        )
        .await?,
        open_addresses: addresses(&mut *conn, RESULT_ADDRESSES, id, Some(Relationship::Final))
            .await?,
        listen_addresses,
        connect_started_at: row.try_get("connect_started_at")?,
        connect_ended_at: row.try_get("connect_ended_at")?,
        ended_at: row.try_get("ended_at")?,
        has_direct_conns: flag(&row, "has_direct_conns")?,
        outcome: stored(Outcome::from_stored, &row, "outcome")?,
        error: row.try_get("error")?,
        protocol_filters: json(&row, "protocol_filters")?,
        attempts: load_attempts(&mut *conn, id).await?,
        latency_measurements: load_latency_measurements(&mut *conn, id).await?,
        network_information: load_network_information(&mut *conn, id).await?,
        nat_mappings: load_nat_mappings(&mut *conn, id).await?,
        role_strategy: optional_stored(RoleStrategy::from_stored, &row, "role_strategy")?,
    }))
}

const LISTEN_SET_ADDRESSES: &str = "SELECT m.maddr FROM listen_address_set_members x \
    JOIN multi_addresses m ON m.id = x.multi_address_id WHERE x.set_id = $1 ORDER BY m.maddr";
const RESULT_ADDRESSES: &str = "SELECT m.maddr FROM hole_punch_result_addresses x \
    JOIN multi_addresses m ON m.id = x.multi_address_id WHERE x.result_id = $1 AND x.relationship = $2 ORDER BY m.maddr";
const ATTEMPT_ADDRESSES: &str = "SELECT m.maddr FROM hole_punch_attempt_addresses x \
    JOIN multi_addresses m ON m.id = x.multi_address_id WHERE x.attempt_id = $1 ORDER BY m.maddr";

async fn addresses(
    conn: &mut AnyConnection,
    sql: &'static str,
    owner_id: i64,
    relationship: Option<Relationship>,
) -> Result<Vec<Multiaddr>> {
    let mut query = sqlx::query(sql).bind(owner_id);
    if let Some(relationship) = relationship {
        query = query.bind(relationship.as_str());
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            let text: String = row.try_get(0)?;
            text.parse()
                .map_err(|e: multiaddr::Error| corrupt("maddr", e.to_string()))
        })
        .collect()
}

async fn load_attempts(
    conn: &mut AnyConnection,
    result_id: i64,
) -> Result<Vec<HolePunchAttemptRecord>> {
    let rows = sqlx::query(
        "SELECT id, opened_at, started_at, ended_at, start_rtt_seconds, elapsed_seconds, outcome, error, \
           direct_dial_error, elapsed_time_raw, handshake_role FROM hole_punch_attempts WHERE result_id = $1 ORDER BY attempt_number",
    )
    .bind(result_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut attempts = Vec::with_capacity(rows.len());
    for row in rows {
        let attempt_id: i64 = row.try_get("id")?;
        attempts.push(HolePunchAttemptRecord {
            opened_at: row.try_get("opened_at")?,
            started_at: row.try_get("started_at")?,
            ended_at: row.try_get("ended_at")?,
            start_rtt_seconds: row.try_get("start_rtt_seconds")?,
            elapsed_seconds: row.try_get("elapsed_seconds")?,
            elapsed_time_raw: row.try_get("elapsed_time_raw")?,
            outcome: stored(AttemptOutcome::from_stored, &row, "outcome")?,
            error: row.try_get("error")?,
            direct_dial_error: row.try_get("direct_dial_error")?,
            addresses: addresses(&mut *conn, ATTEMPT_ADDRESSES, attempt_id, None).await?,
            handshake_role: optional_stored(HandshakeRole::from_stored, &row, "handshake_role")?,
        });
    }
    Ok(attempts)
}

async fn load_latency_measurements(
    conn: &mut AnyConnection,
    result_id: i64,
) -> Result<Vec<LatencyRecord>> {
    let rows = sqlx::query(
        "SELECT p.peer_id, l.agent_version, l.protocols, m.maddr, l.kind, l.rtts, l.rtt_errs \
         FROM latency_measurements l JOIN peers p ON p.id = l.peer_id \
         JOIN multi_addresses m ON m.id = l.multi_address_id WHERE l.result_id = $1 ORDER BY l.id",
    )
    .bind(result_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let maddr: String = row.try_get("maddr")?;
            Ok(LatencyRecord {
                peer: PeerInfo {
                    peer_id: row.try_get("peer_id")?,
                    agent_version: row.try_get("agent_version")?,
                    protocols: json(row, "protocols")?,
                },
                address: maddr
                    .parse()
                    .map_err(|e: multiaddr::Error| corrupt("maddr", e.to_string()))?,
                kind: stored(LatencyKind::from_stored, row, "kind")?,
                rtts: json(row, "rtts")?,
                rtt_errors: json(row, "rtt_errs")?,
            })
        })
        .collect()
}

async fn load_nat_mappings(conn: &mut AnyConnection, result_id: i64) -> Result<Vec<NatMapping>> {
    let rows = sqlx::query(
        "SELECT internal_port, external_port, protocol, addr, addr_network FROM nat_mappings \
         WHERE result_id = $1 ORDER BY id",
    )
    .bind(result_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(NatMapping {
                internal_port: row.try_get::<i64, _>("internal_port")? as i32,
                external_port: row.try_get::<i64, _>("external_port")? as i32,
                protocol: row.try_get("protocol")?,
                addr: row.try_get("addr")?,
                addr_network: row.try_get("addr_network")?,
            })
        })
        .collect()
}

async fn load_network_information(
    conn: &mut AnyConnection,
    result_id: i64,
) -> Result<Option<NetworkInformation>> {
    let row = sqlx::query(
        "SELECT supports_ipv6, supports_ipv6_error, router_login_html, router_login_html_error \
         FROM network_information WHERE result_id = $1",
    )
    .bind(result_id)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(NetworkInformation {
            supports_ipv6: optional_flag(&row, "supports_ipv6")?,
            supports_ipv6_error: row.try_get("supports_ipv6_error")?,
            router_login_html: row.try_get("router_login_html")?,
            router_login_html_error: row.try_get("router_login_html_error")?,
        })
    })
    .transpose()
}

fn stored<T>(parse: fn(&str) -> Option<T>, row: &AnyRow, column: &'static str) -> Result<T> {
    let text: String = row.try_get(column)?;
    parse(&text).ok_or_else(|| corrupt(column, format!("unknown value {text:?}")))
}

fn optional_stored<T>(
    parse: fn(&str) -> Option<T>,
    row: &AnyRow,
    column: &'static str,
) -> Result<Option<T>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|text| parse(&text).ok_or_else(|| corrupt(column, format!("unknown value {text:?}"))))
        .transpose()
}

fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &'static str) -> Result<T> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(column, e.to_string()))
}

fn corrupt(field: &'static str, reason: String) -> StoreError {
    StoreError::InvalidValue {
        field,
        reason: format!("stored value unreadable: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_stats_ignore_failed_samples() {
        let stats = rtt_stats(&[0.010, -1.0, 0.030]);
        assert_eq!(stats.ok, 2);
        assert_eq!(stats.failed, 1);
        assert_eq!(stats.avg, Some(0.020));
        assert_eq!(stats.min, Some(0.010));
        assert_eq!(stats.max, Some(0.030));
        let std = stats.std.unwrap();
        assert!((std - 0.014_142_135).abs() < 1e-6, "{std}");
    }

    #[test]
    fn rtt_stats_of_nothing_are_empty() {
        let stats = rtt_stats(&[-1.0]);
        assert_eq!((stats.ok, stats.failed), (0, 1));
        assert_eq!(
            (stats.avg, stats.min, stats.max, stats.std),
            (None, None, None, None)
        );
        assert_eq!(rtt_stats(&[0.5]).std, None);
    }
}
