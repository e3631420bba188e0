//! What the honeypot decides about inbound connections: a state machine without I/O.
//!
//! Implements `punchr-original.md` §6.3 and fixes its leak (§14.8): the original subscribed to
//! identify events *after* the connection was reported, so an identify that had already finished
//! was never seen and the waiting goroutine lived until shutdown. Here nothing waits. Every inbound
//! connection gets an entry with a deadline; identify results (the first one, periodic ones and
//! pushes) are fed in as they arrive; [`Tracker::expire`] gives up on connections whose deadline
//! passed; [`Tracker::closed`] forgets a connection and, with its last connection, the peer.
//! So the state is bounded by the open inbound connections, which the connection limits bound.
//!
//! A peer is recorded when it speaks `/libp2p/dcutr` and advertises relay addresses
//! ([`crate::address`]). Every qualifying inbound connection is one connection event (as in the
//! original); later identify results on it (pushes) make another event only when they bring a
//! relay address not recorded for that peer before.
//!
//! Everything here comes from strangers, so what they can make the honeypot write is bounded
//! (issue 15, points 4 and 8): only relay addresses whose relay hop is a public IP are kept
//! ([`punchr_types::address::has_public_relay_hop`]), at most [`MAX_RELAYS_PER_PEER`] per peer; a peer
//! ID gets at most [`TrackerLimits::max_events_per_peer`] events per [`WRITE_WINDOW_NS`] (identify
//! pushes with ever new relay addresses), and one source address at most
//! [`TrackerLimits::max_peers_per_address`] distinct peer IDs recorded per window (a Sybil flood
//! of fresh identities from one machine). The counts are forgotten with each window and never
//! hold more than [`MAX_BUDGET_ENTRIES`] entries.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};

use crate::address::{first_ip, reachability, Reachability};

/// Most relay addresses recorded per peer (and per event): the bound of a handout, since more
/// is a peer padding its identify, never more reach for the campaign.
pub const MAX_RELAYS_PER_PEER: usize = punchr_store::MAX_HANDOUT_ADDRESSES;

/// The window of the per-peer and per-address write limits, ns (an hour).
pub const WRITE_WINDOW_NS: i64 = 3_600_000_000_000;

/// Most peers and addresses the write limits count within a window; beyond it nothing new is
/// recorded until the window ends (the counts' memory stays bounded under any flood).
pub const MAX_BUDGET_ENTRIES: usize = 100_000;

/// The protocol that makes a peer a hole punching candidate.
pub const DCUTR_PROTOCOL: &str = "/libp2p/dcutr";

/// What identify told us about a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Agent version.
    pub agent_version: String,
    /// Protocols the peer speaks.
    pub protocols: Vec<String>,
    /// Addresses the peer listens on.
    pub listen_addrs: Vec<Multiaddr>,
}

/// Why a peer was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordReason {
    /// Identified on a new inbound connection.
    Connected,
    /// A later identify (usually a push) brought new relay addresses.
    NewRelayAddresses,
}

impl RecordReason {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordReason::Connected => "connected",
            RecordReason::NewRelayAddresses => "new_relay_addresses",
        }
    }
}

/// Why an inbound connection was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The peer does not speak `/libp2p/dcutr`.
    NoDcutr,
    /// The peer advertises a public address and no relayed one.
    PublicAddress,
    /// The peer advertises no relay address.
    NoRelayAddress,
    /// Identify did not finish before the deadline.
    IdentifyTimeout,
    /// Identify failed.
    IdentifyError,
    /// The peer advertises relay addresses, but none whose relay hop is a public IP.
    NoPublicRelay,
    /// The peer, or its source address, had its events for the window.
    WriteLimited,
    /// The connection closed before identify finished.
    ClosedEarly,
}

