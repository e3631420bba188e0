//! The bookkeeping of one walk: which peers are known, which wait to be crawled, which answered.
//! Pure data, no I/O, so the walk's rules are tested without a network.

use std::collections::{HashMap, HashSet, VecDeque};

use libp2p::{Multiaddr, PeerId};

/// Addresses kept per queued peer.
const MAX_ADDRS: usize = 16;

/// The peers of one walk. Bounded: at most `max_peers` peers are ever admitted.
#[derive(Debug)]
pub struct Frontier {
    local: PeerId,
    max_peers: usize,
    seen: HashSet<PeerId>,
    queue: VecDeque<PeerId>,
    addrs: HashMap<PeerId, Vec<Multiaddr>>,
    reached: Vec<PeerId>,
    failed: usize,
    refused: usize,
}

impl Frontier {
    /// An empty frontier for a walk by `local`.
    pub fn new(local: PeerId, max_peers: usize) -> Frontier {
        Frontier {
            local,
            max_peers,
            seen: HashSet::new(),
            queue: VecDeque::new(),
            addrs: HashMap::new(),
            reached: Vec::new(),
            failed: 0,
            refused: 0,
        }
    }

    /// Notes a peer and addresses to dial it; a new peer with at least one address joins the
    /// queue. Addresses of a peer still queued are merged.
    pub fn discover(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if peer == self.local || addrs.is_empty() {
            return;
        }
        if let Some(known) = self.addrs.get_mut(&peer) {
            for addr in addrs {
                if known.len() < MAX_ADDRS && !known.contains(&addr) {
                    known.push(addr);
                }
            }
            return;
        }
        if self.seen.contains(&peer) {
            return;
        }
        if self.seen.len() >= self.max_peers {
            self.refused += 1;
            return;
        }
        self.seen.insert(peer);
        self.queue.push_back(peer);
        self.addrs
            .insert(peer, addrs.into_iter().take(MAX_ADDRS).collect());
    }

    /// The next peer to crawl with its addresses.
    pub fn next_peer(&mut self) -> Option<(PeerId, Vec<Multiaddr>)> {
        let peer = self.queue.pop_front()?;
        let addrs = self.addrs.remove(&peer).unwrap_or_default();
        Some((peer, addrs))
    }

    /// Records that a peer answered.
    pub fn answered(&mut self, peer: PeerId) {
        self.reached.push(peer);
    }

    /// Records that a peer could not be crawled.
    pub fn failed(&mut self) {
        self.failed += 1;
    }

    /// Whether peers wait to be crawled.
    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Peers admitted so far.
    pub fn discovered(&self) -> usize {
        self.seen.len()
    }

    /// Peers that answered, in order.
    pub fn reached(&self) -> &[PeerId] {
        &self.reached
    }

    /// Peers that could not be crawled.
    pub fn failures(&self) -> usize {
        self.failed
    }

    /// Peers not admitted because the walk was full.
    pub fn refused(&self) -> usize {
        self.refused
    }

    /// Turns the frontier into its list of peers that answered.
    pub fn into_reached(self) -> Vec<PeerId> {
        self.reached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/198.18.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn peers_are_crawled_once_with_merged_addresses() {
        let local = PeerId::random();
        let mut frontier = Frontier::new(local, 100);
        let peer = PeerId::random();
        frontier.discover(peer, vec![addr(1)]);
        frontier.discover(peer, vec![addr(1), addr(2)]);
        frontier.discover(local, vec![addr(3)]);
        frontier.discover(PeerId::random(), Vec::new());
        assert_eq!(frontier.next_peer(), Some((peer, vec![addr(1), addr(2)])));
        assert_eq!(frontier.next_peer(), None);
        frontier.discover(peer, vec![addr(4)]);
        assert!(!frontier.has_queued(), "a crawled peer is not queued again");
        frontier.answered(peer);
        assert_eq!(frontier.reached(), &[peer]);
        assert_eq!(frontier.discovered(), 1);
    }

    #[test]
    fn the_walk_admits_at_most_max_peers() {
        let mut frontier = Frontier::new(PeerId::random(), 3);
        for _ in 0..5 {
            frontier.discover(PeerId::random(), vec![addr(1)]);
        }
        assert_eq!(frontier.discovered(), 3);
        assert_eq!(frontier.refused(), 2);
    }
}
