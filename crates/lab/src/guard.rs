//! The lab's internet and the guard that keeps it inside the machine.
//!
//! go-libp2p (go-multiaddr's `manet.IsPublicAddr`) and js-libp2p (`@libp2p/utils`) drop every
//! address they consider non-public from DCUtR and from observed addresses, and they count the
//! benchmarking range 198.18.0.0/15, the TEST-NETs, 100.64.0.0/10 and 240.0.0.0/4 as non-public.
//! So the lab's WAN uses 11.0.0.0/8, which every implementation takes as public (libp2p's own
//! interop tests moved there for the same reason, test-plans PR #863).
//!
//! That range belongs to someone on the real internet, so leaking must be impossible, not
//! unlikely. Three walls:
//! 1. its addresses exist only on interfaces inside the lab's namespaces, and the WAN namespace
//!    has no link or route out ([`crate::wiring`]);
//! 2. for the whole run the machine's own namespace has a blackhole route for the range, one per
//!    run (its metric encodes the run id, so concurrent runs do not clash and `punchr-lab clean`
//!    can tell whose a route is);
//! 3. and an nftables table of the run's own that drops every packet to or from the range in the
//!    machine's own namespace (output, forward, input).
//!
//! Both are installed before the first namespace exists and removed after the last one is gone,
//! also by `punchr-lab clean` after a killed run ([`crate::state`]).

use std::net::Ipv4Addr;

use crate::error::{LabError, Result};
use crate::netns::Sys;

/// The first address of the lab's WAN.
pub const WAN_NETWORK: Ipv4Addr = Ipv4Addr::new(11, 0, 0, 0);
/// The WAN's prefix length.
pub const WAN_PREFIX: u8 = 8;
/// Blackhole route metrics of lab runs: this base plus the run id (24 bits of hex).
const METRIC_BASE: u32 = 1_000_000_000;
/// Prefix of the guard's nftables table in the machine's own namespace.
const TABLE_PREFIX: &str = "plab_guard_";

/// The WAN range as text, `11.0.0.0/8`.
pub fn wan_range() -> String {
    format!("{WAN_NETWORK}/{WAN_PREFIX}")
}

/// Whether an address lies in the WAN range.
pub fn in_wan(ip: Ipv4Addr) -> bool {
    let mask = u32::MAX << (32 - u32::from(WAN_PREFIX));
    u32::from(ip) & mask == u32::from(WAN_NETWORK)
}

/// The blackhole route metric of a run.
pub fn metric(run_id: &str) -> Result<u32> {
    u32::from_str_radix(run_id, 16)
        .ok()
        .filter(|id| *id < 1 << 24)
        .map(|id| METRIC_BASE + id)
        .ok_or_else(|| LabError::State {
            path: run_id.into(),
            message: "a run id is six hex digits".into(),
        })
}

/// The run whose guard route has this metric, if it is a lab metric.
fn run_of_metric(metric: u32) -> Option<String> {
    let id = metric.checked_sub(METRIC_BASE)?;
    (id < 1 << 24).then(|| format!("{id:06x}"))
}

/// The name of a run's nftables table.
pub fn table(run_id: &str) -> String {
    format!("{TABLE_PREFIX}{run_id}")
}

/// The guard's ruleset for a run.
fn ruleset(run_id: &str) -> String {
    let range = wan_range();
    let table = table(run_id);
    format!(
        "table ip {table} {{
    comment \"punchr-lab run {run_id}: nothing to or from the lab's WAN leaves this machine\"
    chain output {{
        type filter hook output priority -300; policy accept;
        ip daddr {range} counter drop
    }}
    chain forward {{
        type filter hook forward priority -300; policy accept;
        ip daddr {range} counter drop
        ip saddr {range} counter drop
    }}
    chain input {{
        type filter hook input priority -300; policy accept;
        ip saddr {range} counter drop
    }}
}}
"
    )
}

/// Refuses when the machine's own namespace already routes some of the WAN range somewhere
/// other than a lab blackhole: the lab would then shadow a real network.
pub fn check_no_foreign_routes(sys: &Sys) -> Result<()> {
    let foreign: Vec<String> = routes_in_range(sys)?
        .into_iter()
        .filter(|r| !(r.blackhole && r.metric.and_then(run_of_metric).is_some()))
        .map(|r| r.text)
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(LabError::Preflight(format!(
        "this machine routes part of {} (the lab's WAN) already: {}; the lab will not run \
         beside a real route into its internet",
        wan_range(),
        foreign.join("; ")
    )))
}

/// Installs a run's blackhole route and drop table in the machine's own namespace.
pub fn install(sys: &Sys, run_id: &str) -> Result<()> {
    let metric = metric(run_id)?.to_string();
    let range = wan_range();
    sys.ip(&[
        "route",
        "replace",
        "blackhole",
        &range,
        "metric",
        &metric,
        "proto",
        "static",
    ])?;
    sys.nft_host(&ruleset(run_id))
}

