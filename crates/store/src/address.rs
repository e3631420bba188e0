//! Facts about a multiaddress that selection and reports need, derived once when it is stored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use multiaddr::{Multiaddr, Protocol};

/// What Punchr records about a multiaddress besides its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFacts {
    /// The address goes through a circuit relay (`/p2p-circuit`).
    pub is_relay: bool,
    /// The first IP component is globally routable. For a relay address that is the relay's IP.
    pub is_public: bool,
    /// The first IP component, if any.
    pub ip: Option<IpAddr>,
    /// The transport of the first hop: `tcp`, `quic`, `quic-v1`, `webtransport`,
    /// `webrtc-direct`, `ws`, `wss` or `udp`.
    pub transport: Option<&'static str>,
}

impl AddressFacts {
    /// Derives the facts from a multiaddress.
    pub fn of(maddr: &Multiaddr) -> AddressFacts {
        let ip = maddr.iter().find_map(|protocol| match protocol {
            Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
            Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        });
        AddressFacts {
            is_relay: maddr.iter().any(|p| matches!(p, Protocol::P2pCircuit)),
            is_public: ip.is_some_and(is_public_ip),
            ip,
            transport: first_hop_transport(maddr),
        }
    }

    /// 4 or 6, after the first IP component.
    pub fn ip_version(&self) -> Option<i64> {
        self.ip.map(|ip| if ip.is_ipv4() { 4 } else { 6 })
    }
}

/// The most specific transport named before any `/p2p-circuit`.
fn first_hop_transport(maddr: &Multiaddr) -> Option<&'static str> {
    let mut transport = None;
    for protocol in maddr.iter() {
        let named = match protocol {
            Protocol::P2pCircuit => break,
            Protocol::Tcp(_) => "tcp",
            Protocol::Udp(_) => "udp",
            Protocol::Quic => "quic",
            Protocol::QuicV1 => "quic-v1",
            Protocol::WebTransport => "webtransport",
            Protocol::WebRTCDirect => "webrtc-direct",
            Protocol::Ws(_) => "ws",
            Protocol::Wss(_) => "wss",
            _ => continue,
        };
        transport = Some(named);
    }
    transport
}

/// Whether an address is globally routable: not private, loopback, link-local, shared (CGNAT),
/// documentation or otherwise special-purpose (IANA special-purpose registries). The benchmarking
/// range 198.18.0.0/15 (RFC 2544) counts as public: it is the NAT lab's internet.
pub(crate) fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_ipv4(ip),
        IpAddr::V6(ip) => is_public_ipv6(ip),
    }
}

fn is_public_ipv4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b); // RFC 6598, carrier-grade NAT
    let protocol_assignments = a == 192 && b == 0 && c == 0; // RFC 6890
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || shared
        || protocol_assignments
        || a == 0
        || a >= 240)
}

fn is_public_ipv6(ip: Ipv6Addr) -> bool {
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return is_public_ipv4(mapped);
    }
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00; // fc00::/7
    let link_local = first & 0xffc0 == 0xfe80; // fe80::/10
    let documentation = first == 0x2001 && ip.segments()[1] == 0x0db8; // 2001:db8::/32
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || unique_local
        || link_local
        || documentation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(s: &str) -> AddressFacts {
        AddressFacts::of(&s.parse().unwrap())
    }

    #[test]
    fn relay_addresses_name_the_relay_hop() {
        let f = facts("/ip4/147.75.80.110/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit");
        assert!(f.is_relay);
        assert!(f.is_public);
        assert_eq!(f.transport, Some("tcp"));
        assert_eq!(f.ip_version(), Some(4));
    }

    #[test]
    fn quic_and_private_addresses() {
        let f = facts("/ip4/192.168.1.20/udp/4001/quic-v1");
        assert!(!f.is_relay);
        assert!(!f.is_public);
        assert_eq!(f.transport, Some("quic-v1"));
        let f = facts("/ip6/2a01:4f8::1/udp/4001/quic");
        assert!(f.is_public);
        assert_eq!(f.transport, Some("quic"));
        assert_eq!(f.ip_version(), Some(6));
    }

    #[test]
    fn special_purpose_ranges_are_not_public() {
        for ip in [
            "10.0.0.1",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "198.18.0.1", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn addresses_without_ip_have_no_ip_facts() {
        let f = facts("/dns4/example.com/tcp/443/wss");
        assert_eq!(f.ip, None);
        assert!(!f.is_public);
        assert_eq!(f.transport, Some("wss"));
    }
}
