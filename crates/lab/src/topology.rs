//! The addressing plan of a scenario (pure: names and addresses only), and building it.
//!
//! ```text
//!            WAN namespace: bridge br0, 11.0.0.0/8, no link to the machine's network
//!   ┌──────────────┬────────────────┬──────────────────────────┬─────────────────────┐
//!   relay        server        router r1 (wan0 11.128.0.10)   cgn of r2 (11.129.0.10)
//!   11.1.0.10    11.2.0.10       lan0 192.168.1.1/24             lan0 100.64.2.1/24
//!                                  └─ peer 192.168.1.10          └─ r2 wan0 100.64.2.2
//!                                                                     lan0 192.168.2.1/24
//!                                                                       └─ peer 192.168.2.10
//! ```
//!
//! Peers on the WAN get `11.(1+k).0.10`, routers' outer addresses `11.(128+k).0.10` (each a /16 of
//! its own, see `wan_ip`), home
//! networks `192.168.<router>.0/24` (router `.1`, peers from `.10`), and a double NAT's
//! carrier-grade segment `100.64.<router>.0/24` (RFC 6598). Why 11.0.0.0/8 and how it is kept
//! from leaking: [`crate::guard`]. Every namespace gets loopback up and
//! IPv6 off; routers get forwarding on. A link with delay or loss gets an NFQUEUE delayer in the
//! namespace at its outer end (see [`crate::delay`]). [`crate::wiring`] builds a plan.

use std::net::Ipv4Addr;

use crate::nat::{NatType, Stage, LAN_IF, WAN_IF};
use crate::scenario::{Attachment, Link, Ready, Role, Scenario};
use crate::state::NETNS_PREFIX;

/// Name of the WAN bridge inside the WAN namespace.
pub const WAN_BRIDGE: &str = "br0";
pub use crate::guard::WAN_PREFIX;

/// The WAN address of the `k`-th peer on the WAN (`11.<1+k%100>.<k/100>.10`) or of the `k`-th
/// router (`11.<128+k%120>.<k/120>.10`). Each gets a /16 of its own because a go-libp2p DHT
/// (kubo) keeps at most three peers per /16 in its routing table: on one /16 a kubo remote met
/// only three DHT servers and never the honeypot.
fn wan_ip(router: bool, k: usize) -> Ipv4Addr {
    let [a, ..] = crate::guard::WAN_NETWORK.octets();
    let (base, spread) = if router { (128, 120) } else { (1, 100) };
    Ipv4Addr::new(a, (base + k % spread) as u8, (k / spread) as u8, 10)
}
/// Name of a host's only interface.
pub const HOST_IF: &str = "eth0";

/// The whole lab: namespace names and addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The run id.
    pub id: String,
    /// The WAN namespace.
    pub wan_ns: String,
    /// Routers in scenario order.
    pub routers: Vec<RouterPlan>,
    /// Peers in scenario order.
    pub peers: Vec<PeerPlan>,
}

/// A router and its namespaces.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterPlan {
    /// Its scenario name.
    pub name: String,
    /// Its NAT type.
    pub nat: NatType,
    /// Its uplink.
    pub link: Link,
    /// One namespace per NAT stage, from the WAN inwards; the last one serves the peers.
    pub stages: Vec<StagePlan>,
}

impl RouterPlan {
    /// The address the WAN sees for everything behind this router.
    pub fn public_ip(&self) -> Ipv4Addr {
        self.stages[0].wan_ip
    }

    /// The namespace the peers are attached to.
    pub fn home(&self) -> &StagePlan {
        self.stages.last().expect("a router has a stage")
    }
}

/// One router namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    /// The namespace.
    pub ns: String,
    /// What it does.
    pub stage: Stage,
    /// The namespace its `wan0` is attached to (the WAN's or the outer stage's).
    pub upstream_ns: String,
    /// Its `wan0` address.
    pub wan_ip: Ipv4Addr,
    /// Prefix length of `wan0`.
    pub wan_prefix: u8,
    /// Its default gateway (only inner stages have one; the outermost sits on the flat WAN).
    pub gateway: Option<Ipv4Addr>,
    /// Its `lan0` address.
    pub lan_ip: Ipv4Addr,
    /// Prefix length of `lan0`.
    pub lan_prefix: u8,
}

