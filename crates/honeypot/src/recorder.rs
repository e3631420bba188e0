//! Writes connection events to the database, off the swarm's task.
//!
//! The swarm loop must never wait for the database, so it hands [`Sighting`]s to this task over a
//! bounded queue; when the queue is full (the database fell far behind) events are dropped and
//! counted rather than piling up in memory. Each event is written by
//! [`Store::record_connection_event`], in one transaction with the peer, its agent, protocols and
//! addresses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use punchr_store::{ConnectionEventRecord, PeerInfo, Store};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::inbound::{RecordReason, Sighting, SkipReason};
use crate::metrics::Metrics;
use crate::TARGET;

/// Connection events waiting to be written, at most.
pub const QUEUE_CAPACITY: usize = 1024;

/// What happened to an inbound peer, for tests and embedding programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A connection event was written.
    Recorded {
        /// The peer.
        peer: PeerId,
        /// The event's database id.
        event_id: i64,
        /// Why.
        reason: RecordReason,
        /// The relay addresses among its advertised addresses.
        relay_addresses: Vec<Multiaddr>,
    },
    /// The connection does not qualify (or identify did not finish).
    Skipped {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: SkipReason,
    },
    /// Writing the event failed.
    Failed {
        /// The peer.
        peer: PeerId,
        /// What the database said.
        error: String,
    },
}

/// Converts between the multiaddr versions of libp2p and of the store; `None` when the store's
/// older parser does not know a protocol.
fn to_store_addr(addr: &Multiaddr) -> Option<multiaddr::Multiaddr> {
    multiaddr::Multiaddr::try_from(addr.to_vec()).ok()
}

/// Longest agent version and protocol name stored, bytes; the server allows the same for what
/// clients register.
pub const MAX_TEXT_BYTES: usize = 256;

/// Most protocols stored per peer; identify lists a few dozen at most.
pub const MAX_PROTOCOLS: usize = 64;

/// A stranger's text as it may be stored: no NUL (PostgreSQL refuses it in text, failing the
/// whole event and costing a new backend each time), at most [`MAX_TEXT_BYTES`], cut at a
/// character boundary.
pub fn storable_text(text: &str) -> String {
    let mut text: String = text.chars().filter(|c| *c != '\0').collect();
    if text.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The protocols as they may be stored: names with a NUL or over [`MAX_TEXT_BYTES`] are
/// dropped (a cut name is a wrong name), at most [`MAX_PROTOCOLS`], `/libp2p/dcutr` always kept
/// when present (selection needs it).
pub fn storable_protocols(protocols: &[String]) -> Vec<String> {
    let valid = |p: &&String| !p.contains('\0') && p.len() <= MAX_TEXT_BYTES;
    let mut kept: Vec<String> = protocols
        .iter()
        .filter(valid)
        .take(MAX_PROTOCOLS)
        .cloned()
        .collect();
    let dcutr = crate::inbound::DCUTR_PROTOCOL;
    if protocols.iter().any(|p| p == dcutr) && !kept.iter().any(|p| p == dcutr) {
        kept.pop();
        kept.push(dcutr.to_owned());
    }
    kept
}

/// The store's form of a sighting, with the stranger's texts made storable.
pub fn connection_event(local: &PeerInfo, sighting: &Sighting) -> Option<ConnectionEventRecord> {
    let agent = storable_text(&sighting.identity.agent_version);
    Some(ConnectionEventRecord {
        local: local.clone(),
        remote: PeerInfo {
            peer_id: sighting.peer.to_base58(),
            agent_version: Some(agent).filter(|a| !a.is_empty()),
            protocols: storable_protocols(&sighting.identity.protocols),
        },
        connection_address: to_store_addr(&sighting.connection_address)?,
        advertised_addresses: sighting
            .identity
            .listen_addrs
            .iter()
            .filter_map(to_store_addr)
            .collect(),
        opened_at: sighting.seen_at,
    })
}

/// How often old connection events are deleted when a retention is set: hourly, or every
/// retention when that is shorter, so that no event outlives twice its retention.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// The shortest period between two deletions, whatever the retention (one DELETE a second at
/// most).
const RETENTION_EVERY_AT_MOST: Duration = Duration::from_secs(1);

fn retention_period(retention: Duration) -> Duration {
    retention.clamp(RETENTION_EVERY_AT_MOST, RETENTION_EVERY)
}

/// Deletes connection events older than `retention` (ns before now); logs what it did.
async fn apply_retention(store: &Store, retention: Duration) {
    let retention_ns = i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX);
    let cutoff = punchr_store::now_unix_nanos().saturating_sub(retention_ns);
    match store.delete_connection_events_before(cutoff).await {
        Ok(0) => {}
        Ok(deleted) => {
            tracing::info!(target: TARGET, event = "retention_applied", deleted, ?retention)
        }
        Err(error) => tracing::warn!(target: TARGET, event = "retention_failed", %error),
    }
}

