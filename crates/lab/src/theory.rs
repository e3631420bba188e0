//! What NAT theory predicts for a hole punch between a client behind one NAT type and a remote
//! behind another, per transport and per remote implementation; the campaign report puts the
//! measured rates next to it.
//!
//! Two questions, answered in turn:
//! 1. **Which direction opens.** Following RFC 4787 (UDP) and RFC 5382 (TCP) behaviour classes and
//!    Ford, Srisuresh and Kegel, "Peer-to-Peer Communication Across Network Address Translators"
//!    (2005): one side's packets reach the other when the target's mapping is predictable from
//!    what an observer saw (endpoint-independent mapping) and the target's filter lets them in
//!    (endpoint-independent filtering, or a mapping the target itself opened toward that exact
//!    source by sending at the same time).
//! 2. **What DCUtR's roles make of it**, for the implementation in question, attempt by attempt:
//!    - TCP, both directions open: the SYNs cross (simultaneous open) and the one connection
//!      works only when one side dials as the handshakes' client and the other as server.
//!    - TCP, one direction open: the SYN that gets through arrives as an ordinary inbound
//!      connection, whose receiver is the handshakes' server whatever it asked for, so it works
//!      only when the sender dials as client. (Full-cone client ↔ symmetric remote: only the
//!      remote's SYN gets through, and stock rust-libp2p's initiator dials as server on every
//!      attempt, so it never works; the mirror pair works on the first attempt.)
//!    - QUIC: a side that dials as a QUIC client sends Initial packets; the other side's
//!      endpoint answers them whether it dialed or not. A side that "dials as server" (go-libp2p's
//!      hole punch) only sends random packets and waits. So a direction works when its sender is a
//!      QUIC client. rust-libp2p 0.57 (and so `punchr-client`) dials as a QUIC client in either
//!      role: libp2p-quic runs a `(Listener, PortUse::Reuse)` dial as an ordinary connect.
//!
//! The remote's roles per attempt are those of `punchr_dcutr::roles` (go-libp2p before v0.41: client
//! on every attempt; v0.41–v0.47: server; v0.48 on, and kubo 0.41 on: server on attempts 1–2,
//! client on 3; rust-libp2p: server), and the client's come from its role strategy. go-libp2p (and
//! kubo) also dials the client's public addresses before DCUtR starts: where the client's NAT lets
//! an unsolicited connection in, that dial wins and the punch is CONNECTION_REVERSED, not decided.

use std::fmt;

use punchr_dcutr::{HandshakeRole, RemoteRoles, RoleStrategy};

use crate::implementation::Implementation;
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

/// Which side's packets reach the other when both send at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Opening {
    /// Both sides' packets get through.
    Both,
    /// Only the client's packets reach the remote.
    ClientToRemote,
    /// Only the remote's packets reach the client.
    RemoteToClient,
    /// Neither side's packets get through.
    Neither,
}

impl Opening {
    /// A short description for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Opening::Both => "both directions",
            Opening::ClientToRemote => "client → remote only",
            Opening::RemoteToClient => "remote → client only",
            Opening::Neither => "neither direction",
        }
    }

    /// `→`, `←`, `↔` or `×`: the direction as a mark for the matrix.
    pub fn arrow(self) -> &'static str {
        match self {
            Opening::Both => "↔",
            Opening::ClientToRemote => "→",
            Opening::RemoteToClient => "←",
            Opening::Neither => "×",
        }
    }
}

/// Which directions open between a client behind `client` and a remote behind `remote`.
pub fn opening(client: NatType, remote: NatType, transport: Transport) -> Opening {
    let (Some(c), Some(r)) = (behaviour(client, transport), behaviour(remote, transport)) else {
        return Opening::Neither;
    };
    // Packets from `from` reach `to` when `to`'s observed address is valid (predictable) and `to`
    // lets them in: either `to` is open, or `to` sends toward `from`'s real source at the same
    // time, which is only `from`'s observed address when `from` is predictable.
    let reaches = |from: Behaviour, to: Behaviour| to.predictable && (to.open || from.predictable);
    match (reaches(c, r), reaches(r, c)) {
        (true, true) => Opening::Both,
        (true, false) => Opening::ClientToRemote,
        (false, true) => Opening::RemoteToClient,
        (false, false) => Opening::Neither,
    }
}

