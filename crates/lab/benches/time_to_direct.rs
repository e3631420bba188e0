//! Time from the relayed connection to the direct one, through real port-restricted NATs, at two
//! link delays, as a ratio of the relayed RTT: Punchr's client (our DCUtR) against stock
//! rust-libp2p DCUtR and go-libp2p v0.52's hole punching (the role the original Go client had)
//! on the dialing side, with stock rust-libp2p remotes in every case.
//!
//! `cargo bench -p punchr-lab --bench time_to_direct` (as root) prints one table. For each delay
//! it runs two labs built from the `ci` scenario with a port-restricted client router and a
//! port-restricted remote, TCP only: a Punchr campaign (server, honeypot, clients; the campaign
//! report gives the medians), then the same topology where a stock dialer
//! (`punchr-lab remote-peer --dial`), then the lab's go-libp2p remote in the same mode
//! (`<peers dir>/go-v0.52/remote --dial`, built by `scripts/lab-peers go-v0.52`), punches the
//! remote through the relay once per fresh identity. `PUNCHR_BENCH_DELAYS` (one-way delay per link, comma separated; default `5ms,25ms`)
//! and `PUNCHR_BENCH_PUNCHES` (default 20) change the sizes.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use clap::Parser;
use common::{bin_dir, build_punchr_binaries, foreign_dial, options, peers_dir, stock_dial, sys};
use punchr_lab::campaign::{self, start_role, template_context, RunConfig};
use punchr_lab::cli::{Cli, Command as LabCommand};
use punchr_lab::collector::Collector;
use punchr_lab::commands::run_config;
use punchr_lab::scenario::{Ready, Role, Scenario};
use punchr_lab::Lab;
use punchr_report::nat_labels::CellTransport;

fn scenario_args(delay: &str, punches: u64) -> punchr_lab::cli::RunArgs {
    let punches = punches.to_string();
    let cli = Cli::try_parse_from([
        "punchr-lab",
        "run",
        "--scenario",
        "ci",
        "--client-nats",
        "port-restricted",
        "--clients",
        "2",
        "--remote-nats",
        "port-restricted",
        "--transports",
        "tcp",
        "--punches",
        &punches,
        "--duration",
        "300s",
        "--delay",
        delay,
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    match cli.command {
        LabCommand::Run(args) => *args,
        _ => unreachable!("parsed as run"),
    }
}

/// Medians of one side: (relayed RTT, time to direct, successes, punches).
#[derive(Debug, Clone, Copy)]
struct Side {
    rtt: Option<Duration>,
    to_direct: Option<Duration>,
    successes: u64,
    punches: u64,
}

fn punchr_side(config: &RunConfig) -> Side {
    let mut collector =
        Collector::for_campaign(&config.scenario.campaign, None).expect("collector");
    campaign::run(sys(), config, &mut collector).unwrap_or_else(|e| panic!("{e}"));
    let cell = collector
        .cells
        .iter()
        .find(|c| c.transport == CellTransport::Tcp)
        .unwrap_or_else(|| panic!("no TCP punches: {:?}", collector.cells));
    Side {
        rtt: cell.median_relayed_rtt,
        to_direct: cell.median_time_to_direct,
        successes: cell.outcomes.success,
        punches: cell.outcomes.total(),
    }
}

fn median(values: &mut [f64]) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(Duration::from_secs_f64(
        values[(values.len() - 1) / 2] / 1e3,
    ))
}

/// The stock rust-libp2p dialer and the go-libp2p one, in one lab.
fn dialer_sides(scenario: &Scenario, punches: u64) -> (Side, Side) {
    let lab = Lab::build(sys(), scenario, options()).unwrap_or_else(|e| panic!("{e}"));
    let context = template_context(&lab, bin_dir()).expect("context");
    for role in [Role::Relay, Role::Bootstrap, Role::Remote] {
        start_role(&lab, &context, role, Duration::from_secs(30)).expect("start");
    }
    lab.wait_ready(
        "remote-pr",
        &Ready::Log("ReservationReqAccepted".into()),
        Duration::from_secs(30),
    )
    .expect("remote holds a reservation");
    let stock = dialer_side(punches, |index| {
        stock_dial(
            &lab,
            "client-pr",
            "remote-pr",
            &format!("stock-dialer-{index}"),
        )
    });
    let go = peers_dir().join("go-v0.52/remote");
    let go = dialer_side(punches, |index| {
        foreign_dial(
            &lab,
            &go,
            "client-pr",
            "remote-pr",
            &format!("go-dialer-{index}"),
        )
    });
    lab.stop_processes();
    lab.tear_down();
    (stock, go)
}

/// Medians over `punches` dials, each a fresh identity, of what `dial` printed.
fn dialer_side(punches: u64, dial: impl Fn(u64) -> serde_json::Value) -> Side {
    let (mut rtts, mut to_direct) = (Vec::new(), Vec::new());
    let mut successes = 0;
    for index in 0..punches {
        let value = dial(index);
        if value["result"] == "direct" {
            successes += 1;
            to_direct.extend(value["direct_ms"].as_f64());
        }
        rtts.extend(value["relayed_rtt_ms"].as_f64());
    }
    Side {
        rtt: median(&mut rtts),
        to_direct: median(&mut to_direct),
        successes,
        punches,
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("–".into(), |d| format!("{:.0}", d.as_secs_f64() * 1e3))
}

fn ratio(side: &Side) -> String {
    match (side.to_direct, side.rtt) {
        (Some(t), Some(rtt)) if !rtt.is_zero() => {
            format!("{:.2}", t.as_secs_f64() / rtt.as_secs_f64())
        }
        _ => "–".into(),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    build_punchr_binaries();
    let go = peers_dir().join("go-v0.52/remote");
    assert!(
        go.is_file(),
        "{} is missing: build it with `scripts/lab-peers go-v0.52`",
        go.display()
    );
    let delays = std::env::var("PUNCHR_BENCH_DELAYS").unwrap_or_else(|_| "5ms,25ms".into());
    let punches: u64 = std::env::var("PUNCHR_BENCH_PUNCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut rows = Vec::new();
    for delay in delays.split(',') {
        let config =
            run_config(&scenario_args(delay, punches), options(), bin_dir()).expect("config");
        eprintln!("delay {delay}: Punchr campaign");
        let ours = punchr_side(&config);
        eprintln!("delay {delay}: stock rust-libp2p and go-libp2p dialers");
        let (stock, go) = dialer_sides(&campaign::campaign_env(&config.scenario), punches);
        rows.push((delay.to_owned(), ours, stock, go));
    }
    println!(
        "\nTime to direct connection through port-restricted NATs over TCP (medians; ratio = time to direct / relayed RTT)"
    );
    println!("| one-way delay per link | side | successes | relayed RTT (ms) | time to direct (ms) | ratio |");
    println!("|---|---|---:|---:|---:|---:|");
    for (delay, ours, stock, go) in &rows {
        for (name, side) in [
            ("Punchr client (our DCUtR)", ours),
            ("stock rust-libp2p DCUtR", stock),
            ("go-libp2p v0.52 hole punching", go),
        ] {
            println!(
                "| {delay} | {name} | {}/{} | {} | {} | {} |",
                side.successes,
                side.punches,
                ms(side.rtt),
                ms(side.to_direct),
                ratio(side)
            );
        }
    }
}
