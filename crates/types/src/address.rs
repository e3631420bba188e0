//! Which addresses are public and which go through a relay: one definition for every Punchr part.
//!
//! The honeypot, the server's selection, the client and the instrumented DCUtR all decide
//! whether an address a stranger gave us may be dialled by a volunteer. They ask here, so that
//! the honeypot never keeps what the selection would refuse and the client never dials what the
//! server would not serve. The ranges are go-multiaddr's (`manet.IsPublicAddr`), because the
//! remotes the campaign measures (go-libp2p, kubo, js-libp2p) drop the same ones from DCUtR:
//!
//! - IPv4: 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0.0/24, 192.0.2.0/24,
//!   192.88.99.0/24, 192.168/16, 198.18/15 (RFC 2544 benchmarking), 198.51.100.0/24,
//!   203.0.113.0/24, 224/4 and 240/4 (with the broadcast address) are not public;
//! - IPv6: ::, ::1, 64:ff9b:1::/48, 100::/64, 2001:db8::/32, fc00::/7, fe80::/10 and ff00::/8
//!   are not public, and an IPv4-mapped address is judged by its IPv4 part.
//!
//! The NAT lab's internet is 11.0.0.0/8, which is public by this rule, as it must be for every
//! implementation to accept it.
//!
//! The two functions that matter: [`is_public_ip`] and [`has_public_relay_hop`]. What Punchr
//! records about each stored address is [`AddressFacts`].

mod facts;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use multiaddr::{Multiaddr, Protocol};

pub use facts::AddressFacts;

/// Most relay addresses in one handout, and so the most a client dials for one punch and the
/// honeypot keeps per peer. A NATed go-libp2p or kubo peer keeps two relays with a handful of
/// addresses each; more than this is a peer padding its identify.
pub const MAX_HANDOUT_ADDRESSES: usize = 16;

/// Whether `addr` goes through a circuit relay (contains `/p2p-circuit`).
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// Whether `ip` is globally routable by the rule of the crate doc.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_ipv4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_ipv4(v4),
            None => is_public_ipv6(ip),
        },
    }
}