/// One punch the theory is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// The client host's NAT.
    pub client: NatType,
    /// The remote's NAT.
    pub remote: NatType,
    /// The transport punched.
    pub transport: Transport,
    /// The remote's libp2p implementation.
    pub remote_impl: Implementation,
    /// How the client picks its handshake role.
    pub strategy: RoleStrategy,
}

/// What theory says of a [`Pair`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Theory {
    /// Which directions open.
    pub opening: Opening,
    /// The predicted outcome of the punch, when the theory has one.
    pub prediction: Option<Prediction>,
    /// The first attempt (1–3) the roles allow to succeed.
    pub attempt: Option<u8>,
    /// The remote dials the client's public address before DCUtR and gets in: expect
    /// CONNECTION_REVERSED rather than a decided punch.
    pub reversal: bool,
    /// The rule that decided, named for the report.
    pub rule: String,
}

/// The prediction for `pair`.
pub fn predict(pair: Pair) -> Theory {
    let opening = opening(pair.client, pair.remote, pair.transport);
    let reversal = reverses(pair);
    let Some(roles) = RemoteDialing::of(pair.remote_impl) else {
        return Theory {
            opening,
            prediction: None,
            attempt: None,
            reversal,
            rule: format!(
                "{}; {} cannot dial from its listening port (no SO_REUSEPORT), so no theory",
                opening.as_str(),
                pair.remote_impl
            ),
        };
    };
    if opening == Opening::Neither {
        return Theory {
            opening,
            prediction: Some(Prediction::Failure),
            attempt: None,
            reversal,
            rule: neither_rule(pair),
        };
    }
    let attempt = (1..=punchr_dcutr::MAX_ATTEMPTS).find(|&attempt| {
        let client = client_role(pair, roles, attempt);
        let remote = roles.role(pair.transport, attempt);
        works(pair.transport, opening, client, remote)
    });
    Theory {
        opening,
        prediction: Some(if attempt.is_some() {
            Prediction::Success
        } else {
            Prediction::Failure
        }),
        attempt,
        reversal,
        rule: role_rule(pair, opening, attempt),
    }
}

/// Whether a direct connection forms on an attempt where the client dials as `client` and the
/// remote as `remote` (see the module doc).
fn works(
    transport: Transport,
    opening: Opening,
    client: HandshakeRole,
    remote: HandshakeRole,
) -> bool {
    use HandshakeRole::Client;
    match (transport, opening) {
        (_, Opening::Neither) => false,
        (Transport::Tcp, Opening::Both) => client != remote,
        (Transport::Quic, Opening::Both) => client == Client || remote == Client,
        (_, Opening::ClientToRemote) => client == Client,
        (_, Opening::RemoteToClient) => remote == Client,
    }
}

/// The client's role on `attempt`: `punchr-client`'s strategy against the remote's roles, which
/// it learns from identify's agent version. Over QUIC it is a QUIC client in either role.
fn client_role(pair: Pair, roles: RemoteDialing, attempt: u8) -> HandshakeRole {
    match pair.transport {
        Transport::Quic => HandshakeRole::Client,
        Transport::Tcp => pair.strategy.responder_role(attempt, roles.announced),
    }
}

/// go-libp2p's initiator dials the client's public addresses before DCUtR; a NAT that lets any
/// sender in (or none at all) lets that dial through.
fn reverses(pair: Pair) -> bool {
    let go = !matches!(pair.remote_impl, Implementation::Rust | Implementation::Js);
    let client_open =
        behaviour(pair.client, pair.transport).is_some_and(|b| b.open && b.predictable);
    go && client_open
}

fn neither_rule(pair: Pair) -> String {
    if behaviour(pair.client, pair.transport).is_none()
        || behaviour(pair.remote, pair.transport).is_none()
    {
        "UDP is blocked on one side".to_owned()
    } else {
        "neither direction opens: a symmetric NAT picks a new port toward the peer and the other \
         side filters it"
            .to_owned()
    }
}