/// A peer's namespace and address.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerPlan {
    /// Its scenario name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The namespace.
    pub ns: String,
    /// Its address on `eth0`.
    pub ip: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Default gateway (behind a router only).
    pub gateway: Option<Ipv4Addr>,
    /// The router it sits behind, if any.
    pub router: Option<String>,
    /// Its NAT type.
    pub nat: NatType,
    /// The address the WAN sees for it.
    pub public_ip: Ipv4Addr,
    /// Its own uplink (WAN peers only).
    pub link: Option<Link>,
    /// The namespace its `eth0` is attached to.
    pub upstream_ns: String,
    /// Its command template.
    pub command: Option<String>,
    /// Its extra environment (templates).
    pub env: Vec<(String, String)>,
    /// When it counts as started.
    pub ready: Option<Ready>,
    /// The libp2p implementation it runs (remotes).
    pub implementation: crate::implementation::Implementation,
}

/// A link that needs a delayer, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct DelayedLink {
    /// Name used for the delayer's process and log.
    pub name: String,
    /// The namespace the delayer runs in.
    pub ns: String,
    /// The link's settings.
    pub link: Link,
    /// The rules that send both directions of the link to the delayer's queue.
    pub rules: Vec<QueueRule>,
}

/// One `iptables -t TABLE -A CHAIN IF_FLAG IFACE -j NFQUEUE` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueRule {
    /// The table (`raw`).
    pub table: &'static str,
    /// The chain.
    pub chain: &'static str,
    /// `-i` (arriving on) or `-o` (leaving through).
    pub if_flag: &'static str,
    /// The interface.
    pub iface: &'static str,
}

impl QueueRule {
    const fn raw(chain: &'static str, if_flag: &'static str, iface: &'static str) -> Self {
        QueueRule {
            table: "raw",
            chain,
            if_flag,
            iface,
        }
    }

    /// The `iptables` arguments that add this rule for `queue`.
    pub fn args(&self, queue: u16) -> Vec<String> {
        [
            "-t",
            self.table,
            "-A",
            self.chain,
            self.if_flag,
            self.iface,
            "-j",
            "NFQUEUE",
            "--queue-num",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(std::iter::once(queue.to_string()))
        .collect()
    }
}

fn add(base: Ipv4Addr, offset: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + offset as u32)
}

