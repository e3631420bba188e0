//! The swarm's task: turns libp2p events into inputs of the [`Tracker`] and carries out its
//! decisions (record, keep open, release). It never waits for anything but the next event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::metrics::Recorder;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{identify, ping, StreamProtocol, Swarm};
use punchr_store::now_unix_nanos;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::address::is_crawlable;
use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::crawl::Peers;
use crate::inbound::{Decision, Identity, Sighting, Tracker};
use crate::metrics::Metrics;
use crate::recorder::Observation;
use crate::TARGET;

/// How often overdue identifications are given up.
const EXPIRY_TICK: Duration = Duration::from_millis(500);

/// The swarm and what it feeds.
pub(crate) struct Node {
    /// The libp2p host.
    pub(crate) swarm: Swarm<Behaviour>,
    /// Inbound connection decisions.
    pub(crate) tracker: Tracker,
    /// Queue to the database writer.
    pub(crate) recorder: mpsc::Sender<Sighting>,
    /// Metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Observations for embedders.
    pub(crate) observations: broadcast::Sender<Observation>,
    /// The walk's requests for routing table peers.
    pub(crate) seeds: mpsc::Receiver<oneshot::Sender<Peers>>,
    /// The Kademlia protocol (to recognise DHT servers).
    pub(crate) kad_protocol: StreamProtocol,
    /// Whether private addresses of DHT servers go into the routing table.
    pub(crate) allow_private: bool,
}

impl Node {
    /// Runs until `stop` turns true; the swarm (and every connection) is dropped at the end.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(EXPIRY_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_event(event),
                Some(reply) = self.seeds.recv() => {
                    let _ = reply.send(self.routing_table());
                }
                _ = tick.tick() => {
                    for (connection, decision) in self.tracker.expire(Instant::now()) {
                        self.apply(connection, decision);
                    }
                }
                _ = stop.wait_for(|stopped| *stopped) => break,
            }
            self.metrics.tracker(self.tracker.sizes());
        }
        tracing::info!(target: TARGET, event = "swarm_stopped");
    }

    fn routing_table(&mut self) -> Peers {
        let mut peers = Vec::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                peers.push((
                    *entry.node.key.preimage(),
                    entry.node.value.iter().cloned().collect(),
                ));
            }
        }
        peers
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.metrics.libp2p().record(&event);
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint: ConnectedPoint::Listener { send_back_addr, .. },
                ..
            } => {
                tracing::debug!(target: TARGET, event = "inbound_connection", peer = %peer_id, address = %send_back_addr);
                self.tracker.opened(
                    connection_id,
                    peer_id,
                    send_back_addr,
                    now_unix_nanos(),
                    Instant::now(),
                );
            }
            SwarmEvent::ConnectionClosed { connection_id, .. } => {
                let decision = self.tracker.closed(connection_id);
                self.apply(connection_id, decision);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => {
                self.metrics.libp2p().record(&event);
                self.on_identify(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => {
                self.metrics.libp2p().record(&event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => {
                self.metrics.libp2p().record(&event);
                self.on_ping(event);
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(target: TARGET, event = "listening", %address);
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(target: TARGET, event = "listener_error", %error);
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                tracing::debug!(target: TARGET, event = "inbound_refused", address = %send_back_addr, %error);
            }
            _ => {}
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        match event {
            identify::Event::Received {
                connection_id,
                peer_id,
                info,
            } => {
                if info.protocols.contains(&self.kad_protocol) {
                    // A DHT server: worth a place in our routing table (rust-libp2p's own
                    // bootstrap server does the same, as kad only learns dialled addresses).
                    let kad = &mut self.swarm.behaviour_mut().kad;
                    for addr in info
                        .listen_addrs
                        .iter()
                        .filter(|a| is_crawlable(a, self.allow_private))
                    {
                        kad.add_address(&peer_id, addr.clone());
                    }
                }
                let identity = Identity {
                    agent_version: info.agent_version,
                    protocols: info.protocols.iter().map(ToString::to_string).collect(),
                    listen_addrs: info.listen_addrs,
                };
                let decision = self
                    .tracker
                    .identified(connection_id, identity, now_unix_nanos());
                self.apply(connection_id, decision);
            }
            identify::Event::Error {
                connection_id,
                peer_id,
                error,
            } => {
                tracing::debug!(target: TARGET, event = "identify_failed", peer = %peer_id, %error);
                let decision = self.tracker.identify_failed(connection_id);
                self.apply(connection_id, decision);
            }
            _ => {}
        }
    }

    fn on_ping(&mut self, event: ping::Event) {
        // A peer without ping is not dead; one that stops answering is.
        if let Err(error) = event.result {
            if !matches!(error, ping::Failure::Unsupported)
                && self.tracker.is_kept(event.connection)
            {
                tracing::debug!(target: TARGET, event = "kept_connection_dead", peer = %event.peer, %error);
                self.swarm.close_connection(event.connection);
            }
        }
    }

    fn apply(&mut self, connection: ConnectionId, decision: Decision) {
        match decision {
            Decision::None => {}
            Decision::Record {
                sighting,
                keep_alive,
            } => {
                let peer = sighting.peer;
                self.metrics.inbound(sighting.reason.as_str());
                if keep_alive {
                    self.swarm
                        .behaviour_mut()
                        .keep_alive
                        .set(peer, connection, true);
                }
                if self.recorder.try_send(*sighting).is_err() {
                    self.metrics.record_dropped();
                    tracing::warn!(target: TARGET, event = "record_dropped", %peer, "the database falls behind");
                }
            }
            Decision::Skip {
                peer,
                reason,
                release,
            } => {
                self.metrics.inbound(reason.as_str());
                tracing::debug!(target: TARGET, event = "inbound_skipped", %peer, reason = reason.as_str());
                if release {
                    self.swarm
                        .behaviour_mut()
                        .keep_alive
                        .set(peer, connection, false);
                }
                let _ = self
                    .observations
                    .send(Observation::Skipped { peer, reason });
            }
        }
    }
}
