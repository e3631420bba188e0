//! Peers, their multiaddresses, client hosts and the honeypot's connection events.

use std::collections::HashMap;

use multiaddr::Multiaddr;
use sqlx::{AnyConnection, Connection, Row};

use crate::engine::discard_if_failed;
use crate::{now_unix_nanos, AddressFacts, ConnectionEventRecord, PeerInfo, Result, Store};

/// The protocol whose support makes a peer a hole punching candidate.
pub(crate) const DCUTR_PROTOCOL: &str = "/libp2p/dcutr";

/// Who states a peer's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FactSource {
    /// The honeypot, from identify: its facts are the ones selection and reports trust.
    Honeypot,
    /// Someone else (a result naming the peer, with no facts).
    Other,
}

/// A peer's protocols sorted and deduplicated as JSON, and whether they include DCUtR.
fn protocol_facts(peer: &PeerInfo) -> (String, bool) {
    let mut protocols = peer.protocols.clone();
    protocols.sort();
    protocols.dedup();
    let supports_dcutr = protocols.iter().any(|p| p == DCUTR_PROTOCOL);
    let json = serde_json::to_string(&protocols).expect("strings serialise");
    (json, supports_dcutr)
}

/// Inserts or refreshes a peer and returns its database id. Unknown facts (no agent version, no
/// protocols) leave what is stored untouched.
pub(crate) async fn upsert_peer(
    conn: &mut AnyConnection,
    peer: &PeerInfo,
    source: FactSource,
) -> Result<i64> {
    let (protocols_json, supports_dcutr) = protocol_facts(peer);
    let now = now_unix_nanos();
    let row = sqlx::query(
        "INSERT INTO peers (peer_id, agent_version, protocols, supports_dcutr, seen_by_honeypot, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $6, $5, $5) \
         ON CONFLICT (peer_id) DO UPDATE SET \
           agent_version = COALESCE(excluded.agent_version, peers.agent_version), \
           protocols = CASE WHEN excluded.protocols = '[]' THEN peers.protocols ELSE excluded.protocols END, \
           supports_dcutr = CASE WHEN excluded.protocols = '[]' THEN peers.supports_dcutr ELSE excluded.supports_dcutr END, \
           seen_by_honeypot = (peers.seen_by_honeypot OR excluded.seen_by_honeypot), \
           updated_at = CASE WHEN excluded.updated_at > peers.created_at THEN excluded.updated_at ELSE peers.created_at END \
         RETURNING id",
    )
    .bind(&peer.peer_id)
    .bind(peer.agent_version.as_deref())
    .bind(protocols_json)
    .bind(supports_dcutr)
    .bind(now)
    .bind(source == FactSource::Honeypot)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get(0)?)
}

/// Stores a host that the API key registers and returns its database id. Its facts are written
/// only when the peer is the key's own: new, or known only as a host of this key. A peer the
/// honeypot recorded, or another key's host, keeps its facts: a key must not take a remote out
/// of selection (protocols without DCUtR) nor put its text under another peer's agent.
async fn register_peer(conn: &mut AnyConnection, api_key_id: i64, host: &PeerInfo) -> Result<i64> {
    let (protocols_json, supports_dcutr) = protocol_facts(host);
    let now = now_unix_nanos();
    let inserted = sqlx::query(
        "INSERT INTO peers (peer_id, agent_version, protocols, supports_dcutr, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (peer_id) DO NOTHING RETURNING id",
    )
    .bind(&host.peer_id)
    .bind(host.agent_version.as_deref())
    .bind(&protocols_json)
    .bind(supports_dcutr)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = inserted {
        return Ok(row.try_get(0)?);
    }
    sqlx::query(
        "UPDATE peers SET \
           agent_version = COALESCE($2, agent_version), \
           protocols = CASE WHEN $3 = '[]' THEN protocols ELSE $3 END, \
           supports_dcutr = CASE WHEN $3 = '[]' THEN supports_dcutr ELSE $4 END, \
           updated_at = CASE WHEN $5 > created_at THEN $5 ELSE created_at END \
         WHERE peer_id = $1 AND NOT seen_by_honeypot \
           AND NOT EXISTS (SELECT 1 FROM client_hosts h WHERE h.peer_id = peers.id AND h.api_key_id <> $6)",
    )
    .bind(&host.peer_id)
    .bind(host.agent_version.as_deref())
    .bind(&protocols_json)
    .bind(supports_dcutr)
    .bind(now)
    .bind(api_key_id)
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query("SELECT id FROM peers WHERE peer_id = $1")
        .bind(&host.peer_id)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get(0)?)
}

