//! Which side of the direct connection's handshakes our hole-punch dial takes, and why.
//!
//! The spec (`relay/DCUtR.md`) makes the stream's receiver (A, the peer that dialed through the
//! relay: a Punchr client) the client of the direct connection's security and muxer handshakes
//! and the initiator (B, the NATed peer) the server. The field does not all follow it:
//! - go-libp2p before v0.41 took the roles the other way round (go-libp2p issue #3171: "both
//!   sides would attempt to be the dialer" against rust peers): its initiator dials as client;
//! - v0.41–v0.47 added a `legacyBehavior` switch (PR #3044) whose default, despite its name,
//!   gives the spec's roles (read in each version's `p2p/protocol/holepunch`, and measured in the
//!   lab: a spec client punched v0.47, a server-role client never did);
//! - v0.48 (commit 7f5ce40) keeps the spec's roles on attempts 1–2 and switches its initiator to
//!   client on attempt 3, for peers older than v0.41;
//! - kubo carries the go-libp2p of its release: kubo 0.30 go-libp2p 0.36.3, 0.35 0.41.1, 0.36 0.42,
//!   0.37–0.38 0.43, 0.39 0.45, 0.40 0.47, 0.41–0.42 0.48, 0.43 0.49 (their `go.mod` files; 0.31–0.34
//!   were not served to check, so they count as unknown); go-ipfs is older still.
//!
//! So a careful responder picks its role per attempt ([`RoleStrategy::Adaptive`]): from the
//! remote's agent version when identify has told it ([`RemoteRoles::from_agent_version`]), and
//! otherwise mirroring go-libp2p v0.48: the spec's role on attempts 1–2, the other one on attempt
//! 3, so that a remote of either generation meets a matching role at least once.
//! [`RoleStrategy::Spec`] always takes the spec's role, as stock rust-libp2p does, so a campaign can
//! also measure what the network's own software achieves.

use std::fmt;
use std::str::FromStr;

/// Our side of the direct connection's security and muxer handshakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeRole {
    /// We dial as the handshakes' initiator (TCP: noise initiator; QUIC: the QUIC client).
    Client,
    /// We dial as their responder (TCP: the dialed connection is upgraded as inbound; QUIC: we
    /// send random UDP packets from the listening socket and wait for the remote's handshake).
    Server,
}

impl HandshakeRole {
    /// `client` or `server`.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeRole::Client => "client",
            HandshakeRole::Server => "server",
        }
    }

    fn other(self) -> HandshakeRole {
        match self {
            HandshakeRole::Client => HandshakeRole::Server,
            HandshakeRole::Server => HandshakeRole::Client,
        }
    }
}

/// How a responder chooses its [`HandshakeRole`] for each attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RoleStrategy {
    /// Always the spec's role (client), as stock rust-libp2p.
    Spec,
    /// From the remote's agent version when known, else the spec's role on attempts 1–2 and the
    /// other one on attempt 3 (as go-libp2p v0.48 does from the other side).
    #[default]
    Adaptive,
}

impl RoleStrategy {
    /// `spec` or `adaptive`.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleStrategy::Spec => "spec",
            RoleStrategy::Adaptive => "adaptive",
        }
    }

    /// Our role as responder on `attempt` (1-based) against a remote whose roles are `remote`.
    pub fn responder_role(self, attempt: u8, remote: RemoteRoles) -> HandshakeRole {
        let spec = HandshakeRole::Client;
        match (self, remote) {
            (RoleStrategy::Spec, _) => spec,
            (RoleStrategy::Adaptive, RemoteRoles::Spec) => spec,
            // The initiator dials as client on every attempt: be its server.
            (RoleStrategy::Adaptive, RemoteRoles::Legacy) => spec.other(),
            // The initiator is server on attempts 1–2 and client on attempt 3 (go-libp2p v0.48),
            // and an unknown remote may be either generation: the same pattern meets both.
            (RoleStrategy::Adaptive, RemoteRoles::SpecThenSwitch | RemoteRoles::Unknown) => {
                if attempt >= 3 {
                    spec.other()
                } else {
                    spec
                }
            }
        }
    }
}

impl fmt::Display for RoleStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RoleStrategy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "spec" => Ok(RoleStrategy::Spec),
            "adaptive" => Ok(RoleStrategy::Adaptive),
            other => Err(format!(
                "unknown role strategy {other:?} (known: spec, adaptive)"
            )),
        }
    }
}

/// The role as a result records it (`CLIENT`, `SERVER`).
impl From<HandshakeRole> for punchr_types::HandshakeRole {
    fn from(role: HandshakeRole) -> Self {
        match role {
            HandshakeRole::Client => punchr_types::HandshakeRole::Client,
            HandshakeRole::Server => punchr_types::HandshakeRole::Server,
        }
    }
}

/// The strategy as a result records it (`SPEC`, `ADAPTIVE`).
impl From<RoleStrategy> for punchr_types::RoleStrategy {
    fn from(strategy: RoleStrategy) -> Self {
        match strategy {
            RoleStrategy::Spec => punchr_types::RoleStrategy::Spec,
            RoleStrategy::Adaptive => punchr_types::RoleStrategy::Adaptive,
        }
    }
}

