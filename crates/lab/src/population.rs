//! Who sits behind which NAT: the `run` flags `--client-nats`, `--remote-nats`, `--clients` and
//! `--remotes` regenerate a scenario's clients or remote peers (and their routers) from NAT
//! types and counts, so a campaign over any mix of NAT types needs no scenario file.
//!
//! Each generated peer gets a router of its own, as a home device behind its own home router
//! would; a `public` client sits directly on the WAN. The command, environment and readiness of a
//! generated peer are copied from the scenario's first peer of the same role, so the scenario
//! decides what a client or remote runs and the flags decide where.

use crate::error::{LabError, Result};
use crate::implementation::Implementation;
use crate::nat::NatType;
use crate::scenario::{Attachment, LinkOverride, Peer, Role, Router, Scenario};

/// The clients or remotes to generate for one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// NAT types, one group of peers each.
    pub nats: Vec<NatType>,
    /// Peers per NAT type (and implementation).
    pub per_nat: usize,
    /// Remotes only: the implementations, each getting `per_nat` remotes per NAT type; empty
    /// keeps the template's.
    pub implementations: Vec<Implementation>,
}

/// Most peers one side may have (each needs a router namespace).
pub const MAX_PER_SIDE: usize = 60;

/// Short names for generated router and peer names (names are at most 20 characters).
fn short(nat: NatType) -> &'static str {
    match nat {
        NatType::Public => "pub",
        NatType::FullCone => "fc",
        NatType::PortRestricted => "pr",
        NatType::Symmetric => "sym",
        NatType::UdpBlocked => "udpb",
        NatType::Double => "dbl",
    }
}

/// The NAT types the scenario's peers of `role` sit behind, in first-seen order.
pub fn nats_of(scenario: &Scenario, role: Role) -> Vec<NatType> {
    let mut nats = Vec::new();
    for peer in scenario.peers.iter().filter(|p| p.role == role) {
        let nat = match &peer.at {
            Attachment::Wan => NatType::Public,
            Attachment::Router(name) => scenario.router(name).map_or(NatType::Public, |r| r.nat),
        };
        if !nats.contains(&nat) {
            nats.push(nat);
        }
    }
    nats
}

/// Replaces the scenario's peers of `role` (clients or remotes) and the routers only they used
/// with one peer and router per NAT type and index.
pub fn populate(scenario: &mut Scenario, role: Role, side: &Side) -> Result<()> {
    let (prefix, router_prefix) = match role {
        Role::Client => ("client", "cli"),
        Role::Remote => ("remote", "rem"),
        other => {
            return Err(LabError::InvalidScenario(format!(
                "only clients and remotes can be generated, not {}",
                other.as_str()
            )))
        }
    };
    check(role, side)?;
    let template = scenario
        .peers
        .iter()
        .find(|p| p.role == role)
        .cloned()
        .ok_or_else(|| {
            LabError::InvalidScenario(format!(
                "scenario {} has no {} peer to copy the command from",
                scenario.name,
                role.as_str()
            ))
        })?;
    remove_role(scenario, role);
    let implementations = if side.implementations.is_empty() {
        vec![template.implementation]
    } else {
        side.implementations.clone()
    };
    let several = implementations.len() > 1 || !side.implementations.is_empty();
    for &nat in &side.nats {
        for (&implementation, index) in implementations
            .iter()
            .flat_map(|i| std::iter::repeat(i).zip(1..=side.per_nat))
        {
            let mut suffix = if index == 1 {
                short(nat).to_owned()
            } else {
                format!("{}{index}", short(nat))
            };
            if several && role == Role::Remote {
                suffix = format!("{suffix}-{}", implementation.short());
            }
            let at = if nat == NatType::Public {
                Attachment::Wan
            } else {
                let router = format!("{router_prefix}-{suffix}");
                scenario.routers.push(Router {
                    name: router.clone(),
                    nat,
                    link: LinkOverride::default(),
                });
                Attachment::Router(router)
            };
            scenario.peers.push(Peer {
                name: format!("{prefix}-{suffix}"),
                at,
                link: LinkOverride::default(),
                implementation,
                ..template.clone()
            });
        }
    }
    Ok(())
}