/// Returns the id of a stored multiaddress, storing it with its facts first if it is new.
pub(crate) async fn upsert_multi_address(
    conn: &mut AnyConnection,
    maddr: &Multiaddr,
) -> Result<i64> {
    let text = maddr.to_string();
    // Most addresses are seen again and again: look first, so the common case writes nothing.
    if let Some(id) = multi_address_id(&mut *conn, &text).await? {
        return Ok(id);
    }
    let facts = AddressFacts::of(maddr);
    let inserted = sqlx::query(
        "INSERT INTO multi_addresses (maddr, is_relay, is_public, ip_address, ip_version, transport, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (maddr) DO NOTHING RETURNING id",
    )
    .bind(&text)
    .bind(facts.is_relay)
    .bind(facts.is_public)
    .bind(facts.ip.map(|ip| ip.to_string()))
    .bind(facts.ip_version())
    .bind(facts.transport)
    .bind(now_unix_nanos())
    .fetch_optional(&mut *conn)
    .await?;
    match inserted {
        Some(row) => Ok(row.try_get(0)?),
        // Another writer stored it between our look and our insert.
        None => Ok(multi_address_id(conn, &text)
            .await?
            .expect("a conflicting row exists")),
    }
}

async fn multi_address_id(conn: &mut AnyConnection, text: &str) -> Result<Option<i64>> {
    let row = sqlx::query("SELECT id FROM multi_addresses WHERE maddr = $1")
        .bind(text)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// Stores every distinct address once; returns text → id.
pub(crate) async fn upsert_multi_addresses<'a>(
    conn: &mut AnyConnection,
    maddrs: impl IntoIterator<Item = &'a Multiaddr>,
) -> Result<HashMap<String, i64>> {
    let mut ids = HashMap::new();
    for maddr in maddrs {
        let text = maddr.to_string();
        if ids.contains_key(&text) {
            continue;
        }
        let id = upsert_multi_address(&mut *conn, maddr).await?;
        ids.insert(text, id);
    }
    Ok(ids)
}

impl Store {
    /// Inserts or refreshes a peer as the honeypot saw it (its own identity); returns its
    /// database id.
    pub async fn upsert_peer(&self, peer: &PeerInfo) -> Result<i64> {
        let mut conn = self.pool().acquire().await?;
        upsert_peer(&mut conn, peer, FactSource::Honeypot).await
    }