impl SkipReason {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NoDcutr => "no_dcutr",
            SkipReason::PublicAddress => "public_address",
            SkipReason::NoRelayAddress => "no_relay_address",
            SkipReason::IdentifyTimeout => "identify_timeout",
            SkipReason::IdentifyError => "identify_error",
            SkipReason::NoPublicRelay => "no_public_relay",
            SkipReason::WriteLimited => "write_limited",
            SkipReason::ClosedEarly => "closed_early",
        }
    }
}

/// A connection event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// The peer.
    pub peer: PeerId,
    /// What identify said.
    pub identity: Identity,
    /// The connection's remote address.
    pub connection_address: Multiaddr,
    /// Unix ns: the connection's opening for [`RecordReason::Connected`], the identify result's
    /// arrival otherwise, so the event says when the peer was seen with these addresses.
    pub seen_at: i64,
    /// Why.
    pub reason: RecordReason,
}

/// What the caller has to do after an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing (not an inbound connection we track, or nothing new).
    None,
    /// Store this event; `keep_alive` says whether to keep the connection open.
    Record {
        /// The event.
        sighting: Box<Sighting>,
        /// Keep the connection open beyond the idle timeout.
        keep_alive: bool,
    },
    /// Not a candidate; `release` says the connection was kept open so far and no longer is.
    Skip {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: SkipReason,
        /// Stop keeping the connection open.
        release: bool,
    },
}

#[derive(Debug)]
enum State {
    Awaiting { deadline: Instant },
    Skipped,
    Recorded { kept: bool },
}

#[derive(Debug)]
struct Connection {
    peer: PeerId,
    address: Multiaddr,
    opened_at: i64,
    state: State,
}

#[derive(Debug, Default)]
struct Peer {
    connections: usize,
    recorded_relays: BTreeSet<Multiaddr>,
}

/// Limits of the tracker.
#[derive(Debug, Clone, Copy)]
pub struct TrackerLimits {
    /// How long to wait for identify.
    pub identify_timeout: Duration,
    /// Most connections kept open at a time.
    pub max_kept: usize,
    /// Keep relay addresses whose relay hop is not public too (loopback tests).
    pub allow_private_relays: bool,
    /// Most events recorded per peer ID per window.
    pub max_events_per_peer: u32,
    /// Most distinct peer IDs recorded per source address (IPv6: per /64) per window.
    pub max_peers_per_address: u32,
}

impl Default for TrackerLimits {
    fn default() -> Self {
        TrackerLimits {
            identify_timeout: Duration::from_secs(30),
            max_kept: 2000,
            allow_private_relays: false,
            max_events_per_peer: 12,
            max_peers_per_address: 16,
        }
    }
}

/// Events recorded per peer and distinct peers per source address within the current window.
#[derive(Debug, Default)]
struct WriteBudget {
    window_start: i64,
    events: HashMap<PeerId, u32>,
    peers: HashMap<IpAddr, u32>,
}

impl WriteBudget {
    /// Takes one event of `peer` from `source` at `now_unix` if the limits allow it.
    fn take(
        &mut self,
        limits: &TrackerLimits,
        peer: PeerId,
        source: Option<IpAddr>,
        now_unix: i64,
    ) -> bool {
        if now_unix.saturating_sub(self.window_start) >= WRITE_WINDOW_NS
            || now_unix < self.window_start
        {
            self.events.clear();
            self.peers.clear();
            self.window_start = now_unix;
        }
        let events = self.events.get(&peer).copied();
        if events.is_some_and(|n| n >= limits.max_events_per_peer) {
            return false;
        }
        if events.is_none() {
            if self.events.len() >= MAX_BUDGET_ENTRIES || self.peers.len() >= MAX_BUDGET_ENTRIES {
                return false;
            }
            if let Some(source) = source.map(source_of) {
                let peers = self.peers.entry(source).or_default();
                if *peers >= limits.max_peers_per_address {
                    return false;
                }
                *peers += 1;
            }
        }
        *self.events.entry(peer).or_default() += 1;
        true
    }
}

