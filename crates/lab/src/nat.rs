//! NAT types and the nftables rules that make a router namespace behave like one
//! (RFC 4787 for UDP, RFC 5382 for TCP).
//!
//! Every router namespace has two interfaces: `wan0` (upstream) and `lan0` (a bridge the hosts
//! behind it are attached to). All types share a filter table that drops unsolicited inbound
//! packets *silently*: the input chain drops everything that is not loopback, LAN or part of a
//! known connection, so the router's own stack never answers a stray SYN with a RST or a stray
//! datagram with ICMP port unreachable (RFC 5382 REQ-4: a NAT must not answer an unsolicited SYN
//! for at least 6 s, or the SYN that arrives just before the local one leaves kills a TCP
//! simultaneous open). The NAT table then differs per type:
//!
//! | type | mapping | filtering | rules |
//! |---|---|---|---|
//! | `full-cone` | endpoint-independent | endpoint-independent | masquerade (port-preserving); a dynamic map remembers which host owns each mapped port and inbound packets to it are DNATed back |
//! | `port-restricted` | endpoint-independent | address-and-port-dependent | masquerade (port-preserving), conntrack lets only replies in |
//! | `symmetric` | address-and-port-dependent | address-and-port-dependent | `masquerade fully-random`: a random port for every flow |
//! | `udp-blocked` | as port-restricted | as port-restricted, and no UDP at all | port-restricted plus `meta l4proto udp drop` in forward |
//! | `double` | two port-restricted NATs in a row | | a home router behind a carrier-grade NAT, 100.64.0.0/10 between them |

use std::fmt;
use std::str::FromStr;

/// The NAT types the lab emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NatType {
    /// No NAT: the host sits on the WAN.
    Public,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestricted,
    /// Address-and-port-dependent mapping and filtering.
    Symmetric,
    /// Port-restricted for TCP; UDP is dropped in both directions.
    UdpBlocked,
    /// A port-restricted home router behind a port-restricted carrier-grade NAT.
    Double,
}

impl NatType {
    /// Every type, in table order.
    pub const ALL: [NatType; 6] = [
        NatType::Public,
        NatType::FullCone,
        NatType::PortRestricted,
        NatType::Symmetric,
        NatType::UdpBlocked,
        NatType::Double,
    ];

    /// The name used in scenarios and reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            NatType::Public => "public",
            NatType::FullCone => "full-cone",
            NatType::PortRestricted => "port-restricted",
            NatType::Symmetric => "symmetric",
            NatType::UdpBlocked => "udp-blocked",
            NatType::Double => "double",
        }
    }

    /// The router namespaces this type needs, from the WAN inwards.
    pub fn stages(&self) -> &'static [Stage] {
        match self {
            NatType::Public => &[],
            NatType::FullCone => &[Stage::FullCone],
            NatType::PortRestricted => &[Stage::PortRestricted],
            NatType::Symmetric => &[Stage::Symmetric],
            NatType::UdpBlocked => &[Stage::UdpBlocked],
            NatType::Double => &[Stage::PortRestricted, Stage::PortRestricted],
        }
    }
}

impl fmt::Display for NatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NatType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NatType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = NatType::ALL.iter().map(|t| t.as_str()).collect();
                format!("unknown NAT type {s:?} (known: {})", names.join(", "))
            })
    }
}

/// What one router namespace does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestricted,
    /// Address-and-port-dependent mapping and filtering.
    Symmetric,
    /// Port-restricted without UDP.
    UdpBlocked,
}

/// Name of the interface towards the WAN in a router namespace.
pub const WAN_IF: &str = "wan0";
/// Name of the LAN bridge in a router namespace.
pub const LAN_IF: &str = "lan0";
/// Name of the nftables filter table the lab installs.
pub const FILTER_TABLE: &str = "plab_filter";
/// Name of the nftables NAT table the lab installs.
pub const NAT_TABLE: &str = "plab_nat";
/// Lifetime of an idle full-cone mapping (RFC 4787 REQ-5 asks for at least 2 minutes).
pub const FULL_CONE_MAPPING_TIMEOUT: &str = "5m";

/// The complete nftables ruleset (for `nft -f -`) of a router namespace doing `stage`.
pub fn ruleset(stage: Stage) -> String {
    let udp_drop = if stage == Stage::UdpBlocked {
        "        meta l4proto udp counter drop comment \"udp-blocked: no UDP either way\"\n"
    } else {
        ""
    };
    let dnat_accept = if stage == Stage::FullCone {
        format!("        iifname \"{WAN_IF}\" oifname \"{LAN_IF}\" ct status dnat accept comment \"full-cone: inbound to a mapped port\"\n")
    } else {
        String::new()
    };
    let masquerade = match stage {
        Stage::Symmetric => "masquerade fully-random",
        _ => "masquerade",
    };
    let full_cone = if stage == Stage::FullCone {
        format!(
            r#"    map fullcone {{
        type inet_proto . inet_service : ipv4_addr
        flags dynamic, timeout
        timeout {FULL_CONE_MAPPING_TIMEOUT}
    }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname "{WAN_IF}" ct state new meta l4proto {{ tcp, udp }} counter dnat ip to meta l4proto . th dport map @fullcone
    }}
    chain record {{
        type filter hook postrouting priority srcnat + 10; policy accept;
        oifname "{WAN_IF}" ct direction original meta l4proto {{ tcp, udp }} update @fullcone {{ meta l4proto . th sport : ct original ip saddr }}
    }}
"#
        )
    } else {
        String::new()
    };
    format!(
        r#"table inet {FILTER_TABLE} {{
    chain input {{
        type filter hook input priority filter; policy drop;
        iifname "lo" accept
        ct state established,related accept
        iifname "{LAN_IF}" accept
        counter comment "unsolicited to the router: dropped silently"
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
{udp_drop}        ct state invalid counter drop
        ct state established,related accept
        iifname "{LAN_IF}" oifname "{WAN_IF}" accept
{dnat_accept}        counter comment "unsolicited inbound: dropped silently"
    }}
}}
table ip {NAT_TABLE} {{
{full_cone}    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{WAN_IF}" counter {masquerade}
    }}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in NatType::ALL {
            assert_eq!(t.as_str().parse::<NatType>().unwrap(), t);
        }
        assert!("cone".parse::<NatType>().unwrap_err().contains("full-cone"));
    }

    #[test]
    fn rulesets_differ_where_the_types_differ() {
        let pr = ruleset(Stage::PortRestricted);
        assert!(pr.contains("counter masquerade\n"));
        assert!(!pr.contains("fullcone"));
        assert!(ruleset(Stage::Symmetric).contains("masquerade fully-random"));
        assert!(ruleset(Stage::UdpBlocked).contains("meta l4proto udp counter drop"));
        let fc = ruleset(Stage::FullCone);
        assert!(fc.contains("update @fullcone"));
        assert!(fc.contains("ct status dnat accept"));
        for stage in [
            Stage::FullCone,
            Stage::PortRestricted,
            Stage::Symmetric,
            Stage::UdpBlocked,
        ] {
            let r = ruleset(stage);
            assert!(!r.contains("reject"), "routers never reject, they drop");
            assert!(r.contains("policy drop"));
        }
        assert_eq!(NatType::Double.stages().len(), 2);
    }
}
