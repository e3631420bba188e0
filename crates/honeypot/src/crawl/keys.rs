//! Keys that fall into a chosen bucket of a remote peer's routing table.
//!
//! A Kademlia server answers FIND_NODE(key) with the peers closest to SHA-256(key). To get the
//! contents of bucket `cpl` of peer P, ask for a key whose hash shares exactly `cpl` leading bits
//! with SHA-256(P). This is the trick of go-libp2p-kbucket's `GenRandPeerID`, which the
//! go-libp2p-kad-dht crawler and Nebula use: a table maps every 16-bit hash prefix to a small
//! seed whose key hashes to that prefix, so any bucket up to [`MAX_CPL`] costs one lookup instead
//! of a brute-force search. The table takes about 770,000 hashes to fill, once per process.

use std::sync::OnceLock;

use libp2p::PeerId;
use sha2::{Digest, Sha256};

/// The deepest bucket the walk asks for (16 buckets, 0..=15, as Nebula does).
pub const MAX_CPL: u8 = 15;

/// A Kademlia key: the SHA-256 of a peer ID's bytes (or of any key's bytes).
pub type KadKey = [u8; 32];

/// The Kademlia key of a peer.
pub fn peer_key(peer: &PeerId) -> KadKey {
    Sha256::digest(peer.to_bytes()).into()
}

/// The number of leading bits two keys have in common.
pub fn common_prefix_len(a: &KadKey, b: &KadKey) -> u32 {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let diff = x ^ y;
        if diff != 0 {
            return i as u32 * 8 + diff.leading_zeros();
        }
    }
    256
}

/// The bytes of the probe peer ID for a seed: a SHA-256 multihash whose digest starts with the
/// seed, as `GenRandPeerID` builds them, so the key is a valid peer ID for picky servers.
fn probe_bytes(seed: u32) -> [u8; 34] {
    let mut bytes = [0u8; 34];
    bytes[0] = 0x12; // sha2-256
    bytes[1] = 32;
    bytes[2..6].copy_from_slice(&seed.to_be_bytes());
    bytes
}

fn prefix_of(bytes: &[u8]) -> u16 {
    let hash = Sha256::digest(bytes);
    u16::from_be_bytes([hash[0], hash[1]])
}

/// Seed for every 16-bit prefix of SHA-256(probe).
fn prefix_table() -> &'static [u32] {
    static TABLE: OnceLock<Vec<u32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = vec![u32::MAX; 1 << 16];
        let mut missing = table.len();
        let mut seed = 0u32;
        while missing > 0 {
            let slot = &mut table[usize::from(prefix_of(&probe_bytes(seed)))];
            if *slot == u32::MAX {
                *slot = seed;
                missing -= 1;
            }
            seed += 1;
        }
        table
    })
}

/// Builds the prefix table now (it is built on first use otherwise); call it from a blocking
/// thread at start so the first walk does not pay for it.
pub fn prepare() {
    prefix_table();
}

/// A FIND_NODE key whose hash shares exactly `cpl` (at most [`MAX_CPL`]) leading bits with
/// `target`; `random` picks among the many such keys.
pub fn key_in_bucket(target: &KadKey, cpl: u8, random: u16) -> Vec<u8> {
    assert!(
        cpl <= MAX_CPL,
        "bucket {cpl} is deeper than the prefix table"
    );
    let target_prefix = u16::from_be_bytes([target[0], target[1]]);
    let keep: u16 = if cpl == 0 { 0 } else { !(u16::MAX >> cpl) };
    let flip: u16 = 0x8000 >> cpl;
    let prefix = (target_prefix & keep) | (!target_prefix & flip) | (random & !(keep | flip));
    probe_bytes(prefix_table()[usize::from(prefix)]).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_land_in_the_requested_bucket() {
        for _ in 0..20 {
            let target = peer_key(&PeerId::random());
            for cpl in 0..=MAX_CPL {
                let key = key_in_bucket(&target, cpl, rand::random());
                let hashed: KadKey = Sha256::digest(&key).into();
                assert_eq!(common_prefix_len(&target, &hashed), u32::from(cpl));
                assert!(PeerId::from_bytes(&key).is_ok(), "probe keys are peer IDs");
            }
        }
    }

    #[test]
    fn common_prefixes_count_bits() {
        let a = [0u8; 32];
        let mut b = [0u8; 32];
        assert_eq!(common_prefix_len(&a, &b), 256);
        b[0] = 0x80;
        assert_eq!(common_prefix_len(&a, &b), 0);
        b[0] = 0;
        b[1] = 0x01;
        assert_eq!(common_prefix_len(&a, &b), 15);
    }
}