/// The address a peer's writes count against: IPv6 by its /64 (one subscriber's network).
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Sizes of the tracker's state, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackerSizes {
    /// Inbound connections tracked.
    pub connections: usize,
    /// Of these, waiting for identify.
    pub awaiting: usize,
    /// Of these, kept open.
    pub kept: usize,
    /// Distinct peers.
    pub peers: usize,
}

/// The inbound connection state machine.
#[derive(Debug)]
pub struct Tracker {
    limits: TrackerLimits,
    connections: HashMap<ConnectionId, Connection>,
    peers: HashMap<PeerId, Peer>,
    budget: WriteBudget,
    awaiting: usize,
    kept: usize,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(limits: TrackerLimits) -> Tracker {
        Tracker {
            limits,
            connections: HashMap::new(),
            peers: HashMap::new(),
            budget: WriteBudget::default(),
            awaiting: 0,
            kept: 0,
        }
    }

    /// A new inbound connection; `opened_at` in Unix ns.
    pub fn opened(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        address: Multiaddr,
        opened_at: i64,
        now: Instant,
    ) {
        let deadline = now + self.limits.identify_timeout;
        let entry = Connection {
            peer,
            address,
            opened_at,
            state: State::Awaiting { deadline },
        };
        if self.connections.insert(connection, entry).is_none() {
            self.peers.entry(peer).or_default().connections += 1;
            self.awaiting += 1;
        }
    }

    /// An identify result on a connection; `now_unix` is its arrival in Unix ns.
    pub fn identified(
        &mut self,
        connection: ConnectionId,
        identity: Identity,
        now_unix: i64,
    ) -> Decision {
        let Some(entry) = self.connections.get_mut(&connection) else {
            return Decision::None;
        };
        let peer = entry.peer;
        let first = matches!(entry.state, State::Awaiting { .. });
        let verdict = classify(&identity, self.limits.allow_private_relays);
        let was_kept = matches!(entry.state, State::Recorded { kept: true });
        let relays = match verdict {
            Err(reason) => {
                let report = !matches!(entry.state, State::Skipped);
                entry.state = State::Skipped;
                self.awaiting -= usize::from(first);
                self.kept -= usize::from(was_kept);
                return if report || was_kept {
                    Decision::Skip {
                        peer,
                        reason,
                        release: was_kept,
                    }
                } else {
                    Decision::None
                };
            }
            Ok(relays) => relays,
        };
        let known = &mut self
            .peers
            .get_mut(&peer)
            .expect("peers of tracked connections are tracked")
            .recorded_relays;
        let room = MAX_RELAYS_PER_PEER.saturating_sub(known.len());
        let new_relays: Vec<Multiaddr> = relays
            .iter()
            .filter(|r| !known.contains(*r))
            .take(room)
            .cloned()
            .collect();
        let reason = match entry.state {
            State::Recorded { .. } if new_relays.is_empty() => return Decision::None,
            State::Recorded { .. } => RecordReason::NewRelayAddresses,
            State::Awaiting { .. } | State::Skipped => RecordReason::Connected,
        };
        let source = first_ip(&entry.address);
        if !self.budget.take(&self.limits, peer, source, now_unix) {
            if first {
                entry.state = State::Skipped;
                self.awaiting -= 1;
            }
            return if first {
                Decision::Skip {
                    peer,
                    reason: SkipReason::WriteLimited,
                    release: false,
                }
            } else {
                Decision::None
            };
        }
        known.extend(new_relays);
        // What is stored: the relay addresses recorded for the peer that it still advertises,
        // never its other addresses (nothing dials them) nor more than the cap.
        let stored: Vec<Multiaddr> = relays.into_iter().filter(|r| known.contains(r)).collect();
        let identity = Identity {
            listen_addrs: stored,
            ..identity
        };
        let keep_alive = was_kept || self.kept < self.limits.max_kept;
        self.kept += usize::from(keep_alive && !was_kept);
        self.awaiting -= usize::from(first);
        let seen_at = match reason {
            RecordReason::Connected if first => entry.opened_at,
            _ => now_unix,
        };
        entry.state = State::Recorded { kept: keep_alive };
        Decision::Record {
            sighting: Box::new(Sighting {
                peer,
                identity,
                connection_address: entry.address.clone(),
                seen_at,
                reason,
            }),
            keep_alive,
        }
    }

