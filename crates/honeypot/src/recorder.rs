//! Writes connection events to the database, off the swarm's task.
//!
//! The swarm loop must never wait for the database, so it hands [`Sighting`]s to this task over a
//! bounded queue; when the queue is full (the database fell far behind) events are dropped and
//! counted rather than piling up in memory. Each event is written by
//! [`Store::record_connection_event`], in one transaction with the peer, its agent, protocols and
//! addresses.

use std::sync::Arc;
use std::time::Instant;

use libp2p::{Multiaddr, PeerId};
use punchr_store::{NewConnectionEvent, PeerInfo, Store};
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

/// The store's form of a sighting.
pub fn connection_event(local: &PeerInfo, sighting: &Sighting) -> Option<NewConnectionEvent> {
    Some(NewConnectionEvent {
        local: local.clone(),
        remote: PeerInfo {
            peer_id: sighting.peer.to_base58(),
            agent_version: Some(sighting.identity.agent_version.clone()).filter(|a| !a.is_empty()),
            protocols: sighting.identity.protocols.clone(),
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

/// Starts the writer; it ends when every sender is dropped and the queue is empty.
pub fn spawn(
    store: Store,
    local: PeerInfo,
    metrics: Arc<Metrics>,
    observations: broadcast::Sender<Observation>,
) -> (mpsc::Sender<Sighting>, JoinHandle<()>) {
    let (sender, mut queue) = mpsc::channel::<Sighting>(QUEUE_CAPACITY);
    let task = tokio::spawn(async move {
        while let Some(sighting) = queue.recv().await {
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
                        agent = %sighting.identity.agent_version,
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
