//! `report_facts`: one narrow row per result with what the reports aggregate (migration
//! `0004_report.sql`). The write path derives a result's facts in the transaction that stores it,
//! so reports never wait for a backfill; `punchr-report` derives the facts of results stored any
//! other way (bulk imports, databases from before the table existed) with the same SQL.

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
           CASE WHEN r.outcome = 'SUCCESS' THEN a.successful_ended_at - r.connect_ended_at END \
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
