//! Which of our addresses the outside world sees. Identify tells us, per connection, the address
//! the remote observed; an address counts as confirmed once enough distinct peers reported it
//! (the original waited for go-libp2p to do the same before the DCUtR handler existed).
//!
//! An observation only ever covers the transport of the connection it came over, and a NAT maps
//! TCP and UDP apart. A host that reached its bootstrap peers over TCP alone would offer no QUIC
//! address in its CONNECT, so a QUIC punch could never work: the remote would have nowhere to
//! send its UDP packets. [`TransportCoverage`] picks the extra dials that get each transport
//! observed.

use std::collections::{HashMap, HashSet};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use punchr_types::AddressFacts;

/// How many addresses may wait for confirmation at once. Any peer can claim to observe us
/// anywhere, so without a bound a stream of strangers would grow the map for ever; real hosts
/// have a handful of observed addresses per transport.
const MAX_PENDING: usize = 64;

/// Observations of our own addresses.
#[derive(Debug, Default)]
pub struct ObservedAddresses {
    observers: HashMap<Multiaddr, HashSet<PeerId>>,
    confirmed: Vec<Multiaddr>,
}

impl ObservedAddresses {
    /// Notes that `observer` saw us at `address`. Returns the address when this observation
    /// confirms it (public, not relayed, reported by `needed` distinct peers).
    pub fn observe(
        &mut self,
        address: Multiaddr,
        observer: PeerId,
        needed: usize,
    ) -> Option<Multiaddr> {
        let facts = AddressFacts::of(&address);
        if facts.is_relay || !facts.is_public || self.confirmed.contains(&address) {
            return None;
        }
        let needed = needed.max(1);
        if !self.observers.contains_key(&address) && self.observers.len() >= MAX_PENDING {
            self.forget_least_observed();
        }
        let observers = self.observers.entry(address.clone()).or_default();
        observers.insert(observer);
        if observers.len() < needed {
            return None;
        }
        self.observers.remove(&address);
        self.confirmed.push(address.clone());
        Some(address)
    }

    /// Makes room for a new pending address by dropping one with the fewest observers.
    fn forget_least_observed(&mut self) {
        let least = self
            .observers
            .iter()
            .min_by_key(|(_, observers)| observers.len())
            .map(|(address, _)| address.clone());
        if let Some(address) = least {
            self.observers.remove(&address);
        }
    }

    /// How many addresses wait for more observers.
    pub fn pending(&self) -> usize {
        self.observers.len()
    }

    /// Takes an address as confirmed without observations; returns whether it is new.
    pub fn assume(&mut self, address: Multiaddr) -> bool {
        if self.confirmed.contains(&address) {
            return false;
        }
        self.confirmed.push(address);
        true
    }

    /// Confirmed addresses, in the order they were confirmed.
    pub fn confirmed(&self) -> &[Multiaddr] {
        &self.confirmed
    }
}

/// The transports a host listens on and punches over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// QUIC v1 over UDP.
    Quic,
}

impl Transport {
    const ALL: [Transport; 2] = [Transport::Tcp, Transport::Quic];

    /// The transport of a direct address; `None` for relayed and other addresses.
    pub fn of(address: &Multiaddr) -> Option<Transport> {
        let mut transport = None;
        for protocol in address.iter() {
            match protocol {
                Protocol::P2pCircuit => return None,
                Protocol::Tcp(_) => transport = Some(Transport::Tcp),
                Protocol::QuicV1 => transport = Some(Transport::Quic),
                Protocol::Udp(_) => transport = None,
                _ => {}
            }
        }
        transport
    }
}

/// Which bootstrap peers have observed us over which transport, and what to dial so that every
/// transport gets observed by each of them.
#[derive(Debug, Default)]
pub struct TransportCoverage {
    bootstrap_peers: HashSet<PeerId>,
    covered: HashSet<(PeerId, Transport)>,
}

