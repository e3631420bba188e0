//! Which NATed peer a client gets next (GetAddrInfo), after the original's rules
//! (`punchr-original.md` §5): seen by the honeypot recently, DCUtR-capable, only relay addresses
//! served, no remote handed out more than a limit per window across all clients, and no
//! (remote, relay address) pair repeated to the same client within a window.
//!
//! Unlike the original it never sorts candidates at random nor scans results: the candidate list
//! comes from the freshness window of `connection_events` (indexed), the limits from `handouts`
//! (indexed), and the random choice is a shuffle in memory of the candidate ids.
//!
//! The candidate list costs one pass over every fresh remote, so it is fetched at most once per
//! [`CANDIDATES_REUSE_NS`] and shared by the requests in between (the soak with 500 clients
//! showed the per-request query taking PostgreSQL's whole CPU, growing with the population).
//! Nothing is decided on the shared list alone: the handout's transaction checks the remote's
//! limit, freshness and addresses again, and when no listed remote is eligible the list is
//! fetched anew before the answer is "none", so a remote that just became eligible is found.
//!
//! What a stranger with a key can make it do is bounded (issue 15, point 7): remotes already
//! handed to the key within the repeat window are left out before any is tried (unless the
//! honeypot saw the remote again since, which may have brought new addresses); a remote is
//! checked by reads first and only one that looks eligible costs a write transaction; at most
//! [`SelectionRules::max_tries`] remotes are tried per request; a key gets at most
//! [`SelectionRules::handouts_per_key`] handouts per window, and at most
//! [`SelectionRules::remote_limit_per_key`] of one remote's, so that one key cannot use up a
//! remote's budget across all clients. A key is one client for these limits: hosts it
//! registers do not multiply them.
//!
//! Only relay addresses whose relay hop is a public IP are served
//! ([`punchr_types::address::has_public_relay_hop`]), at most [`MAX_HANDOUT_ADDRESSES`] per handout: a
//! stranger who reaches the honeypot must not send the campaign's volunteers into their own
//! home networks or at a victim.

use std::collections::HashSet;
use std::sync::Arc;

use multiaddr::Multiaddr;
use punchr_types::address::MAX_HANDOUT_ADDRESSES;
use rand::seq::SliceRandom;
use sqlx::{AnyConnection, Connection, Row};
use tokio::sync::Mutex;

use crate::engine::discard_if_failed;
use crate::{Result, Store};

/// The selection's windows and limits; times in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectionRules {
    /// A remote must have connected to the honeypot within this window.
    pub fresh_within_ns: i64,
    /// At most this many handouts of one remote per `remote_limit_window_ns`, across all clients.
    pub remote_limit: i64,
    /// The window of `remote_limit`.
    pub remote_limit_window_ns: i64,
    /// A (remote, address) pair is not handed to the same client again within this window.
    pub repeat_window_ns: i64,
    /// At most this many handouts to one API key per `remote_limit_window_ns`.
    pub handouts_per_key: i64,
    /// At most this many handouts of one remote to one API key per `remote_limit_window_ns`.
    pub remote_limit_per_key: i64,
    /// At most this many remotes are tried (each a write transaction) per request.
    pub max_tries: usize,
    /// Also serve relay addresses whose relay hop is not public (loopback tests, private test
    /// networks); never in a campaign on the internet.
    pub serve_private_relays: bool,
}

impl Default for SelectionRules {
    fn default() -> Self {
        const MINUTE: i64 = 60_000_000_000;
        SelectionRules {
            fresh_within_ns: 10 * MINUTE,
            remote_limit: 10,
            remote_limit_window_ns: MINUTE,
            repeat_window_ns: 10 * MINUTE,
            handouts_per_key: 120,
            remote_limit_per_key: 2,
            max_tries: 8,
            serve_private_relays: false,
        }
    }
}

/// A remote handed to a client, with the relay addresses to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handout {
    /// Base58 peer ID of the remote.
    pub remote_peer_id: String,
    /// Its relay addresses that this client has not been given recently.
    pub addresses: Vec<Multiaddr>,
}

/// Who asks: the API key, the host that asks and all hosts of the same client (database ids).
#[derive(Debug, Clone)]
pub struct Requester {
    /// The API key of the client.
    pub api_key_id: i64,
    /// The host that will punch.
    pub host_peer_id: i64,
    /// Every host of the client, including `host_peer_id`.
    pub client_hosts: Vec<i64>,
}