impl Plan {
    /// Names and addresses for `scenario` under run `id`.
    pub fn new(scenario: &Scenario, id: &str) -> Plan {
        let ns = |name: &str| format!("{NETNS_PREFIX}{id}-{name}");
        let wan_ns = ns("wan");
        let routers: Vec<RouterPlan> = scenario
            .routers
            .iter()
            .enumerate()
            .map(|(k, r)| {
                let i = (k + 1) as u8;
                let stages = r.nat.stages();
                let mut plans = Vec::new();
                for (depth, stage) in stages.iter().enumerate() {
                    let innermost = depth + 1 == stages.len();
                    let name = if innermost {
                        ns(&r.name)
                    } else {
                        ns(&format!("{}-cgn", r.name))
                    };
                    let (upstream_ns, wan_ip, wan_prefix, gateway) = match plans.last() {
                        None => (wan_ns.clone(), wan_ip(true, k), WAN_PREFIX, None),
                        Some(outer) => {
                            let outer: &StagePlan = outer;
                            (
                                outer.ns.clone(),
                                add(outer.lan_ip, 1),
                                outer.lan_prefix,
                                Some(outer.lan_ip),
                            )
                        }
                    };
                    let lan_ip = if innermost {
                        Ipv4Addr::new(192, 168, i, 1)
                    } else {
                        Ipv4Addr::new(100, 64, i, 1)
                    };
                    plans.push(StagePlan {
                        ns: name,
                        stage: *stage,
                        upstream_ns,
                        wan_ip,
                        wan_prefix,
                        gateway,
                        lan_ip,
                        lan_prefix: 24,
                    });
                }
                RouterPlan {
                    name: r.name.clone(),
                    nat: r.nat,
                    link: r.link.apply(scenario.default_link),
                    stages: plans,
                }
            })
            .collect();
        let mut wan_count = 0;
        let mut behind = vec![0usize; routers.len()];
        let peers = scenario
            .peers
            .iter()
            .map(|p| {
                let (ip, prefix, gateway, router, nat, public_ip, link, upstream_ns) = match &p.at {
                    Attachment::Wan => {
                        let ip = wan_ip(false, wan_count);
                        wan_count += 1;
                        let link = p.link.apply(scenario.default_link);
                        (
                            ip,
                            WAN_PREFIX,
                            None,
                            None,
                            NatType::Public,
                            ip,
                            Some(link),
                            wan_ns.clone(),
                        )
                    }
                    Attachment::Router(name) => {
                        let k = routers
                            .iter()
                            .position(|r| &r.name == name)
                            .expect("validated");
                        let router = &routers[k];
                        let home = router.home();
                        let ip = add(home.lan_ip, 9 + behind[k]);
                        behind[k] += 1;
                        (
                            ip,
                            home.lan_prefix,
                            Some(home.lan_ip),
                            Some(name.clone()),
                            router.nat,
                            router.public_ip(),
                            None,
                            home.ns.clone(),
                        )
                    }
                };
                PeerPlan {
                    name: p.name.clone(),
                    role: p.role,
                    ns: ns(&p.name),
                    ip,
                    prefix,
                    gateway,
                    router,
                    nat,
                    public_ip,
                    link,
                    upstream_ns,
                    command: p.command.clone(),
                    env: p.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    ready: p.ready.clone(),
                    implementation: p.implementation,
                }
            })
            .collect();
        Plan {
            id: id.to_owned(),
            wan_ns,
            routers,
            peers,
        }
    }

    /// Every namespace, in creation order.
    pub fn namespaces(&self) -> Vec<String> {
        std::iter::once(self.wan_ns.clone())
            .chain(
                self.routers
                    .iter()
                    .flat_map(|r| r.stages.iter().map(|s| s.ns.clone())),
            )
            .chain(self.peers.iter().map(|p| p.ns.clone()))
            .collect()
    }

    /// The peer with this name.
    pub fn peer(&self, name: &str) -> Option<&PeerPlan> {
        self.peers.iter().find(|p| p.name == name)
    }

    /// The router with this name.
    pub fn router(&self, name: &str) -> Option<&RouterPlan> {
        self.routers.iter().find(|r| r.name == name)
    }

    /// The links that delay or drop packets, each with the namespace its delayer runs in.
    pub fn delayed_links(&self) -> Vec<DelayedLink> {
        let routers = self
            .routers
            .iter()
            .filter(|r| !r.link.is_transparent())
            .map(|r| {
                DelayedLink {
                    name: format!("delay-{}", r.name),
                    ns: r.stages[0].ns.clone(),
                    link: r.link,
                    // Both directions are queued in the raw table's PREROUTING hook, i.e. before
                    // conntrack sees the packet: a packet held there has no half-made (unconfirmed)
                    // conntrack entry, so a second packet of the same new flow cannot get a
                    // different NAT mapping while the first waits.
                    rules: vec![
                        QueueRule::raw("PREROUTING", "-i", WAN_IF),
                        QueueRule::raw("PREROUTING", "-i", LAN_IF),
                    ],
                }
            });
        let peers = self.peers.iter().filter_map(|p| {
            let link = p.link.filter(|l| !l.is_transparent())?;
            Some(DelayedLink {
                name: format!("delay-{}", p.name),
                ns: p.ns.clone(),
                link,
                rules: vec![
                    QueueRule::raw("PREROUTING", "-i", HOST_IF),
                    QueueRule::raw("OUTPUT", "-o", HOST_IF),
                ],
            })
        });
        routers.chain(peers).collect()
    }