    /// Identify failed on a connection.
    pub fn identify_failed(&mut self, connection: ConnectionId) -> Decision {
        self.give_up(connection, SkipReason::IdentifyError)
    }

    fn give_up(&mut self, connection: ConnectionId, reason: SkipReason) -> Decision {
        match self.connections.get_mut(&connection) {
            Some(entry) if matches!(entry.state, State::Awaiting { .. }) => {
                entry.state = State::Skipped;
                self.awaiting -= 1;
                Decision::Skip {
                    peer: entry.peer,
                    reason,
                    release: false,
                }
            }
            _ => Decision::None,
        }
    }

    /// Gives up on every connection whose identify deadline passed.
    pub fn expire(&mut self, now: Instant) -> Vec<(ConnectionId, Decision)> {
        if self.awaiting == 0 {
            return Vec::new();
        }
        let overdue: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, c)| matches!(c.state, State::Awaiting { deadline } if deadline <= now))
            .map(|(id, _)| *id)
            .collect();
        overdue
            .into_iter()
            .map(|id| (id, self.give_up(id, SkipReason::IdentifyTimeout)))
            .collect()
    }

    /// A connection closed; forgets it (and its peer with the peer's last connection).
    pub fn closed(&mut self, connection: ConnectionId) -> Decision {
        let Some(entry) = self.connections.remove(&connection) else {
            return Decision::None;
        };
        if let Some(peer) = self.peers.get_mut(&entry.peer) {
            peer.connections -= 1;
            if peer.connections == 0 {
                self.peers.remove(&entry.peer);
            }
        }
        match entry.state {
            State::Awaiting { .. } => {
                self.awaiting -= 1;
                Decision::Skip {
                    peer: entry.peer,
                    reason: SkipReason::ClosedEarly,
                    release: false,
                }
            }
            State::Recorded { kept: true } => {
                self.kept -= 1;
                Decision::None
            }
            _ => Decision::None,
        }
    }

    /// Whether a connection is kept open by us.
    pub fn is_kept(&self, connection: ConnectionId) -> bool {
        matches!(
            self.connections.get(&connection),
            Some(Connection {
                state: State::Recorded { kept: true },
                ..
            })
        )
    }

    /// Current sizes.
    pub fn sizes(&self) -> TrackerSizes {
        TrackerSizes {
            connections: self.connections.len(),
            awaiting: self.awaiting,
            kept: self.kept,
            peers: self.peers.len(),
        }
    }
}

/// The relay addresses of a candidate that volunteers may be sent to, or why it is none.
fn classify(identity: &Identity, allow_private_relays: bool) -> Result<Vec<Multiaddr>, SkipReason> {
    if !identity.protocols.iter().any(|p| p == DCUTR_PROTOCOL) {
        return Err(SkipReason::NoDcutr);
    }
    let relays = match reachability(&identity.listen_addrs) {
        Reachability::Relayed(relays) => relays,
        Reachability::Public(_) => return Err(SkipReason::PublicAddress),
        Reachability::NoRelay => return Err(SkipReason::NoRelayAddress),
    };
    let dialable: Vec<Multiaddr> = relays
        .into_iter()
        .filter(|r| punchr_types::address::is_dialable_relay_address(r, allow_private_relays))
        .collect();
    if dialable.is_empty() {
        return Err(SkipReason::NoPublicRelay);
    }
    Ok(dialable)
}

#[cfg(test)]
#[path = "inbound_tests.rs"]
mod tests;
