//! A preference for some transports over others in a hole punch, as the original punchr's
//! protocol filter (`punchr-original.md` §7.5): keep the non-relayed addresses that contain every
//! preferred protocol code; if none does, keep them all, so a preference never empties a punch.

use libp2p::Multiaddr;
use punchr_types::address::is_relayed;

/// Multiaddr protocol codes a hole punch should prefer (e.g. `[4, 6]` for IPv4 over TCP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preference {
    codes: Vec<u32>,
}

/// QUIC (draft-29) and QUIC v1: the original filter names the former; both count as QUIC.
const QUIC: u32 = 0x01cc;
const QUIC_V1: u32 = 0x01cd;

impl Preference {
    /// A preference for addresses with all these protocol codes; empty means none.
    pub fn new(codes: Vec<u32>) -> Self {
        Preference { codes }
    }

    fn matches(&self, address: &Multiaddr) -> bool {
        let present: Vec<u32> = address.protocol_stack().filter_map(code_of).collect();
        self.codes
            .iter()
            .all(|code| present.contains(code) || (*code == QUIC && present.contains(&QUIC_V1)))
    }

    /// The addresses to use: preferred ones if any, else every non-relayed one.
    pub fn apply(&self, addresses: &[Multiaddr]) -> Vec<Multiaddr> {
        let direct: Vec<Multiaddr> = addresses
            .iter()
            .filter(|a| !is_relayed(a))
            .cloned()
            .collect();
        if self.codes.is_empty() {
            return direct;
        }
        let preferred: Vec<Multiaddr> =
            direct.iter().filter(|a| self.matches(a)).cloned().collect();
        if preferred.is_empty() {
            direct
        } else {
            preferred
        }
    }
}

/// The code of a protocol by its name in a multiaddr's protocol stack.
fn code_of(name: &str) -> Option<u32> {
    Some(match name {
        "ip4" => 4,
        "tcp" => 6,
        "ip6" => 41,
        "udp" => 273,
        "quic" => QUIC,
        "quic-v1" => QUIC_V1,
        "webtransport" => 0x01d1,
        "webrtc-direct" => 0x0118,
        "ws" => 477,
        "wss" => 478,
        "dns" => 53,
        "dns4" => 54,
        "dns6" => 55,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses() -> Vec<Multiaddr> {
        [
            "/ip4/198.18.0.2/tcp/4001",
            "/ip4/198.18.0.2/udp/4001/quic-v1",
            "/ip6/2001:db8::2/tcp/4001",
            "/ip4/198.18.0.1/tcp/4001/p2p-circuit",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect()
    }

    #[test]
    fn preferred_addresses_win() {
        let ip4_quic = Preference::new(vec![4, 460]).apply(&addresses());
        assert_eq!(ip4_quic, vec![addresses()[1].clone()]);
        let ip6_tcp = Preference::new(vec![41, 6]).apply(&addresses());
        assert_eq!(ip6_tcp, vec![addresses()[2].clone()]);
    }

    #[test]
    fn no_match_or_no_preference_keeps_every_direct_address() {
        let all_direct = addresses()[..3].to_vec();
        assert_eq!(
            Preference::new(vec![41, 460]).apply(&addresses()),
            all_direct
        );
        assert_eq!(Preference::default().apply(&addresses()), all_direct);
    }
}
