//! Building a [`Plan`]: namespaces, the WAN bridge, veth pairs, addresses, routes and each router
//! stage's nftables ruleset. Only `ip -n NS …` and `ip netns exec NS nft …` are used, so no
//! interface ever exists in the machine's own namespace, and deleting the lab's namespaces
//! removes every interface and rule with them.

use std::net::Ipv4Addr;

use crate::error::Result;
use crate::nat::{self, LAN_IF, WAN_IF};
use crate::netns::{self, Sys};
use crate::topology::{Plan, HOST_IF, WAN_BRIDGE};

/// Creates one namespace: loopback up, IPv6 off, forwarding as asked.
pub fn create_namespace(sys: &Sys, ns: &str, forwarding: bool) -> Result<()> {
    sys.add_netns(ns)?;
    sys.ip_in(ns, &["link", "set", "lo", "up"])?;
    netns::sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")?;
    netns::sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")?;
    if forwarding {
        netns::sysctl(ns, "net.ipv4.ip_forward", "1")?;
    }
    Ok(())
}

/// Sets how long a router's UDP mappings (conntrack entries) live after their last packet, for
/// unreplied and replied flows alike; `None` keeps the kernel's defaults. The settings are per
/// namespace.
pub fn set_udp_timeout(ns: &str, timeout: Option<std::time::Duration>) -> Result<()> {
    let Some(timeout) = timeout else {
        return Ok(());
    };
    let seconds = timeout.as_secs().max(1).to_string();
    netns::sysctl(ns, "net.netfilter.nf_conntrack_udp_timeout", &seconds)?;
    netns::sysctl(
        ns,
        "net.netfilter.nf_conntrack_udp_timeout_stream",
        &seconds,
    )
}

/// Connects `child_if` in `child_ns` to the bridge `bridge` in `parent_ns` through a veth pair
/// whose parent end is called `port`, then addresses the child end.
fn attach(
    sys: &Sys,
    parent_ns: &str,
    bridge: &str,
    port: &str,
    child_ns: &str,
    child_if: &str,
    address: (Ipv4Addr, u8),
) -> Result<()> {
    sys.ip_in(
        parent_ns,
        &[
            "link", "add", port, "type", "veth", "peer", "name", child_if, "netns", child_ns,
        ],
    )?;
    sys.ip_in(parent_ns, &["link", "set", port, "master", bridge, "up"])?;
    let cidr = format!("{}/{}", address.0, address.1);
    sys.ip_in(child_ns, &["addr", "add", &cidr, "dev", child_if])?;
    sys.ip_in(child_ns, &["link", "set", child_if, "up"])?;
    Ok(())
}

fn add_bridge(sys: &Sys, ns: &str, name: &str, address: Option<(Ipv4Addr, u8)>) -> Result<()> {
    sys.ip_in(ns, &["link", "add", name, "type", "bridge"])?;
    if let Some((ip, prefix)) = address {
        sys.ip_in(ns, &["addr", "add", &format!("{ip}/{prefix}"), "dev", name])?;
    }
    sys.ip_in(ns, &["link", "set", name, "up"])?;
    Ok(())
}

/// Builds the wiring, addresses, routes and NAT rules of a plan whose namespaces already exist
/// (see [`create_namespace`]). Delayers are started separately, by the lab.
pub fn wire(sys: &Sys, plan: &Plan) -> Result<()> {
    add_bridge(sys, &plan.wan_ns, WAN_BRIDGE, None)?;
    let mut wan_port = 0;
    let mut next_wan_port = || {
        wan_port += 1;
        format!("w{wan_port}")
    };
    for router in &plan.routers {
        for stage in &router.stages {
            add_bridge(
                sys,
                &stage.ns,
                LAN_IF,
                Some((stage.lan_ip, stage.lan_prefix)),
            )?;
        }
        for (depth, stage) in router.stages.iter().enumerate() {
            let (bridge, port) = if depth == 0 {
                (WAN_BRIDGE, next_wan_port())
            } else {
                (LAN_IF, "h0".to_owned())
            };
            attach(
                sys,
                &stage.upstream_ns,
                bridge,
                &port,
                &stage.ns,
                WAN_IF,
                (stage.wan_ip, stage.wan_prefix),
            )?;
            if let Some(gateway) = stage.gateway {
                sys.ip_in(
                    &stage.ns,
                    &["route", "add", "default", "via", &gateway.to_string()],
                )?;
            }
            sys.nft_load(&stage.ns, &nat::ruleset(stage.stage))?;
        }
    }
    let mut lan_ports = std::collections::HashMap::<&str, usize>::new();
    for peer in &plan.peers {
        let (bridge, port) = if peer.router.is_none() {
            (WAN_BRIDGE, next_wan_port())
        } else {
            let n = lan_ports.entry(peer.upstream_ns.as_str()).or_insert(0);
            *n += 1;
            (LAN_IF, format!("h{n}"))
        };
        attach(
            sys,
            &peer.upstream_ns,
            bridge,
            &port,
            &peer.ns,
            HOST_IF,
            (peer.ip, peer.prefix),
        )?;
        if let Some(gateway) = peer.gateway {
            sys.ip_in(
                &peer.ns,
                &["route", "add", "default", "via", &gateway.to_string()],
            )?;
        }
    }
    Ok(())
}
