//! The addresses we offer the remote in our CONNECT.
//!
//! Like the stock crate's `Candidates` (`src/behaviour.rs`): observed address candidates in an LRU
//! of 20, relayed ones ignored, `/p2p/<self>` appended. Unlike it, confirmed external addresses
//! and addresses added by the user count too, and the list is read when a CONNECT is sent, not
//! copied when the relayed connection is made (rust-libp2p PR #5583: a connection made before
//! identify produced a candidate sends an empty CONNECT for its whole life).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
};

use libp2p::{multiaddr::Protocol, Multiaddr, PeerId};
use punchr_types::address::is_relayed;

/// How many observed candidates are remembered (the stock crate's LRU size).
const OBSERVED_CAPACITY: usize = 20;

/// Our own address candidates, by source.
#[derive(Debug, Clone)]
pub(crate) struct Candidates {
    me: PeerId,
    /// Added through [`Behaviour::add_candidate`](crate::Behaviour::add_candidate).
    added: Vec<Multiaddr>,
    /// Confirmed external addresses, until they expire.
    confirmed: Vec<Multiaddr>,
    /// External address candidates (usually identify's observed address), most recent first.
    observed: VecDeque<Multiaddr>,
}

impl Candidates {
    pub(crate) fn new(me: PeerId) -> Self {
        Self {
            me,
            added: Vec::new(),
            confirmed: Vec::new(),
            observed: VecDeque::with_capacity(OBSERVED_CAPACITY),
        }
    }

    /// Adds an address chosen by the user; it stays until removed.
    pub(crate) fn add(&mut self, addr: Multiaddr) {
        if let Some(addr) = self.normalise(addr) {
            if !self.added.contains(&addr) {
                self.added.push(addr);
            }
        }
    }

    /// Removes an address added with [`Candidates::add`].
    pub(crate) fn remove(&mut self, addr: &Multiaddr) {
        if let Some(addr) = self.normalise(addr.clone()) {
            self.added.retain(|a| *a != addr);
        }
    }

    /// Records a confirmed external address.
    pub(crate) fn confirm(&mut self, addr: Multiaddr) {
        if let Some(addr) = self.normalise(addr) {
            if !self.confirmed.contains(&addr) {
                self.confirmed.push(addr);
            }
        }
    }

    /// Forgets a confirmed external address that expired.
    pub(crate) fn expire(&mut self, addr: &Multiaddr) {
        if let Some(addr) = self.normalise(addr.clone()) {
            self.confirmed.retain(|a| *a != addr);
        }
    }

    /// Records an external address candidate; a repeated one moves to the front.
    pub(crate) fn observe(&mut self, addr: Multiaddr) {
        let Some(addr) = self.normalise(addr) else {
            return;
        };
        self.observed.retain(|a| *a != addr);
        self.observed.push_front(addr);
        self.observed.truncate(OBSERVED_CAPACITY);
    }

    /// The list for a CONNECT: added, then confirmed, then observed (most recent first), each
    /// address once.
    pub(crate) fn list(&self) -> Vec<Multiaddr> {
        let mut list: Vec<Multiaddr> = Vec::new();
        for addr in self
            .added
            .iter()
            .chain(&self.confirmed)
            .chain(&self.observed)
        {
            if !list.contains(addr) {
                list.push(addr.clone());
            }
        }
        list
    }

    /// `None` for addresses that are no use to the remote: relayed ones and ones naming another
    /// peer. Otherwise the address ending in `/p2p/<self>`.
    fn normalise(&self, mut addr: Multiaddr) -> Option<Multiaddr> {
        if is_relayed(&addr) {
            return None;
        }
        match addr.iter().last() {
            Some(Protocol::P2p(peer)) if peer == self.me => Some(addr),
            Some(Protocol::P2p(_)) => None,
            _ => {
                addr.push(Protocol::P2p(self.me));
                Some(addr)
            }
        }
    }
}

/// [`Candidates`] shared by the behaviour (which writes) and the connection handlers (which read
/// at CONNECT time).
#[derive(Debug, Clone)]
pub(crate) struct SharedCandidates(Arc<Mutex<Candidates>>);

impl SharedCandidates {
    pub(crate) fn new(me: PeerId) -> Self {
        Self(Arc::new(Mutex::new(Candidates::new(me))))
    }

    /// Runs `f` on the candidates (a poisoned lock still holds a usable list).
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Candidates) -> T) -> T {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// The current list for a CONNECT.
    pub(crate) fn list(&self) -> Vec<Multiaddr> {
        self.with(|c| c.list())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn with_me(s: &str, me: PeerId) -> Multiaddr {
        addr(s).with(Protocol::P2p(me))
    }

    #[test]
    fn appends_own_peer_id_and_ignores_relayed_and_foreign() {
        let me = PeerId::random();
        let mut c = Candidates::new(me);
        c.observe(addr("/ip4/1.2.3.4/tcp/1"));
        c.observe(with_me("/ip4/1.2.3.4/tcp/2", me));
        c.observe(addr("/ip4/1.2.3.4/tcp/3/p2p-circuit"));
        c.observe(addr("/ip4/1.2.3.4/tcp/4").with(Protocol::P2p(PeerId::random())));
        assert_eq!(
            c.list(),
            vec![
                with_me("/ip4/1.2.3.4/tcp/2", me),
                with_me("/ip4/1.2.3.4/tcp/1", me)
            ]
        );
    }

    #[test]
    fn observed_is_an_lru_of_twenty() {
        let me = PeerId::random();
        let mut c = Candidates::new(me);
        for port in 0..25 {
            c.observe(addr(&format!("/ip4/1.2.3.4/tcp/{port}")));
        }
        // Seeing port 10 again makes it the most recent.
        c.observe(addr("/ip4/1.2.3.4/tcp/10"));
        let list = c.list();
        assert_eq!(list.len(), OBSERVED_CAPACITY);
        assert_eq!(list[0], with_me("/ip4/1.2.3.4/tcp/10", me));
        assert_eq!(list[1], with_me("/ip4/1.2.3.4/tcp/24", me));
        assert!(!list.contains(&with_me("/ip4/1.2.3.4/tcp/4", me)));
    }

    #[test]
    fn sources_are_merged_in_order_without_duplicates() {
        let me = PeerId::random();
        let mut c = Candidates::new(me);
        c.observe(addr("/ip4/1.1.1.1/tcp/1"));
        c.confirm(addr("/ip4/2.2.2.2/tcp/2"));
        c.confirm(addr("/ip4/1.1.1.1/tcp/1"));
        c.add(addr("/ip4/3.3.3.3/tcp/3"));
        assert_eq!(
            c.list(),
            vec![
                with_me("/ip4/3.3.3.3/tcp/3", me),
                with_me("/ip4/2.2.2.2/tcp/2", me),
                with_me("/ip4/1.1.1.1/tcp/1", me)
            ]
        );
        c.expire(&addr("/ip4/2.2.2.2/tcp/2"));
        c.remove(&with_me("/ip4/3.3.3.3/tcp/3", me));
        assert_eq!(c.list(), vec![with_me("/ip4/1.1.1.1/tcp/1", me)]);
    }

    #[test]
    fn shared_list_is_read_fresh() {
        let me = PeerId::random();
        let shared = SharedCandidates::new(me);
        let handler_view = shared.clone();
        assert!(handler_view.list().is_empty());
        shared.with(|c| c.add(addr("/ip4/1.1.1.1/tcp/1")));
        assert_eq!(handler_view.list(), vec![with_me("/ip4/1.1.1.1/tcp/1", me)]);
    }
}