/// The roles a remote's DCUtR initiator takes, as far as its agent version tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RemoteRoles {
    /// Nothing known (no identify yet, or an agent we cannot place).
    #[default]
    Unknown,
    /// Server on every attempt: the spec; stock rust-libp2p, go-libp2p v0.41–v0.47.
    Spec,
    /// Server on attempts 1–2, client on attempt 3: go-libp2p v0.48 and later.
    SpecThenSwitch,
    /// Client on every attempt: go-libp2p before v0.41, go-ipfs, kubo 0.30 and older.
    Legacy,
}

impl RemoteRoles {
    /// The roles of the implementation an identify agent version names.
    pub fn from_agent_version(agent: &str) -> RemoteRoles {
        let agent = agent.trim();
        if let Some(version) = version_after(agent, "go-libp2p/") {
            return go_libp2p_roles(version);
        }
        if let Some(version) = agent.strip_prefix("kubo/").and_then(parse_version) {
            // The go-libp2p of each kubo release: see the module doc.
            return match version {
                v if v >= (0, 41, 0) => RemoteRoles::SpecThenSwitch,
                v if v >= (0, 35, 0) => RemoteRoles::Spec,
                v if v >= (0, 31, 0) => RemoteRoles::Unknown,
                _ => RemoteRoles::Legacy,
            };
        }
        if agent.starts_with("go-ipfs/") {
            return RemoteRoles::Legacy;
        }
        if agent.starts_with("rust-libp2p") || agent.contains("(rust-libp2p") {
            return RemoteRoles::Spec;
        }
        RemoteRoles::Unknown
    }
}

fn go_libp2p_roles(version: (u32, u32, u32)) -> RemoteRoles {
    match version {
        v if v >= (0, 48, 0) => RemoteRoles::SpecThenSwitch,
        v if v >= (0, 41, 0) => RemoteRoles::Spec,
        _ => RemoteRoles::Legacy,
    }
}

/// The version that follows `marker` anywhere in `agent`.
fn version_after(agent: &str, marker: &str) -> Option<(u32, u32, u32)> {
    let at = agent.find(marker)?;
    parse_version(&agent[at + marker.len()..])
}

/// `0.48.1`, `v0.48.1-rc1/…` or `0.48` at the start of `text`.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let text = text.strip_prefix('v').unwrap_or(text);
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let mut parts = text[..end].split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use HandshakeRole::{Client, Server};

    #[test]
    fn agents_name_their_roles() {
        let cases = [
            ("go-libp2p/0.40.0 (punchr-lab remote)", RemoteRoles::Legacy),
            ("go-libp2p/0.47.0 (punchr-lab remote)", RemoteRoles::Spec),
            ("go-libp2p/0.41.0", RemoteRoles::Spec),
            ("go-libp2p/0.48.0", RemoteRoles::SpecThenSwitch),
            ("go-libp2p/v0.52.0", RemoteRoles::SpecThenSwitch),
            ("kubo/0.43.1/3e5f6a7", RemoteRoles::SpecThenSwitch),
            ("kubo/0.41.0/", RemoteRoles::SpecThenSwitch),
            ("kubo/0.40.1/abc", RemoteRoles::Spec),
            ("kubo/0.35.0/abc", RemoteRoles::Spec),
            ("kubo/0.33.2/abc", RemoteRoles::Unknown),
            ("kubo/0.30.0/abc", RemoteRoles::Legacy),
            ("kubo/0.18.1/", RemoteRoles::Legacy),
            ("go-ipfs/0.12.0/", RemoteRoles::Legacy),
            ("rust-libp2p/0.57.1", RemoteRoles::Spec),
            (
                "punchr-lab-remote/0.1.0 (rust-libp2p 0.57.1)",
                RemoteRoles::Spec,
            ),
            ("js-libp2p/3.3.11 UserAgent=v20.20.2", RemoteRoles::Unknown),
            ("kubo/garbage", RemoteRoles::Unknown),
            ("", RemoteRoles::Unknown),
        ];
        for (agent, roles) in cases {
            assert_eq!(RemoteRoles::from_agent_version(agent), roles, "{agent}");
        }
    }

    #[test]
    fn spec_is_always_client() {
        for remote in [
            RemoteRoles::Unknown,
            RemoteRoles::Spec,
            RemoteRoles::SpecThenSwitch,
            RemoteRoles::Legacy,
        ] {
            for attempt in 1..=3 {
                assert_eq!(RoleStrategy::Spec.responder_role(attempt, remote), Client);
            }
        }
    }

    #[test]
    fn adaptive_meets_each_remote_generation() {
        let roles = |remote| {
            (1..=3)
                .map(|n| RoleStrategy::Adaptive.responder_role(n, remote))
                .collect::<Vec<_>>()
        };
        assert_eq!(roles(RemoteRoles::Spec), [Client, Client, Client]);
        assert_eq!(roles(RemoteRoles::Legacy), [Server, Server, Server]);
        assert_eq!(roles(RemoteRoles::SpecThenSwitch), [Client, Client, Server]);
        assert_eq!(roles(RemoteRoles::Unknown), [Client, Client, Server]);
    }

    #[test]
    fn strategies_parse_and_print() {
        for strategy in [RoleStrategy::Spec, RoleStrategy::Adaptive] {
            assert_eq!(strategy.as_str().parse::<RoleStrategy>(), Ok(strategy));
        }
        assert!("both".parse::<RoleStrategy>().is_err());
    }
}