fn role_rule(pair: Pair, opening: Opening, attempt: Option<u8>) -> String {
    let how = match (pair.transport, opening) {
        (Transport::Tcp, Opening::Both) => {
            "the SYNs cross (simultaneous open), which needs one side to dial as client and the \
             other as server"
        }
        (Transport::Tcp, Opening::ClientToRemote) => {
            "the client's SYN arrives as an ordinary inbound connection, which needs the client \
             to dial as client"
        }
        (Transport::Tcp, Opening::RemoteToClient) => {
            "the remote's SYN arrives as an ordinary inbound connection, which needs the remote \
             to dial as client"
        }
        (Transport::Quic, Opening::Both) => "a QUIC client's Initial gets through either way",
        (Transport::Quic, Opening::ClientToRemote) => "the client dials as a QUIC client",
        (Transport::Quic, Opening::RemoteToClient) => {
            "only the remote's packets arrive, which needs the remote to dial as a QUIC client"
        }
        (_, Opening::Neither) => unreachable!("decided by neither_rule"),
    };
    let verdict = match attempt {
        Some(1) => "met on attempt 1".to_owned(),
        Some(n) => format!("met only on attempt {n}"),
        None => format!("{} never does", pair.remote_impl),
    };
    format!("{}; {how}: {verdict}", opening.as_str())
}

/// How an implementation's DCUtR initiator (the remote) dials, attempt by attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RemoteDialing {
    /// Its roles as its agent version announces them (what an adaptive client reads).
    announced: RemoteRoles,
    /// Its QUIC dial is an ordinary connect whatever its role (rust-libp2p 0.57).
    quic_always_client: bool,
}

impl RemoteDialing {
    /// `None` for implementations the theory cannot place.
    fn of(implementation: Implementation) -> Option<RemoteDialing> {
        let (announced, quic_always_client) = match implementation {
            Implementation::Rust => (RemoteRoles::Spec, true),
            Implementation::GoV040 => (RemoteRoles::Legacy, false),
            Implementation::GoV047 => (RemoteRoles::Spec, false),
            Implementation::GoV052 | Implementation::Kubo => (RemoteRoles::SpecThenSwitch, false),
            Implementation::Js => return None,
        };
        Some(RemoteDialing {
            announced,
            quic_always_client,
        })
    }