/// The IP of an address's first component, if that component is an IP.
pub fn leading_ip(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// The IP of a circuit relay address's relay hop: `Some` only for an address of the shape
/// `/ip4|ip6/<relay ip>/…/p2p/<relay id>/p2p-circuit[/p2p/<peer id>]` with exactly one circuit.
///
/// A relay hop named by DNS gets `None`: the name is resolved by each volunteer when it dials,
/// so it can point anywhere (a home router, a victim) whatever it resolved to when checked.
pub fn relay_hop_ip(addr: &Multiaddr) -> Option<IpAddr> {
    let ip = leading_ip(addr)?;
    let mut relay_named = false;
    let mut circuits = 0;
    for protocol in addr.iter() {
        match protocol {
            Protocol::P2p(_) if circuits == 0 => relay_named = true,
            Protocol::P2pCircuit => circuits += 1,
            _ => {}
        }
    }
    (circuits == 1 && relay_named).then_some(ip)
}

/// Whether `addr` is a circuit relay address whose relay hop is a public IP: the only relay
/// addresses a volunteer may be sent to.
pub fn has_public_relay_hop(addr: &Multiaddr) -> bool {
    relay_hop_ip(addr).is_some_and(is_public_ip)
}

/// Whether `addr` may be dialled as a relay address: its relay hop is public, or it is any
/// well-formed relay address when `allow_private` (loopback tests and private test networks).
pub fn is_dialable_relay_address(addr: &Multiaddr, allow_private: bool) -> bool {
    match relay_hop_ip(addr) {
        Some(ip) => allow_private || is_public_ip(ip),
        None => false,
    }
}

fn is_public_ipv4(ip: Ipv4Addr) -> bool {
    const NON_PUBLIC: [(u32, u8); 15] = [
        (0x0000_0000, 8),  // 0.0.0.0/8
        (0x0a00_0000, 8),  // 10.0.0.0/8
        (0x6440_0000, 10), // 100.64.0.0/10
        (0x7f00_0000, 8),  // 127.0.0.0/8
        (0xa9fe_0000, 16), // 169.254.0.0/16
        (0xac10_0000, 12), // 172.16.0.0/12
        (0xc000_0000, 24), // 192.0.0.0/24
        (0xc000_0200, 24), // 192.0.2.0/24
        (0xc058_6300, 24), // 192.88.99.0/24
        (0xc0a8_0000, 16), // 192.168.0.0/16
        (0xc612_0000, 15), // 198.18.0.0/15
        (0xc633_6400, 24), // 198.51.100.0/24
        (0xcb00_7100, 24), // 203.0.113.0/24
        (0xe000_0000, 4),  // 224.0.0.0/4
        (0xf000_0000, 4),  // 240.0.0.0/4, 255.255.255.255 included
    ];
    let bits = u32::from(ip);
    !NON_PUBLIC
        .iter()
        .any(|(net, len)| bits & (u32::MAX << (32 - u32::from(*len))) == *net)
}

fn is_public_ipv6(ip: Ipv6Addr) -> bool {
    const NON_PUBLIC: [(u128, u8); 8] = [
        (0, 128),                          // ::
        (1, 128),                          // ::1
        (0x0064_ff9b_0001_u128 << 80, 48), // 64:ff9b:1::/48
        (0x0100_u128 << 112, 64),          // 100::/64
        (0x2001_0db8_u128 << 96, 32),      // 2001:db8::/32
        (0xfc00_u128 << 112, 7),           // fc00::/7
        (0xfe80_u128 << 112, 10),          // fe80::/10
        (0xff00_u128 << 112, 8),           // ff00::/8
    ];
    let bits = u128::from(ip);
    !NON_PUBLIC
        .iter()
        .any(|(net, len)| bits & (u128::MAX << (128 - u32::from(*len))) == *net)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELAY_ID: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    const PEER_ID: &str = "12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8";

    fn public(ip: &str) -> bool {
        is_public_ip(ip.parse().unwrap())
    }

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    #[test]
    fn special_purpose_ranges_are_not_public() {
        for ip in [
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.1",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.254",
            "198.51.100.7",
            "203.0.113.5",
            "224.0.0.251",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "64:ff9b:1::1",
            "100::1",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:192.168.1.1",
            "::ffff:198.18.0.1",
        ] {
            assert!(!public(ip), "{ip} is not public");
        }
    }

    #[test]
    fn the_internet_and_the_lab_internet_are_public() {
        for ip in [
            "8.8.8.8",
            "11.0.1.10",
            "100.128.0.1",
            "147.75.80.110",
            "172.32.0.1",
            "198.20.0.1",
            "2606:4700::1111",
            "2a01:4f8::1",
            "64:ff9b::808:808",
            "::ffff:1.1.1.1",
        ] {
            assert!(public(ip), "{ip} is public");
        }
    }

    #[test]
    fn a_relay_hop_must_be_a_public_ip() {
        let good = addr(&format!(
            "/ip4/147.75.80.110/tcp/4001/p2p/{RELAY_ID}/p2p-circuit"
        ));
        assert!(has_public_relay_hop(&good));
        let with_target = addr(&format!(
            "/ip6/2a01:4f8::1/udp/4001/quic-v1/p2p/{RELAY_ID}/p2p-circuit/p2p/{PEER_ID}"
        ));
        assert!(has_public_relay_hop(&with_target));
        for bad in [
            format!("/ip4/192.168.1.1/tcp/80/p2p/{RELAY_ID}/p2p-circuit"),
            format!("/ip4/127.0.0.1/tcp/4001/p2p/{RELAY_ID}/p2p-circuit"),
            format!("/ip4/198.18.0.1/tcp/4001/p2p/{RELAY_ID}/p2p-circuit"),
            format!("/dns4/relay.example.org/tcp/4001/p2p/{RELAY_ID}/p2p-circuit"),
            "/ip4/147.75.80.110/tcp/4001/p2p-circuit".to_string(),
            format!("/p2p/{RELAY_ID}/p2p-circuit"),
            "/ip4/147.75.80.110/tcp/4001".to_string(),
            format!(
                "/ip4/147.75.80.110/tcp/4001/p2p/{RELAY_ID}/p2p-circuit/ip4/10.0.0.1/tcp/1/p2p/{PEER_ID}/p2p-circuit"
            ),
        ] {
            assert!(!has_public_relay_hop(&addr(&bad)), "{bad}");
        }
    }

    #[test]
    fn private_relay_hops_only_when_allowed() {
        let loopback = addr(&format!(
            "/ip4/127.0.0.1/tcp/4001/p2p/{RELAY_ID}/p2p-circuit"
        ));
        assert!(!is_dialable_relay_address(&loopback, false));
        assert!(is_dialable_relay_address(&loopback, true));
        let direct = addr("/ip4/127.0.0.1/tcp/4001");
        assert!(!is_dialable_relay_address(&direct, true));
    }
}