impl TransportCoverage {
    /// Remembers the peers (by their `/p2p/` component) whose observations we want on every
    /// transport.
    pub fn add_bootstrap_peers<'a>(&mut self, addresses: impl IntoIterator<Item = &'a Multiaddr>) {
        for address in addresses {
            if let Some(Protocol::P2p(peer)) = address.iter().last() {
                self.bootstrap_peers.insert(peer);
            }
        }
    }

    /// `peer` identified us as `observed`, listening on `listen`. Returns the addresses of
    /// `peer` to dial once each, one per transport it has not yet observed us over.
    pub fn identified(
        &mut self,
        peer: PeerId,
        observed: &Multiaddr,
        listen: &[Multiaddr],
    ) -> Vec<Multiaddr> {
        if !self.bootstrap_peers.contains(&peer) {
            return Vec::new();
        }
        if let Some(transport) = Transport::of(observed) {
            self.covered.insert((peer, transport));
        }
        let mut dials = Vec::new();
        for transport in Transport::ALL {
            if self.covered.contains(&(peer, transport)) {
                continue;
            }
            let Some(address) = listen.iter().find(|a| Transport::of(a) == Some(transport)) else {
                continue;
            };
            // Marked before the dial ends: a failed dial is not retried, so a peer that cannot be
            // reached over a transport costs one dial, not one per identify push.
            self.covered.insert((peer, transport));
            dials.push(address.clone());
        }
        dials
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(text: &[&str]) -> Vec<Multiaddr> {
        text.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn transports_of_addresses() {
        let [tcp, quic, circuit, udp] = [
            "/ip4/11.18.0.11/tcp/4001",
            "/ip4/11.18.0.11/udp/4001/quic-v1",
            "/ip4/11.18.0.10/tcp/4001/p2p-circuit",
            "/ip4/11.18.0.11/udp/4001",
        ]
        .map(|a| a.parse::<Multiaddr>().unwrap());
        assert_eq!(Transport::of(&tcp), Some(Transport::Tcp));
        assert_eq!(Transport::of(&quic), Some(Transport::Quic));
        assert_eq!(Transport::of(&circuit), None);
        assert_eq!(Transport::of(&udp), None);
    }

    #[test]
    fn a_bootstrap_peer_seen_over_tcp_is_dialed_once_over_quic() {
        let boot = PeerId::random();
        let mut coverage = TransportCoverage::default();
        let configured = addresses(&[&format!("/ip4/11.18.0.11/tcp/4001/p2p/{boot}")]);
        coverage.add_bootstrap_peers(&configured);
        let listen = addresses(&[
            "/ip4/11.18.0.11/tcp/4001",
            "/ip4/11.18.0.11/udp/4001/quic-v1",
        ]);
        let seen_over_tcp: Multiaddr = "/ip4/11.18.1.10/tcp/40283".parse().unwrap();
        assert_eq!(
            coverage.identified(boot, &seen_over_tcp, &listen),
            vec![listen[1].clone()]
        );
        assert!(
            coverage
                .identified(boot, &seen_over_tcp, &listen)
                .is_empty(),
            "an identify push asks for nothing new"
        );
        let seen_over_quic: Multiaddr = "/ip4/11.18.1.10/udp/51000/quic-v1".parse().unwrap();
        assert!(coverage
            .identified(boot, &seen_over_quic, &listen)
            .is_empty());
    }

    #[test]
    fn other_peers_and_missing_transports_cause_no_dials() {
        let boot = PeerId::random();
        let mut coverage = TransportCoverage::default();
        coverage.add_bootstrap_peers(&addresses(&[&format!(
            "/ip4/11.18.0.11/tcp/4001/p2p/{boot}"
        )]));
        let seen: Multiaddr = "/ip4/11.18.1.10/tcp/40283".parse().unwrap();
        let both = addresses(&[
            "/ip4/11.18.0.12/tcp/4001",
            "/ip4/11.18.0.12/udp/4001/quic-v1",
        ]);
        assert!(coverage
            .identified(PeerId::random(), &seen, &both)
            .is_empty());
        let tcp_only = addresses(&["/ip4/11.18.0.11/tcp/4001"]);
        assert!(coverage.identified(boot, &seen, &tcp_only).is_empty());
    }

    #[test]
    fn strangers_claiming_addresses_cannot_grow_the_pending_set_without_bound() {
        let mut observed = ObservedAddresses::default();
        for n in 0..10_000u32 {
            let [a, b, c, d] = n.to_be_bytes();
            let claimed: Multiaddr = format!("/ip4/11.{b}.{c}.{d}/tcp/{}", 1000 + u16::from(a))
                .parse()
                .unwrap();
            assert_eq!(observed.observe(claimed, PeerId::random(), 2), None);
        }
        assert_eq!(observed.pending(), MAX_PENDING);
        // A real address seen by two peers is still confirmed.
        let real: Multiaddr = "/ip4/11.0.0.1/tcp/4001".parse().unwrap();
        assert_eq!(observed.observe(real.clone(), PeerId::random(), 2), None);
        assert_eq!(
            observed.observe(real.clone(), PeerId::random(), 2),
            Some(real)
        );
        assert!(observed.pending() <= MAX_PENDING);
    }

    #[test]
    fn an_address_needs_distinct_observers() {
        let mut observed = ObservedAddresses::default();
        let address: Multiaddr = "/ip4/11.18.2.1/tcp/4001".parse().unwrap();
        let first = PeerId::random();
        assert_eq!(observed.observe(address.clone(), first, 2), None);
        assert_eq!(observed.observe(address.clone(), first, 2), None);
        assert_eq!(
            observed.observe(address.clone(), PeerId::random(), 2),
            Some(address.clone())
        );
        assert_eq!(observed.observe(address.clone(), PeerId::random(), 2), None);
        assert_eq!(observed.confirmed(), &[address]);
    }

    #[test]
    fn private_and_relayed_addresses_never_count() {
        let mut observed = ObservedAddresses::default();
        let private: Multiaddr = "/ip4/192.168.1.2/tcp/4001".parse().unwrap();
        let relayed: Multiaddr = "/ip4/11.18.2.1/tcp/4001/p2p-circuit".parse().unwrap();
        assert_eq!(observed.observe(private, PeerId::random(), 1), None);
        assert_eq!(observed.observe(relayed, PeerId::random(), 1), None);
        assert!(observed.confirmed().is_empty());
    }
}