    fn role(self, transport: Transport, attempt: u8) -> HandshakeRole {
        if transport == Transport::Quic && self.quic_always_client {
            return HandshakeRole::Client;
        }
        match self.announced {
            RemoteRoles::Legacy => HandshakeRole::Client,
            RemoteRoles::SpecThenSwitch if attempt >= 3 => HandshakeRole::Client,
            RemoteRoles::Spec | RemoteRoles::SpecThenSwitch | RemoteRoles::Unknown => {
                HandshakeRole::Server
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Implementation::*;
    use NatType::*;
    use Prediction::*;

    fn theory(
        client: NatType,
        remote: NatType,
        transport: Transport,
        remote_impl: Implementation,
    ) -> Theory {
        predict(Pair {
            client,
            remote,
            transport,
            remote_impl,
            strategy: RoleStrategy::Adaptive,
        })
    }

    fn p(client: NatType, remote: NatType, transport: Transport) -> Option<Prediction> {
        theory(client, remote, transport, Rust).prediction
    }

    #[test]
    fn the_textbook_cases_against_rust_libp2p() {
        assert_eq!(
            p(PortRestricted, PortRestricted, Transport::Tcp),
            Some(Success)
        );
        assert_eq!(p(Symmetric, Symmetric, Transport::Tcp), Some(Failure));
        assert_eq!(p(Symmetric, Symmetric, Transport::Quic), Some(Failure));
        assert_eq!(p(Symmetric, PortRestricted, Transport::Quic), Some(Failure));
        assert_eq!(p(Symmetric, FullCone, Transport::Quic), Some(Success));
        assert_eq!(p(Symmetric, Public, Transport::Tcp), Some(Success));
        assert_eq!(
            p(UdpBlocked, PortRestricted, Transport::Quic),
            Some(Failure)
        );
        assert_eq!(p(UdpBlocked, PortRestricted, Transport::Tcp), Some(Success));
        assert_eq!(p(Double, PortRestricted, Transport::Quic), Some(Success));
        assert_eq!(p(Double, Symmetric, Transport::Tcp), Some(Failure));
    }

    #[test]
    fn directions_are_mirror_images() {
        for a in NatType::ALL {
            for b in NatType::ALL {
                for t in [Transport::Tcp, Transport::Quic] {
                    let mirrored = match opening(b, a, t) {
                        Opening::ClientToRemote => Opening::RemoteToClient,
                        Opening::RemoteToClient => Opening::ClientToRemote,
                        same => same,
                    };
                    assert_eq!(opening(a, b, t), mirrored, "{a} {b} {t:?}");
                }
            }
        }
    }

    /// The lab's finding: only the remote's SYN gets through, it arrives at the client as an
    /// ordinary inbound connection, and stock rust-libp2p's initiator dials as server on every
    /// attempt; the mirror pair works at once.
    #[test]
    fn one_sided_tcp_depends_on_who_sends_the_syn_that_gets_through() {
        let full_cone_client = theory(FullCone, Symmetric, Transport::Tcp, Rust);
        assert_eq!(full_cone_client.opening, Opening::RemoteToClient);
        assert_eq!(full_cone_client.prediction, Some(Failure));
        assert!(
            full_cone_client.rule.contains("ordinary inbound"),
            "{}",
            full_cone_client.rule
        );
        let symmetric_client = theory(Symmetric, FullCone, Transport::Tcp, Rust);
        assert_eq!(symmetric_client.opening, Opening::ClientToRemote);
        assert_eq!(symmetric_client.prediction, Some(Success));
        assert_eq!(symmetric_client.attempt, Some(1));
        // Over QUIC rust-libp2p's initiator is a QUIC client in either role.
        assert_eq!(
            theory(FullCone, Symmetric, Transport::Quic, Rust).prediction,
            Some(Success)
        );
    }

    /// go-libp2p v0.48 and later switch to client on attempt 3, so the full-cone client's cell
    /// opens there; v0.41–v0.47 never dial as client; before v0.41 always.
    #[test]
    fn each_go_libp2p_era_meets_the_one_sided_tcp_pair_differently() {
        let era = |i| theory(FullCone, Symmetric, Transport::Tcp, i);
        assert_eq!(era(GoV052).attempt, Some(3));
        assert_eq!(era(Kubo).attempt, Some(3));
        assert_eq!(era(GoV047).prediction, Some(Failure));
        assert_eq!(era(GoV040).attempt, Some(1));
        // Over QUIC go's server-role dial only sends random packets.
        assert_eq!(
            theory(FullCone, Symmetric, Transport::Quic, GoV047).prediction,
            Some(Failure)
        );
        assert_eq!(
            theory(FullCone, Symmetric, Transport::Quic, GoV052).attempt,
            Some(3)
        );
    }

    /// Simultaneous open needs complementary roles: a spec-only client meets go-libp2p before
    /// v0.41 (client on every attempt) with the same role every time; the adaptive client reads
    /// the agent version and takes the other.
    #[test]
    fn simultaneous_open_needs_complementary_roles() {
        let with = |strategy| {
            predict(Pair {
                client: PortRestricted,
                remote: PortRestricted,
                transport: Transport::Tcp,
                remote_impl: GoV040,
                strategy,
            })
        };
        assert_eq!(with(RoleStrategy::Spec).prediction, Some(Failure));
        assert_eq!(with(RoleStrategy::Adaptive).attempt, Some(1));
        assert_eq!(
            theory(PortRestricted, PortRestricted, Transport::Tcp, GoV052).attempt,
            Some(1)
        );
    }

    #[test]
    fn go_libp2p_reaches_an_open_client_before_any_punch() {
        assert!(theory(FullCone, PortRestricted, Transport::Tcp, GoV052).reversal);
        assert!(theory(Public, Symmetric, Transport::Quic, Kubo).reversal);
        assert!(!theory(FullCone, PortRestricted, Transport::Tcp, Rust).reversal);
        assert!(!theory(PortRestricted, PortRestricted, Transport::Tcp, GoV052).reversal);
    }

    #[test]
    fn js_libp2p_gets_no_prediction_and_blocked_udp_fails() {
        assert_eq!(
            theory(PortRestricted, PortRestricted, Transport::Tcp, Js).prediction,
            None
        );
        let blocked = theory(UdpBlocked, PortRestricted, Transport::Quic, GoV052);
        assert_eq!(blocked.prediction, Some(Failure));
        assert_eq!(blocked.rule, "UDP is blocked on one side");
    }
}