/// Removes a run's guard; what is already gone is fine.
pub fn remove(sys: &Sys, run_id: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let range = wan_range();
    match metric(run_id) {
        Ok(metric) => {
            let present = routes_in_range(sys)
                .map(|routes| routes.iter().any(|r| r.metric == Some(metric)))
                .unwrap_or(true);
            if present {
                let metric = metric.to_string();
                if let Err(e) = sys.ip(&["route", "del", "blackhole", &range, "metric", &metric]) {
                    errors.push(e.to_string());
                }
            }
        }
        Err(e) => errors.push(e.to_string()),
    }
    let table = table(run_id);
    if host_tables(sys).contains(&table) {
        if let Err(e) = sys.nft_host_args(&["delete", "table", "ip", &table]) {
            errors.push(e.to_string());
        }
    }
    errors
}

/// Run ids that have a guard route or table in the machine's own namespace.
pub fn guarded_runs(sys: &Sys) -> Vec<String> {
    let mut ids: Vec<String> = routes_in_range(sys)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.blackhole)
        .filter_map(|r| r.metric.and_then(run_of_metric))
        .chain(
            host_tables(sys)
                .into_iter()
                .filter_map(|t| t.strip_prefix(TABLE_PREFIX).map(str::to_owned)),
        )
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// One route of the machine's own namespace that lies in the WAN range.
#[derive(Debug, Clone, PartialEq)]
struct RangeRoute {
    blackhole: bool,
    metric: Option<u32>,
    text: String,
}

/// Routes (any table) whose destination lies inside the WAN range or is the range itself.
fn routes_in_range(sys: &Sys) -> Result<Vec<RangeRoute>> {
    let range = wan_range();
    let json = sys.ip(&["-j", "route", "show", "table", "all", "root", &range])?;
    Ok(parse_routes(&json))
}

fn parse_routes(json: &str) -> Vec<RangeRoute> {
    let routes: Vec<serde_json::Value> = serde_json::from_str(json.trim()).unwrap_or_default();
    routes
        .into_iter()
        .map(|r| RangeRoute {
            blackhole: r["type"] == "blackhole",
            metric: r["metric"].as_u64().and_then(|m| u32::try_from(m).ok()),
            text: r.to_string(),
        })
        .collect()
}

/// Names of the `ip` family nftables tables in the machine's own namespace.
fn host_tables(sys: &Sys) -> Vec<String> {
    sys.nft_host_args(&["list", "tables", "ip"])
        .map(|text| {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("table ip "))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wan_is_eleven_slash_eight() {
        assert!(in_wan(Ipv4Addr::new(11, 0, 0, 10)));
        assert!(in_wan(Ipv4Addr::new(11, 255, 255, 254)));
        assert!(!in_wan(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!in_wan(Ipv4Addr::new(12, 0, 0, 1)));
        assert!(!in_wan(Ipv4Addr::new(198, 18, 0, 10)));
        assert_eq!(wan_range(), "11.0.0.0/8");
    }

    #[test]
    fn a_metric_names_its_run_and_nothing_else() {
        let m = metric("00a1ff").unwrap();
        assert_eq!(run_of_metric(m).as_deref(), Some("00a1ff"));
        assert_eq!(run_of_metric(0), None);
        assert_eq!(run_of_metric(METRIC_BASE + (1 << 24)), None);
        assert!(metric("xyz").is_err());
        assert!(metric("1000000").is_err());
    }

    #[test]
    fn only_lab_blackholes_are_our_routes() {
        let json = format!(
            r#"[{{"type":"blackhole","dst":"11.0.0.0/8","metric":{}}},
               {{"dst":"11.1.0.0/16","gateway":"192.0.2.1","dev":"eth0"}},
               {{"type":"blackhole","dst":"11.0.0.0/8","metric":5}}]"#,
            METRIC_BASE + 7
        );
        let routes = parse_routes(&json);
        assert_eq!(routes.len(), 3);
        assert!(routes[0].blackhole && routes[0].metric.and_then(run_of_metric).is_some());
        assert!(!routes[1].blackhole);
        assert!(routes[2].metric.and_then(run_of_metric).is_none());
    }

    #[test]
    fn the_ruleset_drops_both_directions() {
        let rules = ruleset("abc123");
        assert!(rules.contains("table ip plab_guard_abc123"));
        assert!(rules.contains("hook output"));
        assert!(rules.contains("ip daddr 11.0.0.0/8 counter drop"));
        assert!(rules.contains("ip saddr 11.0.0.0/8 counter drop"));
    }
}