    /// A human-readable table of namespaces and addresses.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut out = format!(
            "run {}: WAN namespace {} ({})\n",
            self.id,
            self.wan_ns,
            crate::guard::wan_range()
        );
        for r in &self.routers {
            let _ = writeln!(
                out,
                "router {:<20} {:<16} public {:<15} delay {} jitter {} loss {}",
                r.name,
                r.nat.as_str(),
                r.public_ip(),
                show(r.link.delay),
                show(r.link.jitter),
                r.link.loss
            );
            for s in &r.stages {
                let _ = writeln!(
                    out,
                    "    {:<28} wan0 {}/{}  lan0 {}/{}",
                    s.ns, s.wan_ip, s.wan_prefix, s.lan_ip, s.lan_prefix
                );
            }
        }
        for p in &self.peers {
            let link = p.link.map_or(String::new(), |l| {
                format!(
                    " delay {} jitter {} loss {}",
                    show(l.delay),
                    show(l.jitter),
                    l.loss
                )
            });
            let _ = writeln!(
                out,
                "peer   {:<20} {:<9} {:<28} {}/{} behind {}{link}",
                p.name,
                p.role.as_str(),
                p.ns,
                p.ip,
                p.prefix,
                p.router.as_deref().unwrap_or("nothing (WAN)")
            );
        }
        out
    }
}

/// A duration as `12ms` (or `250us` below a millisecond).
pub fn show(d: std::time::Duration) -> String {
    if d.as_micros().is_multiple_of(1000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
        name = "t"
        [link]
        delay = "10ms"
        [[router]]
        name = "r1"
        nat = "full-cone"
        [[router]]
        name = "r2"
        nat = "double"
        delay = "0ms"
        [[peer]]
        name = "relay"
        role = "relay"
        at = "wan"
        [[peer]]
        name = "a"
        role = "remote"
        at = "r1"
        [[peer]]
        name = "b"
        role = "remote"
        at = "r2"
        [[peer]]
        name = "c"
        role = "client"
        at = "r2"
    "#;

    #[test]
    fn addresses_follow_the_plan() {
        let scenario = Scenario::parse("t", SCENARIO).unwrap();
        let plan = Plan::new(&scenario, "abc123");
        assert_eq!(plan.wan_ns, "plab-abc123-wan");
        let relay = plan.peer("relay").unwrap();
        assert_eq!(relay.ip, Ipv4Addr::new(11, 1, 0, 10));
        assert_eq!(relay.public_ip, relay.ip);
        let r2 = plan.router("r2").unwrap();
        assert_eq!(r2.stages.len(), 2);
        assert_eq!(r2.stages[0].ns, "plab-abc123-r2-cgn");
        assert_eq!(r2.stages[0].wan_ip, Ipv4Addr::new(11, 129, 0, 10));
        assert_eq!(r2.stages[1].wan_ip, Ipv4Addr::new(100, 64, 2, 2));
        assert_eq!(r2.stages[1].gateway, Some(Ipv4Addr::new(100, 64, 2, 1)));
        assert_eq!(r2.stages[1].upstream_ns, "plab-abc123-r2-cgn");
        let b = plan.peer("b").unwrap();
        let c = plan.peer("c").unwrap();
        assert_eq!(b.ip, Ipv4Addr::new(192, 168, 2, 10));
        assert_eq!(c.ip, Ipv4Addr::new(192, 168, 2, 11));
        assert_eq!(c.public_ip, Ipv4Addr::new(11, 129, 0, 10));
        assert_eq!(c.upstream_ns, "plab-abc123-r2");
        assert_eq!(c.nat, NatType::Double);
        assert_eq!(plan.namespaces().len(), 1 + 3 + 4);
        assert!(plan.namespaces().iter().all(|n| n.len() <= 40));
    }

    #[test]
    fn only_links_with_delay_or_loss_get_a_delayer() {
        let scenario = Scenario::parse("t", SCENARIO).unwrap();
        let plan = Plan::new(&scenario, "abc123");
        let links = plan.delayed_links();
        let names: Vec<_> = links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["delay-r1", "delay-relay"]);
        assert_eq!(links[0].ns, "plab-abc123-r1");
    }
}
