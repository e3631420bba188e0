//! How close the NFQUEUE delayer comes to the configured link delays on this machine: UDP round
//! trips across the routers and public hosts of `tests/scenarios/links.toml`, one table row per
//! path, with the configured round trip (from the scenario), min, median, p90, max and loss.
//!
//! `cargo bench -p punchr-lab --bench link_delay` (as root). The target of each row is a median
//! under twice the configured round trip, or under 20 ms where that is less: a delayer
//! that holds packets much longer than asked, or a machine too loaded to emulate the link, shows
//! as "over". What a loaded machine cannot change (no packet released early, the share lost) is
//! the test `tests/delay.rs`. Exits non-zero when a measurement failed: a probe did not run, or
//! a path without loss lost datagrams.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::time::Duration;

use common::{build, rtt_figure, scenario};
use punchr_lab::probe::ECHO_PORT;
use punchr_lab::scenario::{Attachment, Scenario};

/// A measured path: from a host behind a router to an echo server on the WAN.
struct Path {
    what: &'static str,
    from: &'static str,
    to: &'static str,
    count: u32,
    interval: &'static str,
}

const PATHS: [Path; 6] = [
    Path {
        what: "no delay (router d0)",
        from: "h-d0",
        to: "echo",
        count: 100,
        interval: "5ms",
    },
    Path {
        what: "router d20",
        from: "h-d20",
        to: "echo",
        count: 100,
        interval: "5ms",
    },
    Path {
        what: "public host slow",
        from: "h-d0",
        to: "slow",
        count: 100,
        interval: "5ms",
    },
    Path {
        what: "router d20 to host slow",
        from: "h-d20",
        to: "slow",
        count: 100,
        interval: "5ms",
    },
    Path {
        what: "router jit (with jitter)",
        from: "h-jit",
        to: "echo",
        count: 100,
        interval: "5ms",
    },
    Path {
        what: "router lossy (with loss)",
        from: "h-lossy",
        to: "echo",
        count: 1000,
        interval: "1ms",
    },
];

/// The configured one-way delay and loss from `from` to `to`: the uplink of `from`'s router
/// plus `to`'s own uplink, each a share lost on its own.
fn configured(scenario: &Scenario, from: &str, to: &str) -> (Duration, f64) {
    let uplink = |name: &str| {
        let peer = scenario.peer(name).expect("peer in links.toml");
        let link = match &peer.at {
            Attachment::Router(router) => &scenario.router(router).expect("router").link,
            Attachment::Wan => &peer.link,
        };
        link.apply(scenario.default_link)
    };
    let (a, b) = (uplink(from), uplink(to));
    let survives = (1.0 - a.loss) * (1.0 - b.loss);
    (a.delay + b.delay, 1.0 - survives * survives)
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    let scenario = scenario("links.toml");
    let lab = build("links.toml");
    lab.echo("echo");
    lab.echo("slow");
    let mut failed = Vec::new();
    println!("\nNFQUEUE delayer: UDP round trips per path (ms; loss as a share)");
    println!("| path | configured RTT | min | median | p90 | max | loss (configured) | target: median under | verdict |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for path in &PATHS {
        let (one_way, loss) = configured(&scenario, path.from, path.to);
        let rtt_ms = 2.0 * one_way.as_secs_f64() * 1e3;
        let to = lab.addr(path.to, ECHO_PORT);
        let v = match lab.probe(
            path.from,
            &[
                "rtt",
                "--to",
                &to,
                "--count",
                &path.count.to_string(),
                "--interval",
                path.interval,
            ],
        ) {
            Ok(v) => v,
            Err(error) => {
                failed.push(format!("{}: the probe failed: {error}", path.what));
                continue;
            }
        };
        if loss == 0.0 && v["received"] != v["sent"] {
            failed.push(format!(
                "{}: datagrams lost on a path without loss: {v}",
                path.what
            ));
            continue;
        }
        let ms = |key| rtt_figure(&v, key);
        let target = (2.0 * rtt_ms).max(20.0);
        let verdict = if ms("median_ms") < target {
            "met"
        } else {
            "over"
        };
        println!(
            "| {} | {rtt_ms:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} ({loss:.2}) | {target:.0} | {verdict} |",
            path.what,
            ms("min_ms"),
            ms("median_ms"),
            ms("p90_ms"),
            ms("max_ms"),
            ms("loss"),
        );
    }
    if failed.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!("link_delay: measurements failed, their figures are not shown:");
    for failure in &failed {
        eprintln!("  {failure}");
    }
    ExitCode::FAILURE
}
