//! Connection limits that forget peers.
//!
//! Same limits and semantics as `libp2p-connection-limits` 0.7 (pending and established counts
//! per direction, established per peer), written anew because that crate never removes a peer's
//! entry from its per-peer map when the peer's last connection closes (`on_swarm_event`,
//! `ConnectionClosed`: the connection leaves the set, the empty set stays). For a honeypot, which
//! meets a new peer on nearly every connection, that is about 200 bytes per peer ever seen,
//! forever: the churn benchmark showed it as steady growth. Here an entry lives exactly as long
//! as the peer has an established connection.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// The limits; each bounds the connections in one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Inbound connections being set up.
    pub pending_incoming: usize,
    /// Outbound connections being set up.
    pub pending_outgoing: usize,
    /// Established inbound connections.
    pub established_incoming: usize,
    /// Established outbound connections.
    pub established_outgoing: usize,
    /// Established connections with one peer.
    pub per_peer: usize,
}

/// A limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection limit reached: at most {limit} {what}")]
pub struct LimitReached {
    /// The limit.
    pub limit: usize,
    /// What it counts.
    pub what: &'static str,
}

fn check(current: usize, limit: usize, what: &'static str) -> Result<(), ConnectionDenied> {
    if current >= limit {
        return Err(ConnectionDenied::new(LimitReached { limit, what }));
    }
    Ok(())
}

/// The behaviour; hands out no handlers of substance.
#[derive(Debug)]
pub struct Behaviour {
    limits: Limits,
    pending_incoming: HashSet<ConnectionId>,
    pending_outgoing: HashSet<ConnectionId>,
    established_incoming: HashSet<ConnectionId>,
    established_outgoing: HashSet<ConnectionId>,
    per_peer: HashMap<PeerId, usize>,
}

impl Behaviour {
    /// Enforces `limits`.
    pub fn new(limits: Limits) -> Behaviour {
        Behaviour {
            limits,
            pending_incoming: HashSet::new(),
            pending_outgoing: HashSet::new(),
            established_incoming: HashSet::new(),
            established_outgoing: HashSet::new(),
            per_peer: HashMap::new(),
        }
    }

    /// Peers with at least one established connection (what the per-peer map holds).
    pub fn tracked_peers(&self) -> usize {
        self.per_peer.len()
    }

    fn check_peer(&self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        let current = self.per_peer.get(peer).copied().unwrap_or(0);
        check(current, self.limits.per_peer, "connections per peer")
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        check(
            self.pending_incoming.len(),
            self.limits.pending_incoming,
            "pending inbound connections",
        )?;
        self.pending_incoming.insert(connection);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.pending_incoming.remove(&connection);
        check(
            self.established_incoming.len(),
            self.limits.established_incoming,
            "inbound connections",
        )?;
        self.check_peer(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection: ConnectionId,
        _: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        check(
            self.pending_outgoing.len(),
            self.limits.pending_outgoing,
            "pending outbound connections",
        )?;
        self.pending_outgoing.insert(connection);
        Ok(Vec::new())
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.pending_outgoing.remove(&connection);
        check(
            self.established_outgoing.len(),
            self.limits.established_outgoing,
            "outbound connections",
        )?;
        self.check_peer(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(established) => {
                match established.endpoint {
                    ConnectedPoint::Listener { .. } => {
                        self.established_incoming.insert(established.connection_id)
                    }
                    ConnectedPoint::Dialer { .. } => {
                        self.established_outgoing.insert(established.connection_id)
                    }
                };
                *self.per_peer.entry(established.peer_id).or_default() += 1;
            }
            FromSwarm::ConnectionClosed(closed) => {
                self.established_incoming.remove(&closed.connection_id);
                self.established_outgoing.remove(&closed.connection_id);
                if let Some(count) = self.per_peer.get_mut(&closed.peer_id) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.per_peer.remove(&closed.peer_id);
                    }
                }
            }
            FromSwarm::DialFailure(failure) => {
                self.pending_outgoing.remove(&failure.connection_id);
            }
            FromSwarm::ListenFailure(failure) => {
                self.pending_incoming.remove(&failure.connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use libp2p::swarm::behaviour::{ConnectionClosed, ConnectionEstablished};

    use super::*;

    fn limits() -> Limits {
        Limits {
            pending_incoming: 10,
            pending_outgoing: 10,
            established_incoming: 2,
            established_outgoing: 10,
            per_peer: 2,
        }
    }

    fn inbound() -> ConnectedPoint {
        ConnectedPoint::Listener {
            local_addr: "/ip4/127.0.0.1/tcp/11000".parse().unwrap(),
            send_back_addr: "/ip4/127.0.0.1/tcp/50000".parse().unwrap(),
        }
    }

    /// Runs an inbound connection through the behaviour as the swarm would; true if accepted.
    fn open(b: &mut Behaviour, peer: PeerId, id: usize) -> bool {
        let (connection, addr) = (ConnectionId::new_unchecked(id), Multiaddr::empty());
        if b.handle_pending_inbound_connection(connection, &addr, &addr)
            .is_err()
        {
            return false;
        }
        if b.handle_established_inbound_connection(connection, peer, &addr, &addr)
            .is_err()
        {
            return false;
        }
        let endpoint = inbound();
        b.on_swarm_event(FromSwarm::ConnectionEstablished(ConnectionEstablished {
            peer_id: peer,
            connection_id: connection,
            endpoint: &endpoint,
            failed_addresses: &[],
            other_established: 0,
        }));
        true
    }

    fn close(b: &mut Behaviour, peer: PeerId, id: usize) {
        let endpoint = inbound();
        b.on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id: peer,
            connection_id: ConnectionId::new_unchecked(id),
            endpoint: &endpoint,
            cause: None,
            remaining_established: 0,
        }));
    }

    #[test]
    fn limits_hold_and_free_up() {
        let mut b = Behaviour::new(limits());
        let (a, c) = (PeerId::random(), PeerId::random());
        assert!(open(&mut b, a, 1));
        assert!(open(&mut b, a, 2));
        assert!(!open(&mut b, c, 3), "two inbound connections at most");
        close(&mut b, a, 1);
        assert!(open(&mut b, c, 4));
        assert!(!open(&mut b, a, 5), "inbound limit again");
    }

    #[test]
    fn per_peer_limit() {
        let mut b = Behaviour::new(Limits {
            per_peer: 1,
            ..limits()
        });
        let a = PeerId::random();
        assert!(open(&mut b, a, 1));
        assert!(!open(&mut b, a, 2));
    }

    #[test]
    fn peers_are_forgotten_with_their_last_connection() {
        let mut b = Behaviour::new(Limits {
            established_incoming: 100_000,
            ..limits()
        });
        for id in 0..1000 {
            let peer = PeerId::random();
            assert!(open(&mut b, peer, id));
            close(&mut b, peer, id);
        }
        assert_eq!(b.tracked_peers(), 0);
        assert!(b.pending_incoming.is_empty() && b.established_incoming.is_empty());
    }
}