/// What a GetAddrInfo request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The remote handed out, if any.
    pub outcome: SelectionOutcome,
    /// How many remotes were tried in a write transaction.
    pub transactions: usize,
}

/// Whether a remote was handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectionOutcome {
    /// This remote.
    Handout(Handout),
    /// No remote is eligible for this client now.
    NoneEligible,
    /// The key had its [`SelectionRules::handouts_per_key`] within the window.
    KeyQuotaUsed,
}

/// How long one candidate list serves requests, ns (by the requests' `now`).
pub(crate) const CANDIDATES_REUSE_NS: i64 = 1_000_000_000;

/// The candidate list last fetched, shared by the clones of a [`Store`].
#[derive(Debug, Default)]
pub(crate) struct CandidateCache {
    latest: Mutex<Option<Candidates>>,
}

#[derive(Debug)]
struct Candidates {
    /// The `now` it was fetched for.
    fetched_at: i64,
    rules: SelectionRules,
    ids: Arc<[i64]>,
}

impl Store {
    /// Picks a random eligible remote for `requester` and records the handout. `now` is Unix ns.
    pub async fn select_remote(
        &self,
        requester: &Requester,
        rules: &SelectionRules,
        now: i64,
    ) -> Result<Selection> {
        let mut selection = Selection {
            outcome: SelectionOutcome::NoneEligible,
            transactions: 0,
        };
        if self.key_handouts(requester.api_key_id, rules, now).await? >= rules.handouts_per_key {
            selection.outcome = SelectionOutcome::KeyQuotaUsed;
            return Ok(selection);
        }
        let served = self.served_to_key(requester.api_key_id, rules, now).await?;
        let (listed, reused) = self.candidates(rules, now).await?;
        let untried = |ids: &[i64], tried: &HashSet<i64>| -> Vec<i64> {
            ids.iter()
                .copied()
                .filter(|id| !served.contains(id) && !tried.contains(id))
                .collect()
        };
        let mut tried = HashSet::new();
        let mut tries = Tries {
            left: rules.max_tries,
            transactions: 0,
        };
        let mut handout = self
            .hand_out_first(untried(&listed, &tried), requester, rules, now, &mut tries)
            .await?;
        if handout.is_none() && reused && tries.left > 0 {
            // Every remote on the shared list was tried; one that joined since may be eligible.
            tried.extend(listed.iter().copied());
            let fresh = self.refresh_candidates(rules, now).await?;
            handout = self
                .hand_out_first(untried(&fresh, &tried), requester, rules, now, &mut tries)
                .await?;
        }
        selection.transactions = tries.transactions;
        if let Some(handout) = handout {
            selection.outcome = SelectionOutcome::Handout(handout);
        }
        Ok(selection)
    }