/// Starts the writer; it ends when every sender is dropped and the queue is empty. With a
/// non-zero `retention` it also deletes older connection events, at start and then hourly (or
/// every `retention`, when shorter).
pub fn spawn(
    store: Store,
    local: PeerInfo,
    metrics: Arc<Metrics>,
    observations: broadcast::Sender<Observation>,
    retention: Duration,
) -> (mpsc::Sender<Sighting>, JoinHandle<()>) {
    let (sender, mut queue) = mpsc::channel::<Sighting>(QUEUE_CAPACITY);
    let task = tokio::spawn(async move {
        let mut retention_tick = tokio::time::interval(retention_period(retention));
        loop {
            let sighting = tokio::select! {
                sighting = queue.recv() => match sighting {
                    Some(sighting) => sighting,
                    None => break,
                },
                _ = retention_tick.tick(), if !retention.is_zero() => {
                    apply_retention(&store, retention).await;
                    continue;
                }
            };
            let peer = sighting.peer;
            let Some(event) = connection_event(&local, &sighting) else {
                tracing::warn!(target: TARGET, event = "record_skipped", %peer, address = %sighting.connection_address, "unparsable connection address");
                continue;
            };
            let started = Instant::now();
            let result = store.record_connection_event(&event).await;
            metrics.handled(result.is_ok(), started.elapsed());
            let observation = match result {
                Ok(event_id) => {
                    let relay_addresses: Vec<Multiaddr> = sighting
                        .identity
                        .listen_addrs
                        .iter()
                        .filter(|a| crate::address::kind(a) == crate::address::AddressKind::Relayed)
                        .cloned()
                        .collect();
                    tracing::info!(
                        target: TARGET,
                        event = "connection_recorded",
                        %peer,
                        event_id,
                        reason = sighting.reason.as_str(),
                        agent = ?event.remote.agent_version,
                        relays = relay_addresses.len(),
                        connection_address = %sighting.connection_address,
                    );
                    Observation::Recorded {
                        peer,
                        event_id,
                        reason: sighting.reason,
                        relay_addresses,
                    }
                }
                Err(error) => {
                    tracing::warn!(target: TARGET, event = "record_failed", %peer, %error);
                    Observation::Failed {
                        peer,
                        error: error.to_string(),
                    }
                }
            };
            let _ = observations.send(observation);
        }
    });
    (sender, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_applied_hourly_or_sooner_but_not_more_than_once_a_second() {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        assert_eq!(retention_period(hours(24 * 7)), hours(1));
        assert_eq!(retention_period(hours(1)), hours(1));
        assert_eq!(
            retention_period(Duration::from_secs(90)),
            Duration::from_secs(90)
        );
        assert_eq!(
            retention_period(Duration::from_millis(1)),
            Duration::from_secs(1)
        );
        assert_eq!(retention_period(Duration::ZERO), Duration::from_secs(1));
    }

    #[test]
    fn texts_lose_nuls_and_are_cut_at_a_character_boundary() {
        assert_eq!(storable_text("kubo\0/0.30"), "kubo/0.30");
        let long = "é".repeat(200);
        let cut = storable_text(&long);
        assert!(cut.len() <= MAX_TEXT_BYTES && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn protocols_are_bounded_and_keep_dcutr() {
        let mut protocols: Vec<String> = (0..200).map(|i| format!("/p/{i}")).collect();
        protocols.push("/bad\0".into());
        protocols.push("/".repeat(300));
        protocols.push(crate::inbound::DCUTR_PROTOCOL.into());
        let kept = storable_protocols(&protocols);
        assert_eq!(kept.len(), MAX_PROTOCOLS);
        assert!(kept.iter().any(|p| p == crate::inbound::DCUTR_PROTOCOL));
        assert!(kept
            .iter()
            .all(|p| !p.contains('\0') && p.len() <= MAX_TEXT_BYTES));
    }
}
