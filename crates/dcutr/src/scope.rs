//! Which addresses from a remote's CONNECT we dial: public ones only, as go-libp2p does
//! (go-multiaddr's `manet.IsPublicAddr`). A CONNECT is the word of a stranger; dialing its
//! loopback, private or link-local addresses would let it point a volunteer's client at the
//! volunteer's own machine or home network.
//!
//! Non-public, as go-multiaddr counts them: IPv4 0/8, 10/8, 100.64/10, 127/8, 169.254/16,
//! 172.16/12, 192.0.0.0/24, 192.0.2.0/24, 192.88.99.0/24, 192.168/16, 198.18/15,
//! 198.51.100.0/24, 203.0.113.0/24, 224/4 and 240/4 (with the broadcast address); IPv6 ::,
//! ::1, 64:ff9b:1::/48, 100::/64, 2001:db8::/32, fc00::/7, fe80::/10 and ff00::/8, and
//! IPv4-mapped addresses by their IPv4 part. A DNS name is public unless it is `localhost`; an
//! address with neither an IP nor a name (`/p2p/<id>` alone) names nothing to dial.

use std::net::{Ipv4Addr, Ipv6Addr};

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

/// Whether `addr`'s host part is public.
pub(crate) fn is_public(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => is_public_ipv4(ip),
        Some(Protocol::Ip6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_ipv4(v4),
            None => is_public_ipv6(ip),
        },
        Some(Protocol::Dns(name) | Protocol::Dns4(name) | Protocol::Dns6(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name != "localhost" && !name.ends_with(".localhost")
        }
        _ => false,
    }
}

/// Whether `addr` is a QUIC address.
pub(crate) fn is_quic(addr: &Multiaddr) -> bool {
    addr.iter()
        .any(|p| matches!(p, Protocol::QuicV1 | Protocol::Quic))
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
    !NON_PUBLIC.iter().any(|(net, len)| {
        let mask = if *len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(*len))
        };
        bits & mask == *net
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(&text.parse().unwrap())
    }

    #[test]
    fn loopback_private_and_special_ranges_are_not_dialed() {
        for text in [
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/192.168.1.10/tcp/4001",
            "/ip4/10.1.2.3/udp/4001/quic-v1",
            "/ip4/172.20.0.1/tcp/1",
            "/ip4/100.64.2.2/tcp/1",
            "/ip4/169.254.1.1/tcp/1",
            "/ip4/198.18.0.10/tcp/4001",
            "/ip4/203.0.113.5/tcp/1",
            "/ip4/0.0.0.0/tcp/1",
            "/ip4/255.255.255.255/udp/1",
            "/ip4/224.0.0.251/udp/5353",
            "/ip6/::1/tcp/4001",
            "/ip6/::/tcp/4001",
            "/ip6/fe80::1/tcp/4001",
            "/ip6/fd00::1/tcp/4001",
            "/ip6/2001:db8::1/tcp/4001",
            "/ip6/::ffff:192.168.0.1/tcp/4001",
            "/dns4/localhost/tcp/4001",
            "/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
        ] {
            assert!(!public(text), "{text} must not be dialed");
        }
    }

    #[test]
    fn public_addresses_are_dialed() {
        for text in [
            "/ip4/11.0.1.10/tcp/4001",
            "/ip4/8.8.8.8/udp/4001/quic-v1",
            "/ip4/198.20.0.1/tcp/1",
            "/ip4/100.128.0.1/tcp/1",
            "/ip6/2606:4700::1111/tcp/4001",
            "/ip6/::ffff:1.1.1.1/tcp/4001",
            "/dns4/example.org/tcp/4001",
        ] {
            assert!(public(text), "{text} is public");
        }
    }

    #[test]
    fn quic_addresses_are_told_apart() {
        assert!(is_quic(&"/ip4/11.0.1.10/udp/4001/quic-v1".parse().unwrap()));
        assert!(!is_quic(&"/ip4/11.0.1.10/tcp/4001".parse().unwrap()));
    }
}