    /// Handouts to the key within the rate window.
    async fn key_handouts(&self, api_key_id: i64, rules: &SelectionRules, now: i64) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM handouts WHERE api_key_id = $1 AND handed_at > $2")
                .bind(api_key_id)
                .bind(now - rules.remote_limit_window_ns)
                .fetch_one(self.pool())
                .await?
                .try_get(0)?,
        )
    }

    /// Remotes handed to the key within the repeat window that the honeypot has not recorded
    /// again since (by when the event was written: identify may come long after the connection
    /// opened): they have nothing new for this client. The rows are the key's handouts in the
    /// window, bounded by its quota.
    async fn served_to_key(
        &self,
        api_key_id: i64,
        rules: &SelectionRules,
        now: i64,
    ) -> Result<HashSet<i64>> {
        let rows = sqlx::query(
            "SELECT DISTINCT h.remote_peer_id FROM handouts h \
             WHERE h.api_key_id = $1 AND h.handed_at > $2 \
               AND NOT EXISTS (SELECT 1 FROM connection_events ce \
                   WHERE ce.remote_peer_id = h.remote_peer_id AND ce.created_at > h.handed_at)",
        )
        .bind(api_key_id)
        .bind(now - rules.repeat_window_ns)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<i64, _>(0)?))
            .collect()
    }

    /// Tries the remotes in random order, within the request's budget; the first one that can
    /// be handed out is.
    async fn hand_out_first(
        &self,
        mut remote_ids: Vec<i64>,
        requester: &Requester,
        rules: &SelectionRules,
        now: i64,
        tries: &mut Tries,
    ) -> Result<Option<Handout>> {
        remote_ids.shuffle(&mut rand::thread_rng());
        for remote_id in remote_ids {
            if tries.left == 0 {
                break;
            }
            let mut conn = self.pool().acquire().await?;
            // Reads first: a remote that is not eligible costs no write transaction.
            let eligible = check_remote(&mut conn, remote_id, requester, rules, now).await;
            discard_if_failed(&mut conn, &eligible);
            if eligible?.is_none() {
                continue;
            }
            tries.left -= 1;
            tries.transactions += 1;
            let tried = async {
                let mut tx = conn.begin().await?;
                let handout = try_hand_out(&mut tx, remote_id, requester, rules, now).await?;
                if handout.is_some() {
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                Ok(handout)
            }
            .await;
            discard_if_failed(&mut conn, &tried);
            if let Some(handout) = tried? {
                return Ok(Some(handout));
            }
        }
        Ok(None)
    }

    /// The shared candidate list if it is recent enough for `now` and `rules` (then `true`), else
    /// a freshly fetched one.
    async fn candidates(&self, rules: &SelectionRules, now: i64) -> Result<(Arc<[i64]>, bool)> {
        let mut latest = self.candidates.latest.lock().await;
        if let Some(list) = latest.as_ref() {
            let age = now - list.fetched_at;
            if list.rules == *rules && (0..CANDIDATES_REUSE_NS).contains(&age) {
                return Ok((list.ids.clone(), true));
            }
        }
        // Fetched under the lock, so that requests arriving together wait for one query
        // instead of each running their own.
        let ids: Arc<[i64]> = self.fresh_candidates(rules, now).await?.into();
        *latest = Some(Candidates {
            fetched_at: now,
            rules: *rules,
            ids: ids.clone(),
        });
        Ok((ids, false))
    }

    /// Fetches the candidate list and shares it.
    async fn refresh_candidates(&self, rules: &SelectionRules, now: i64) -> Result<Arc<[i64]>> {
        let ids: Arc<[i64]> = self.fresh_candidates(rules, now).await?.into();
        *self.candidates.latest.lock().await = Some(Candidates {
            fetched_at: now,
            rules: *rules,
            ids: ids.clone(),
        });
        Ok(ids)
    }

    /// DCUtR-capable remotes seen within the freshness window and below the rate limit.
    async fn fresh_candidates(&self, rules: &SelectionRules, now: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT DISTINCT ce.remote_peer_id FROM connection_events ce \
             JOIN peers p ON p.id = ce.remote_peer_id \
             WHERE ce.opened_at > $1 AND p.supports_dcutr \
               AND (SELECT COUNT(*) FROM handouts h \
                    WHERE h.remote_peer_id = ce.remote_peer_id AND h.handed_at > $2) < $3",
        )
        .bind(now - rules.fresh_within_ns)
        .bind(now - rules.remote_limit_window_ns)
        .bind(rules.remote_limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<i64, _>(0)?))
            .collect()
    }
}

/// What is left of a request's budget of write transactions.
#[derive(Debug)]
struct Tries {
    left: usize,
    transactions: usize,
}

/// The addresses this client may get of the remote, or `None` when the remote is at one of its
/// limits or has none; reads only.
async fn check_remote(
    conn: &mut AnyConnection,
    remote_id: i64,
    requester: &Requester,
    rules: &SelectionRules,
    now: i64,
) -> Result<Option<Vec<(i64, String)>>> {
    let (recent, by_key) = recent_handouts(&mut *conn, remote_id, requester, rules, now).await?;
    if recent >= rules.remote_limit || by_key >= rules.remote_limit_per_key {
        return Ok(None);
    }
    let addresses = eligible_addresses(&mut *conn, remote_id, requester, rules, now).await?;
    Ok(Some(addresses).filter(|a| !a.is_empty()))
}

