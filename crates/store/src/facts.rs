//! `report_facts`: one narrow row per result with what the reports aggregate (migration
//! `0004_report.sql`). The write path computes a result's facts from what it writes and stores
//! them in the same transaction (`Facts`), so reports never wait for a backfill;
//! `punchr-report` derives the facts of results stored any other way (bulk imports, databases
//! from before the table existed) in SQL ([`derive_facts_sql`]). `tests/facts.rs` checks that
//! both give the same rows.

/// SQL for the bit set of transports over the addresses `m` of a group.
const TRANSPORT_MASK: &str = "MAX(CASE WHEN m.transport = 'tcp' THEN 1 ELSE 0 END) \
    + MAX(CASE WHEN m.transport IN ('quic', 'quic-v1') THEN 2 ELSE 0 END) \
    + MAX(CASE WHEN m.transport = 'webtransport' THEN 4 ELSE 0 END) \
    + MAX(CASE WHEN m.transport = 'webrtc-direct' THEN 8 ELSE 0 END) \
    + MAX(CASE WHEN m.transport IN ('ws', 'wss') THEN 16 ELSE 0 END) \
    + MAX(CASE WHEN m.transport IS NULL OR m.transport NOT IN \
        ('tcp', 'quic', 'quic-v1', 'webtransport', 'webrtc-direct', 'ws', 'wss') THEN 32 ELSE 0 END)";

/// SQL for the bit set of IP versions over the addresses `m` of a group.
const IP_MASK: &str = "MAX(CASE WHEN m.ip_version = 4 THEN 1 ELSE 0 END) \
    + MAX(CASE WHEN m.ip_version = 6 THEN 2 ELSE 0 END) \
    + MAX(CASE WHEN m.ip_version IS NULL THEN 4 ELSE 0 END)";

/// Facts for the results with `low < id <= high` that have none.
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
           SELECT x.result_id AS id, {TRANSPORT_MASK} AS transports, {IP_MASK} AS ip_versions \
           FROM hole_punch_results s \
           JOIN hole_punch_result_addresses x ON x.result_id = s.id \
           JOIN multi_addresses m ON m.id = x.multi_address_id \
           WHERE {s_range} AND s.outcome = 'SUCCESS' AND x.relationship = 'FINAL' AND NOT m.is_relay \
           GROUP BY x.result_id \
           UNION ALL \
           SELECT t.result_id, {TRANSPORT_MASK}, {IP_MASK} \
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
        s_range = range("s.id"),
        t_range = range("t.result_id"),
        r_range = range("r.id"),
    )
}

/// The facts of one result, computed from what is being written (the same rules as
/// [`derive_facts_sql`], which `tests/facts.rs` holds the two to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    pub(crate) transports: i64,
    pub(crate) ip_versions: i64,
    pub(crate) attempts: i64,
    pub(crate) successful_attempt: Option<i64>,
    pub(crate) time_to_direct_ns: Option<i64>,
}

/// Transport bit of an address's first hop, as `TRANSPORT_MASK`.
fn transport_bit(transport: Option<&str>) -> i64 {
    match transport {
        Some("tcp") => 1,
        Some("quic" | "quic-v1") => 2,
        Some("webtransport") => 4,
        Some("webrtc-direct") => 8,
        Some("ws" | "wss") => 16,
        _ => 32,
    }
}

/// IP version bit of an address, as `IP_MASK`.
fn ip_bit(ip: Option<std::net::IpAddr>) -> i64 {
    match ip {
        Some(std::net::IpAddr::V4(_)) => 1,
        Some(std::net::IpAddr::V6(_)) => 2,
        None => 4,
    }
}

impl Facts {
    /// The facts of `result`: a SUCCESS by the direct connections it left open (FINAL), any
    /// other outcome by the direct addresses its attempts tried.
    pub(crate) fn of(result: &crate::NewHolePunchResult) -> Facts {
        let success = result.outcome == crate::Outcome::Success;
        let addresses: Vec<&multiaddr::Multiaddr> = if success {
            result.open_addresses.iter().collect()
        } else {
            result
                .attempts
                .iter()
                .flat_map(|a| a.addresses.iter())
                .collect()
        };
        let (mut transports, mut ip_versions) = (0, 0);
        for facts in addresses
            .into_iter()
            .map(crate::AddressFacts::of)
            .filter(|f| !f.is_relay)
        {
            transports |= transport_bit(facts.transport);
            ip_versions |= ip_bit(facts.ip);
        }
        let successful = || {
            result.attempts.iter().enumerate().filter(|(_, a)| {
                matches!(
                    a.outcome,
                    crate::AttemptOutcome::Success | crate::AttemptOutcome::DirectDial
                )
            })
        };
        let first_success = successful().map(|(i, _)| i as i64 + 1).min();
        let first_direct_at = successful().map(|(_, a)| a.ended_at).min();
        Facts {
            transports,
            ip_versions,
            attempts: result.attempts.len() as i64,
            successful_attempt: first_success.filter(|_| success),
            // The original Go client's attempt timestamps come from tracer events that may be
            // older than its relayed connection (README, "The original clients"): a direct
            // connection before the relayed one is no time to direct, so it stays unknown.
            time_to_direct_ns: first_direct_at
                .filter(|_| success)
                .map(|at| at - result.connect_ended_at)
                .filter(|ns| *ns >= 0),
        }
    }
}
