//! Which of our addresses the outside world sees. Identify tells us, per connection, the address
//! the remote observed; an address counts as confirmed once enough distinct peers reported it
//! (the original waited for go-libp2p to do the same before the DCUtR handler existed).

use std::collections::{HashMap, HashSet};

use libp2p::{Multiaddr, PeerId};
use punchr_store::AddressFacts;

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
        let observers = self.observers.entry(address.clone()).or_default();
        observers.insert(observer);
        if observers.len() < needed.max(1) {
            return None;
        }
        self.confirmed.push(address.clone());
        Some(address)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_needs_distinct_observers() {
        let mut observed = ObservedAddresses::default();
        let address: Multiaddr = "/ip4/198.18.2.1/tcp/4001".parse().unwrap();
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
        let relayed: Multiaddr = "/ip4/198.18.2.1/tcp/4001/p2p-circuit".parse().unwrap();
        assert_eq!(observed.observe(private, PeerId::random(), 1), None);
        assert_eq!(observed.observe(relayed, PeerId::random(), 1), None);
        assert!(observed.confirmed().is_empty());
    }
}