fn check(role: Role, side: &Side) -> Result<()> {
    let bad = |message: String| Err(LabError::InvalidScenario(message));
    if side.nats.is_empty() {
        return bad(format!("no NAT types given for the {}s", role.as_str()));
    }
    if role != Role::Remote && !side.implementations.is_empty() {
        return bad("only remote peers run other libp2p implementations".to_owned());
    }
    let groups = side.nats.len() * side.implementations.len().max(1);
    if side.per_nat == 0 || groups * side.per_nat > MAX_PER_SIDE {
        return bad(format!(
            "{} per NAT type must be 1 or more, and at most {MAX_PER_SIDE} {}s in all",
            role.as_str(),
            role.as_str()
        ));
    }
    if role == Role::Remote && side.nats.contains(&NatType::Public) {
        return bad(
            "a public remote is reachable directly, so no one hole punches it and the \
             honeypot does not record it; pick remote NAT types other than public"
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    for nat in &side.nats {
        if seen.contains(nat) {
            return bad(format!(
                "NAT type {nat} is given twice for the {}s",
                role.as_str()
            ));
        }
        seen.push(*nat);
    }
    Ok(())
}

/// Removes every peer of `role`, and the routers no remaining peer sits behind.
fn remove_role(scenario: &mut Scenario, role: Role) {
    let routers_of_role: Vec<String> = scenario
        .peers
        .iter()
        .filter(|p| p.role == role)
        .filter_map(|p| match &p.at {
            Attachment::Router(name) => Some(name.clone()),
            Attachment::Wan => None,
        })
        .collect();
    scenario.peers.retain(|p| p.role != role);
    scenario.routers.retain(|router| {
        !routers_of_role.contains(&router.name)
            || scenario
                .peers
                .iter()
                .any(|p| p.at == Attachment::Router(router.name.clone()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{CI_SCENARIO, DEFAULT_SCENARIO};
    use crate::topology::Plan;

    fn default() -> Scenario {
        Scenario::parse("default", DEFAULT_SCENARIO).unwrap()
    }

    #[test]
    fn generated_peers_get_routers_of_their_nat_type() {
        let mut s = default();
        let side = Side {
            nats: vec![NatType::PortRestricted, NatType::Public],
            per_nat: 2,
            implementations: vec![],
        };
        populate(&mut s, Role::Client, &side).unwrap();
        let clients: Vec<&str> = s
            .peers
            .iter()
            .filter(|p| p.role == Role::Client)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(
            clients,
            ["client-pr", "client-pr2", "client-pub", "client-pub2"]
        );
        assert_eq!(s.router("cli-pr2").unwrap().nat, NatType::PortRestricted);
        assert_eq!(s.peer("client-pub").unwrap().at, Attachment::Wan);
        // The old clients' routers are gone, the remotes' routers stay.
        assert!(s.router("cli-sym").is_none() && s.router("cli-fc").is_none());
        assert!(s.router("rem-sym").is_some());
        assert_eq!(
            nats_of(&s, Role::Client),
            [NatType::PortRestricted, NatType::Public]
        );
        // Copied from the scenario's first client.
        let template = default();
        let first = template
            .peers
            .iter()
            .find(|p| p.role == Role::Client)
            .unwrap();
        assert_eq!(s.peer("client-pr2").unwrap().command, first.command);
        // And the result builds a valid plan.
        let plan = Plan::new(&s, "test00");
        assert!(plan.peers.iter().any(|p| p.name == "client-pr2"));
    }

    #[test]
    fn remotes_can_be_regenerated_without_touching_clients() {
        let mut s = Scenario::parse("ci", CI_SCENARIO).unwrap();
        let clients_before = nats_of(&s, Role::Client);
        let side = Side {
            nats: vec![NatType::Double, NatType::UdpBlocked],
            per_nat: 1,
            implementations: vec![],
        };
        populate(&mut s, Role::Remote, &side).unwrap();
        assert_eq!(nats_of(&s, Role::Client), clients_before);
        assert_eq!(
            nats_of(&s, Role::Remote),
            [NatType::Double, NatType::UdpBlocked]
        );
        assert!(s.peer("remote-dbl").is_some() && s.router("rem-dbl").is_some());
    }

    #[test]
    fn mistakes_are_refused_with_a_reason() {
        let cases = [
            (Role::Remote, vec![NatType::Public], 1, "public remote"),
            (Role::Client, vec![], 1, "no NAT types"),
            (Role::Client, vec![NatType::Symmetric], 0, "1 or more"),
            (Role::Client, vec![NatType::Symmetric], 61, "at most 60"),
            (
                Role::Client,
                vec![NatType::Symmetric, NatType::Symmetric],
                1,
                "twice",
            ),
            (Role::Server, vec![NatType::Symmetric], 1, "only clients"),
        ];
        for (role, nats, per_nat, expected) in cases {
            let mut s = default();
            let err = populate(
                &mut s,
                role,
                &Side {
                    nats,
                    per_nat,
                    implementations: vec![],
                },
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }
}
