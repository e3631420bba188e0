//! Facts about a multiaddress that selection and reports need, derived once when it is stored.

use std::net::IpAddr;

use multiaddr::{Multiaddr, Protocol};

/// What Punchr records about a multiaddress besides its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFacts {
    /// The address goes through a circuit relay (`/p2p-circuit`).
    pub is_relay: bool,
    /// The first IP component is globally routable ([`super::is_public_ip`]). For a
    /// relay address that is the relay's IP.
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
            is_relay: super::is_relayed(maddr),
            is_public: ip.is_some_and(super::is_public_ip),
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
    fn public_follows_the_one_definition() {
        // The benchmarking range is not public (go-multiaddr drops it from DCUtR too).
        assert!(!facts("/ip4/198.18.0.1/tcp/4001").is_public);
        assert!(!facts("/ip4/10.0.0.1/tcp/4001").is_public);
        assert!(facts("/ip4/11.0.1.10/tcp/4001").is_public);
    }

    #[test]
    fn addresses_without_ip_have_no_ip_facts() {
        let f = facts("/dns4/example.com/tcp/443/wss");
        assert_eq!(f.ip, None);
        assert!(!f.is_public);
        assert_eq!(f.transport, Some("wss"));
    }
}
