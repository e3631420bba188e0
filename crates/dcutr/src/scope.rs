//! Which addresses from a remote's CONNECT we dial: public ones only, as go-libp2p does
//! (go-multiaddr's `manet.IsPublicAddr`). A CONNECT is the word of a stranger; dialing its
//! loopback, private or link-local addresses would let it point a volunteer's client at the
//! volunteer's own machine or home network.
//!
//! Non-public IPs are those of [`punchr_types::address::is_public_ip`] (go-multiaddr's list, one
//! definition for every Punchr part). A DNS name is public unless it is `localhost`; an
//! address with neither an IP nor a name (`/p2p/<id>` alone) names nothing to dial.

use std::net::IpAddr;

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

/// Whether `addr`'s host part is public.
pub(crate) fn is_public(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => punchr_types::address::is_public_ip(IpAddr::V4(ip)),
        Some(Protocol::Ip6(ip)) => punchr_types::address::is_public_ip(IpAddr::V6(ip)),
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
