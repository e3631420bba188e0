//! What NAT theory predicts for a hole punch between two NAT types, per transport; the campaign
//! report puts the measured rates next to it.
//!
//! The reasoning follows RFC 4787 (UDP) and RFC 5382 (TCP) behaviour classes and Ford, Srisuresh
//! and Kegel, "Peer-to-Peer Communication Across Network Address Translators" (2005): a punch works
//! when at least one side's packets reach the other host, which needs the target's mapping to be
//! predictable from what an observer saw (endpoint-independent mapping) and the target's filter to
//! let the packet in (endpoint-independent filtering, or a mapping the target itself opened toward
//! that exact source by sending at the same time).

use std::fmt;

use crate::nat::NatType;

/// The transport of a hole punch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// TCP (simultaneous open).
    Tcp,
    /// QUIC over UDP.
    Quic,
}

impl Transport {
    /// `tcp` or `quic`, as in scenarios and flags.
    pub fn as_str(&self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Quic => "quic",
        }
    }

    /// The server's protocol filter that asks clients to punch over this transport.
    pub fn server_filter(&self) -> &'static str {
        match self {
            Transport::Tcp => "ip4/tcp",
            Transport::Quic => "ip4/quic",
        }
    }
}

/// What theory predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Prediction {
    /// The punch should succeed.
    Success,
    /// The punch should fail.
    Failure,
}

impl fmt::Display for Prediction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Prediction::Success => "success",
            Prediction::Failure => "failure",
        })
    }
}

/// How one side behaves, reduced to what matters for punching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Behaviour {
    /// The address an observer saw is the one a new peer must use (endpoint-independent mapping).
    predictable: bool,
    /// Anyone may send to a mapped address (endpoint-independent filtering, or no NAT).
    open: bool,
}

fn behaviour(nat: NatType, transport: Transport) -> Option<Behaviour> {
    if nat == NatType::UdpBlocked && transport == Transport::Quic {
        return None;
    }
    Some(match nat {
        NatType::Public | NatType::FullCone => Behaviour {
            predictable: true,
            open: true,
        },
        // Two endpoint-independent mappings in a row are still endpoint-independent.
        NatType::PortRestricted | NatType::UdpBlocked | NatType::Double => Behaviour {
            predictable: true,
            open: false,
        },
        NatType::Symmetric => Behaviour {
            predictable: false,
            open: false,
        },
    })
}

/// The prediction for a punch between a host behind `a` and one behind `b` (symmetric in a, b).
pub fn predict(a: NatType, b: NatType, transport: Transport) -> (Prediction, &'static str) {
    let (Some(x), Some(y)) = (behaviour(a, transport), behaviour(b, transport)) else {
        return (Prediction::Failure, "UDP is blocked on one side");
    };
    // Packets from x reach y when y's observed address is valid (predictable) and y lets them in:
    // either y is open, or y sends toward x's real source at the same time, which is only x's
    // observed address when x is predictable.
    let reaches = |from: Behaviour, to: Behaviour| to.predictable && (to.open || from.predictable);
    match (reaches(x, y), reaches(y, x)) {
        (true, true) => (Prediction::Success, "both directions open"),
        (true, false) | (false, true) => (
            Prediction::Success,
            "one direction opens (the other side's packets are dropped)",
        ),
        (false, false) => (
            Prediction::Failure,
            "a symmetric NAT picks a new port toward the peer and the other side filters it",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NatType::*;
    use Prediction::*;

    #[test]
    fn the_textbook_cases() {
        let p = |a, b, t| predict(a, b, t).0;
        assert_eq!(p(PortRestricted, PortRestricted, Transport::Tcp), Success);
        assert_eq!(p(Symmetric, Symmetric, Transport::Tcp), Failure);
        assert_eq!(p(Symmetric, Symmetric, Transport::Quic), Failure);
        assert_eq!(p(Symmetric, PortRestricted, Transport::Quic), Failure);
        assert_eq!(p(Symmetric, FullCone, Transport::Quic), Success);
        assert_eq!(p(Symmetric, Public, Transport::Tcp), Success);
        assert_eq!(p(UdpBlocked, PortRestricted, Transport::Quic), Failure);
        assert_eq!(p(UdpBlocked, PortRestricted, Transport::Tcp), Success);
        assert_eq!(p(Double, PortRestricted, Transport::Quic), Success);
        assert_eq!(p(Double, Symmetric, Transport::Tcp), Failure);
    }

    #[test]
    fn symmetric_in_its_arguments() {
        for a in NatType::ALL {
            for b in NatType::ALL {
                for t in [Transport::Tcp, Transport::Quic] {
                    assert_eq!(predict(a, b, t).0, predict(b, a, t).0, "{a} {b} {t:?}");
                }
            }
        }
    }
}
