//! Which advertised addresses make a peer one that is reached through relays.
//!
//! A peer qualifies when it advertises at least one relayed address (`/p2p-circuit`). The
//! original honeypot (`punchr-original.md` §6.3, step 5) also required every other address to be
//! private, which fit go-libp2p of its time: a host that AutoNAT found private replaced its
//! public addresses by relay addresses. go-libp2p with AutoNAT v2 (v0.42 and later, every kubo
//! since) advertises the address its NAT maps for it beside its relay addresses until AutoNAT v2
//! servers have found that address unreachable, and drops the relay addresses once one is found
//! reachable. So relay addresses are what says "behind a NAT"; a public address beside them is an
//! unverified guess of the peer's own. In the lab such a kubo was skipped on every connection
//! while the original rule held. A peer with public addresses and no relayed one is public.
//! "Private" means the ranges go-multiaddr's `IsPrivateAddr` lists — 127/8, 10/8,
//! 100.64/10, 172.16/12, 192.168/16, 169.254/16, ::1, fc00::/7, fe80::/10 — plus the unspecified
//! addresses, which nobody can dial either. Everything else counts as public, including
//! 198.18.0.0/15, which the NAT lab uses as its internet, and addresses without an IP
//! (`/dns4/…`), which may well resolve to a public host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

/// How an advertised address can be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// Through a circuit relay (`/p2p-circuit`).
    Relayed,
    /// Only from inside the peer's own network.
    Private,
    /// From the internet, as far as we can tell.
    Public,
}

/// Classifies one address.
pub fn kind(addr: &Multiaddr) -> AddressKind {
    if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
        return AddressKind::Relayed;
    }
    match first_ip(addr) {
        Some(ip) if is_private_ip(ip) => AddressKind::Private,
        _ => AddressKind::Public,
    }
}

/// The first IP component of an address.
pub fn first_ip(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Whether an IP lies in one of the private ranges of the module doc.
pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_private_ipv4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_private_ipv4(v4),
            None => is_private_ipv6(ip),
        },
    }
}

fn is_private_ipv4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b); // 100.64.0.0/10, carrier-grade NAT
    ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified() || shared
}

fn is_private_ipv6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00; // fc00::/7
    let link_local = first & 0xffc0 == 0xfe80; // fe80::/10
    ip.is_loopback() || ip.is_unspecified() || unique_local || link_local
}

/// What a peer's advertised addresses say about its reachability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    /// The peer advertises these relayed addresses (never empty), whatever else it advertises.
    Relayed(Vec<Multiaddr>),
    /// The peer advertises no relayed address and this public one.
    Public(Multiaddr),
    /// No relayed and no public address (possibly no address at all).
    NoRelay,
}

/// Applies the rule of the module doc to a peer's advertised addresses.
pub fn reachability(addrs: &[Multiaddr]) -> Reachability {
    let relays: Vec<Multiaddr> = addrs
        .iter()
        .filter(|a| kind(a) == AddressKind::Relayed)
        .cloned()
        .collect();
    if !relays.is_empty() {
        return Reachability::Relayed(relays);
    }
    match addrs.iter().find(|a| kind(a) == AddressKind::Public) {
        Some(public) => Reachability::Public(public.clone()),
        None => Reachability::NoRelay,
    }
}

/// Whether the crawler may dial an address: a direct TCP or QUIC address (no relay, no
/// websocket or WebRTC, which this host cannot dial), and public unless `allow_private`.
/// Dialling private ranges from a server in a data centre looks like a port scan to the hoster,
/// so production keeps `allow_private` off; loopback tests turn it on.
pub fn is_crawlable(addr: &Multiaddr, allow_private: bool) -> bool {
    let mut transport = false;
    for protocol in addr.iter() {
        match protocol {
            Protocol::Tcp(_) | Protocol::QuicV1 => transport = true,
            Protocol::P2pCircuit
            | Protocol::Ws(_)
            | Protocol::Wss(_)
            | Protocol::WebTransport
            | Protocol::WebRTCDirect
            | Protocol::WebRTC
            | Protocol::Quic => return false,
            _ => {}
        }
    }
    transport && (allow_private || kind(addr) == AddressKind::Public)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    const RELAY: &str =
        "/ip4/147.75.80.110/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit";

    #[test]
    fn the_original_private_ranges_are_private() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "172.16.0.1",
            "172.31.255.1",
            "192.168.178.20",
            "169.254.1.1",
            "0.0.0.0",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:192.168.1.1",
        ] {
            assert!(is_private_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_lab_internet_and_real_internet_are_public() {
        for ip in [
            "198.18.0.1",
            "198.19.255.254",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2a01:4f8::1",
        ] {
            assert!(!is_private_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn relayed_peers_need_at_least_one_relay_address() {
        let private = addr("/ip4/192.168.1.20/udp/4001/quic-v1");
        let relay = addr(RELAY);
        assert_eq!(
            reachability(&[private.clone(), relay.clone()]),
            Reachability::Relayed(vec![relay.clone()])
        );
        assert_eq!(
            reachability(std::slice::from_ref(&private)),
            Reachability::NoRelay
        );
        assert_eq!(reachability(&[]), Reachability::NoRelay);
        let public = addr("/ip4/198.18.0.7/tcp/4001");
        assert_eq!(
            reachability(&[public.clone(), private]),
            Reachability::Public(public)
        );
    }

    /// kubo behind a NAT, as it identifies before AutoNAT v2 found its mapped address
    /// unreachable: relay addresses, the mapped public address, its LAN and loopback addresses.
    #[test]
    fn a_public_address_beside_relay_addresses_is_the_peers_unverified_guess() {
        let relay = addr(RELAY);
        let mapped = addr("/ip4/11.129.0.10/udp/4001/quic-v1");
        assert_eq!(
            reachability(&[
                relay.clone(),
                mapped,
                addr("/ip4/127.0.0.1/tcp/4001"),
                addr("/ip4/192.168.2.10/tcp/4001"),
            ]),
            Reachability::Relayed(vec![relay])
        );
    }

    #[test]
    fn dns_addresses_count_as_public() {
        let dns = addr("/dns4/node.example.com/tcp/4001");
        assert_eq!(kind(&dns), AddressKind::Public);
        assert_eq!(
            reachability(std::slice::from_ref(&dns)),
            Reachability::Public(dns.clone())
        );
    }

    #[test]
    fn the_crawler_dials_direct_tcp_and_quic_only() {
        assert!(is_crawlable(&addr("/ip4/8.8.8.8/tcp/4001"), false));
        assert!(is_crawlable(
            &addr("/ip6/2a01:4f8::1/udp/4001/quic-v1"),
            false
        ));
        assert!(is_crawlable(&addr("/dns4/x.example/tcp/4001"), false));
        assert!(!is_crawlable(&addr("/ip4/8.8.8.8/udp/4001/quic"), false));
        assert!(!is_crawlable(&addr("/ip4/8.8.8.8/tcp/4001/ws"), false));
        assert!(!is_crawlable(&addr(RELAY), true));
        assert!(!is_crawlable(&addr("/ip4/10.0.0.1/tcp/4001"), false));
        assert!(is_crawlable(&addr("/ip4/127.0.0.1/tcp/4001"), true));
    }
}