    /// The database id of a peer, if stored.
    pub async fn peer_db_id(&self, peer_id: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT id FROM peers WHERE peer_id = $1")
            .bind(peer_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Binds a client's host to the API key that registered it; returns the host's peer id in the
    /// database. Registering again refreshes the host's last-seen time, and its facts when the
    /// peer is the key's own (see `register_peer`).
    pub async fn register_host(&self, api_key_id: i64, host: &PeerInfo) -> Result<i64> {
        let mut conn = self.pool().acquire().await?;
        let written = async {
            let mut tx = conn.begin().await?;
            let peer_db_id = register_peer(&mut tx, api_key_id, host).await?;
            let now = now_unix_nanos();
            sqlx::query(
                "INSERT INTO client_hosts (api_key_id, peer_id, registered_at, last_seen_at) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (api_key_id, peer_id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
            )
            .bind(api_key_id)
            .bind(peer_db_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(peer_db_id)
        }
        .await;
        discard_if_failed(&mut conn, &written);
        written
    }

    /// The database id of `peer_id` if the API key `api_key_id` registered it as a host.
    pub async fn registered_host(&self, api_key_id: i64, peer_id: &str) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT p.id FROM client_hosts h JOIN peers p ON p.id = h.peer_id \
             WHERE h.api_key_id = $1 AND p.peer_id = $2",
        )
        .bind(api_key_id)
        .bind(peer_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// The database id and agent version (as the last Register gave it) of `peer_id` if the
    /// API key `api_key_id` registered it as a host: the server reads the client's quirks from
    /// the agent.
    pub async fn registered_host_agent(
        &self,
        api_key_id: i64,
        peer_id: &str,
    ) -> Result<Option<(i64, Option<String>)>> {
        let row = sqlx::query(
            "SELECT p.id, p.agent_version FROM client_hosts h JOIN peers p ON p.id = h.peer_id \
             WHERE h.api_key_id = $1 AND p.peer_id = $2",
        )
        .bind(api_key_id)
        .bind(peer_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }

    /// Of `peer_ids`, those the API key registered as hosts, with their database ids.
    pub async fn registered_hosts(
        &self,
        api_key_id: i64,
        peer_ids: &[String],
    ) -> Result<Vec<(String, i64)>> {
        let mut hosts = Vec::new();
        for peer_id in peer_ids {
            if let Some(id) = self.registered_host(api_key_id, peer_id).await? {
                hosts.push((peer_id.clone(), id));
            }
        }
        Ok(hosts)
    }

    /// Deletes the connection events opened before `cutoff` (Unix ns) with their addresses, in
    /// batches so that no transaction holds the tables long; returns how many were deleted.
    pub async fn delete_connection_events_before(&self, cutoff: i64) -> Result<u64> {
        const BATCH: i64 = 10_000;
        let mut deleted = 0;
        loop {
            let mut conn = self.pool().acquire().await?;
            let batch = async {
                let mut tx = conn.begin().await?;
                let ids =
                    "SELECT id FROM connection_events WHERE opened_at < $1 ORDER BY id LIMIT $2";
                sqlx::query(&format!(
                    "DELETE FROM connection_event_addresses WHERE connection_event_id IN ({ids})"
                ))
                .bind(cutoff)
                .bind(BATCH)
                .execute(&mut *tx)
                .await?;
                let done = sqlx::query(&format!(
                    "DELETE FROM connection_events WHERE id IN ({ids})"
                ))
                .bind(cutoff)
                .bind(BATCH)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(done)
            }
            .await;
            discard_if_failed(&mut conn, &batch);
            let done = batch?;
            deleted += done;
            if done < BATCH as u64 {
                return Ok(deleted);
            }
        }
    }

    /// Records a NATed peer's connection to the honeypot with its advertised addresses, in one
    /// transaction; returns the event's id.
    pub async fn record_connection_event(&self, event: &ConnectionEventRecord) -> Result<i64> {
        let mut conn = self.pool().acquire().await?;
        let written = async {
            let mut tx = conn.begin().await?;
            let event_id = insert_connection_event(&mut tx, event).await?;
            tx.commit().await?;
            Ok(event_id)
        }
        .await;
        discard_if_failed(&mut conn, &written);
        written
    }
}

async fn insert_connection_event(
    conn: &mut AnyConnection,
    event: &ConnectionEventRecord,
) -> Result<i64> {
    let local_id = upsert_peer(&mut *conn, &event.local, FactSource::Honeypot).await?;
    let remote_id = upsert_peer(&mut *conn, &event.remote, FactSource::Honeypot).await?;
    let conn_address_id = upsert_multi_address(&mut *conn, &event.connection_address).await?;
    let advertised = upsert_multi_addresses(&mut *conn, &event.advertised_addresses).await?;
    let row = sqlx::query(
        "INSERT INTO connection_events (local_peer_id, remote_peer_id, conn_multi_address_id, opened_at, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(local_id)
    .bind(remote_id)
    .bind(conn_address_id)
    .bind(event.opened_at)
    .bind(now_unix_nanos())
    .fetch_one(&mut *conn)
    .await?;
    let event_id: i64 = row.try_get(0)?;
    for address_id in advertised.values() {
        sqlx::query(
            "INSERT INTO connection_event_addresses (connection_event_id, multi_address_id) VALUES ($1, $2)",
        )
        .bind(event_id)
        .bind(*address_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(event_id)
}