/// Handouts of the remote within the rate window: to anyone, and to this key.
async fn recent_handouts(
    conn: &mut AnyConnection,
    remote_id: i64,
    requester: &Requester,
    rules: &SelectionRules,
    now: i64,
) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN api_key_id = $3 THEN 1 ELSE 0 END), 0) \
         FROM handouts WHERE remote_peer_id = $1 AND handed_at > $2",
    )
    .bind(remote_id)
    .bind(now - rules.remote_limit_window_ns)
    .bind(requester.api_key_id)
    .fetch_one(conn)
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// Within one transaction: lock the remote, re-check its rate limits, find the addresses this
/// client may get, and record the handout.
async fn try_hand_out(
    conn: &mut AnyConnection,
    remote_id: i64,
    requester: &Requester,
    rules: &SelectionRules,
    now: i64,
) -> Result<Option<Handout>> {
    // A no-op write takes the remote's row lock (PostgreSQL) or the write lock (SQLite), so
    // concurrent requests cannot both slip under the rate limit.
    let locked =
        sqlx::query("UPDATE peers SET updated_at = updated_at WHERE id = $1 RETURNING peer_id")
            .bind(remote_id)
            .fetch_one(&mut *conn)
            .await?;
    let remote_peer_id: String = locked.try_get(0)?;
    let Some(addresses) = check_remote(&mut *conn, remote_id, requester, rules, now).await? else {
        return Ok(None);
    };
    record_handout(&mut *conn, remote_id, requester, &addresses, now).await?;
    let addresses = addresses
        .into_iter()
        .filter_map(|(_, text)| text.parse().ok())
        .collect();
    Ok(Some(Handout {
        remote_peer_id,
        addresses,
    }))
}

/// `$1, $2, …` placeholders from `first` on.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn eligible_addresses(
    conn: &mut AnyConnection,
    remote_id: i64,
    requester: &Requester,
    rules: &SelectionRules,
    now: i64,
) -> Result<Vec<(i64, String)>> {
    let mut hosts = requester.client_hosts.clone();
    hosts.push(requester.host_peer_id);
    hosts.sort_unstable();
    hosts.dedup();
    let sql = format!(
        "SELECT DISTINCT m.id, m.maddr FROM connection_events ce \
         JOIN connection_event_addresses x ON x.connection_event_id = ce.id \
         JOIN multi_addresses m ON m.id = x.multi_address_id \
         WHERE ce.remote_peer_id = $1 AND ce.opened_at > $2 AND m.is_relay {} \
           AND NOT EXISTS (SELECT 1 FROM handouts h JOIN handout_addresses ha ON ha.handout_id = h.id \
               WHERE h.remote_peer_id = $1 AND ha.multi_address_id = m.id AND h.handed_at > $3 \
                 AND h.client_peer_id IN ({})) \
         ORDER BY m.maddr LIMIT {}",
        if rules.serve_private_relays {
            ""
        } else {
            "AND m.is_public"
        },
        placeholders(4, hosts.len()),
        // Rows stored under an older rule may still fail the check below; read some spare.
        4 * MAX_HANDOUT_ADDRESSES,
    );
    let mut query = sqlx::query(&sql)
        .bind(remote_id)
        .bind(now - rules.fresh_within_ns)
        .bind(now - rules.repeat_window_ns);
    for host in hosts {
        query = query.bind(host);
    }
    let rows = query.fetch_all(conn).await?;
    let mut addresses = Vec::new();
    for row in &rows {
        let text: String = row.try_get(1)?;
        let servable = text.parse::<Multiaddr>().is_ok_and(|addr| {
            punchr_types::address::is_dialable_relay_address(&addr, rules.serve_private_relays)
        });
        if servable && addresses.len() < MAX_HANDOUT_ADDRESSES {
            addresses.push((row.try_get(0)?, text));
        }
    }
    Ok(addresses)
}

async fn record_handout(
    conn: &mut AnyConnection,
    remote_id: i64,
    requester: &Requester,
    addresses: &[(i64, String)],
    now: i64,
) -> Result<()> {
    let row = sqlx::query(
        "INSERT INTO handouts (api_key_id, client_peer_id, remote_peer_id, handed_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(requester.api_key_id)
    .bind(requester.host_peer_id)
    .bind(remote_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let handout_id: i64 = row.try_get(0)?;
    for (address_id, _) in addresses {
        sqlx::query("INSERT INTO handout_addresses (handout_id, multi_address_id) VALUES ($1, $2)")
            .bind(handout_id)
            .bind(*address_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_count_from_the_first() {
        assert_eq!(placeholders(4, 3), "$4, $5, $6");
    }
}
