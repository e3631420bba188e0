//! What each `punchr-lab` command does (the binary only parses and reports errors).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::campaign::{self, RunConfig};
use crate::cli::{Cli, Command, DirArgs, LinkArgs, RunArgs, ScenarioArgs};
use crate::collector::Collector;
use crate::delay::{self, DelayConfig};
use crate::error::{LabError, Result};
use crate::lab::{Lab, LabOptions};
use crate::netns::Sys;
use crate::peers;
use crate::population::{self, nats_of, Side};
use crate::preflight::{self, Needs};
use crate::scenario::{LinkOverride, Role, Scenario, CI_SCENARIO, DEFAULT_SCENARIO};
use crate::state;
use crate::topology::Plan;

/// Runs a parsed command line.
pub fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => {
            let (lab, bin_dir) = options(&args.dirs)?;
            let config = run_config(&args, lab, bin_dir)?;
            let sys = prepare(&config.scenario)?;
            let mut collector =
                Collector::for_campaign(&config.scenario.campaign, args.html.clone())?;
            let report = campaign::run(sys, &config, &mut collector)?;
            if args.json {
                let json = serde_json::json!({
                    "scenario": report.scenario,
                    "run_id": report.run_id,
                    "run_dir": report.run_dir,
                    "scenario_file": report.scenario_file,
                    "seed": report.seed,
                    "versions": {
                        "punchr_lab": env!("CARGO_PKG_VERSION"),
                        "remotes": remote_versions(&config),
                    },
                    "html": collector.html_written,
                    "elapsed_seconds": report.elapsed.as_secs_f64(),
                    "cells": collector.cells,
                    "implementations": collector.implementations,
                });
                println!("{json:#}");
            } else {
                print!("{report}");
            }
            Ok(())
        }
        Command::Up(args) => {
            let scenario = campaign::campaign_env(&load(&args.scenario, &args.link)?);
            let sys = prepare(&scenario)?;
            let (options, bin_dir) = options(&args.dirs)?;
            let stop = options.stop.clone();
            let lab = Lab::build(sys, &scenario, options)?;
            print!("{}", lab.plan().describe());
            if args.start_peers {
                let context = campaign::template_context(&lab, bin_dir)?;
                for role in campaign::START_ORDER {
                    campaign::start_role(&lab, &context, role, args.ready_timeout)?;
                }
            }
            println!(
                "lab {} is up; logs in {}; enter a namespace with `ip netns exec <namespace> bash`; \
                 Ctrl-C removes it",
                lab.id(),
                lab.log_dir().display()
            );
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let removed = lab.tear_down();
            println!("removed {} namespaces", removed.namespaces.len());
            Ok(())
        }
        Command::Plan(args) => {
            let scenario = load(&args, &LinkArgs::none())?;
            print!("{}", Plan::new(&scenario, "<id>").describe());
            Ok(())
        }
        Command::Clean(args) => {
            let sys = Sys::new(preflight::check(Needs::default())?);
            let removed = state::clean(&sys, args.all);
            println!(
                "removed {} run(s), {} namespace(s), {} process(es)",
                removed.runs.len(),
                removed.namespaces.len(),
                removed.processes
            );
            if !removed.live_runs.is_empty() {
                println!(
                    "left {} live run(s) alone ({}); --all removes them too",
                    removed.live_runs.len(),
                    removed.live_runs.join(", ")
                );
            }
            if removed.errors.is_empty() {
                Ok(())
            } else {
                Err(LabError::State {
                    path: state::STATE_DIR.into(),
                    message: removed.errors.join("; "),
                })
            }
        }
        Command::Check => {
            let tools = preflight::check(Needs { delayer: true })?;
            println!(
                "ok: root, {} {} {}, network namespaces, NFQUEUE",
                tools.ip.display(),
                tools.nft.display(),
                tools.iptables.display()
            );
            Ok(())
        }
        Command::Delay(args) => {
            if !(0.0..=1.0).contains(&args.loss) {
                return Err(LabError::InvalidScenario(format!(
                    "--loss must be between 0.0 and 1.0, got {}",
                    args.loss
                )));
            }
            let stop = stop_flag()?;
            delay::run(
                DelayConfig {
                    queue: args.queue,
                    delay: args.delay,
                    jitter: args.jitter,
                    loss: args.loss,
                    seed: args.seed,
                },
                &stop,
            )?;
            Ok(())
        }
        Command::Relay(args) => peers::block_on(peers::run_relay(args)),
        Command::Bootstrap(args) => peers::block_on(peers::run_bootstrap(args)),
        Command::RemotePeer(args) => peers::block_on(peers::run_remote(args)),
        Command::Database(args) => crate::postgres::run_database(&args),
        Command::Probe(probe) => {
            let out = crate::probe::run(&probe).map_err(|e| LabError::io("probe", e))?;
            if let Some(line) = out {
                println!("{line}");
            }
            Ok(())
        }
    }
}

impl LinkArgs {
    fn none() -> Self {
        LinkArgs {
            delay: None,
            jitter: None,
            loss: None,
        }
    }
}

/// The pinned version and build stamp of each remote implementation the campaign ran.
fn remote_versions(config: &RunConfig) -> serde_json::Map<String, serde_json::Value> {
    config
        .scenario
        .remote_implementations()
        .into_iter()
        .map(|i| {
            (
                i.name().to_owned(),
                i.build_stamp(&config.lab.peers_dir).into(),
            )
        })
        .collect()
}

/// Everything `run` needs from its flags: the scenario with every campaign flag applied, and the
/// database (`--db postgres` is the lab's own server, added to the scenario; anything else a URL).
pub fn run_config(args: &RunArgs, lab: LabOptions, bin_dir: PathBuf) -> Result<RunConfig> {
    let scenario = campaign_scenario(args)?;
    check_implementations_built(&scenario, &lab.peers_dir)?;
    Ok(RunConfig {
        scenario,
        lab,
        bin_dir,
        ready_timeout: args.ready_timeout,
        db: args.db.clone().filter(|db| db != "postgres"),
    })
}

/// Refuses, naming the build command, when a remote's implementation is not built.
pub fn check_implementations_built(scenario: &Scenario, peers_dir: &std::path::Path) -> Result<()> {
    scenario
        .remote_implementations()
        .into_iter()
        .try_for_each(|implementation| implementation.check_built(peers_dir))
}

/// The scenario of `run` with every campaign flag applied.
pub fn campaign_scenario(args: &RunArgs) -> Result<Scenario> {
    let mut scenario = load(&args.scenario, &args.link)?;
    let no_impls = Vec::new();
    for (role, nats, per_nat, implementations) in [
        (Role::Client, &args.client_nats, args.clients, &no_impls),
        (
            Role::Remote,
            &args.remote_nats,
            args.remotes,
            args.remote_impls.as_ref().unwrap_or(&no_impls),
        ),
    ] {
        if nats.is_none() && per_nat.is_none() && implementations.is_empty() {
            continue;
        }
        let side = Side {
            nats: nats.clone().unwrap_or_else(|| nats_of(&scenario, role)),
            per_nat: per_nat.unwrap_or(1),
            implementations: implementations.clone(),
        };
        population::populate(&mut scenario, role, &side)?;
    }
    if let Some(strategy) = &args.role_strategy {
        strategy
            .parse::<punchr_dcutr::RoleStrategy>()
            .map_err(|e| LabError::InvalidScenario(format!("--role-strategy: {e}")))?;
        for client in scenario.peers.iter_mut().filter(|p| p.role == Role::Client) {
            client
                .env
                .insert("PUNCHR_CLIENT_ROLE_STRATEGY".into(), strategy.clone());
        }
    }
    let campaign = &mut scenario.campaign;
    if let Some(duration) = args.duration {
        campaign.duration = duration;
    }
    if let Some(punches) = args.punches {
        campaign.punches = Some(punches);
    }
    if let Some(per_cell) = args.per_cell {
        campaign.per_cell = Some(per_cell);
    }
    if let Some(transports) = &args.transports {
        campaign.transports = transports.clone();
    }
    if let Some(hosts) = args.hosts_per_client {
        campaign.hosts_per_client = hosts;
    }
    campaign.check()?;
    if args.db.as_deref() == Some("postgres") {
        crate::postgres::add_to(&mut scenario)?;
    }
    Ok(scenario)
}

/// Reads the scenario (`default`, `ci` or a path) and applies the link flags.
fn load(args: &ScenarioArgs, link: &LinkArgs) -> Result<Scenario> {
    let mut scenario = match args.scenario.as_str() {
        "default" => Scenario::parse("default", DEFAULT_SCENARIO)?,
        "ci" => Scenario::parse("ci", CI_SCENARIO)?,
        "interop" => Scenario::parse("interop", crate::scenario::INTEROP_SCENARIO)?,
        path => Scenario::from_file(path.as_ref())?,
    };
    if let Some(loss) = link.loss.filter(|l| !(0.0..=1.0).contains(l)) {
        return Err(LabError::InvalidScenario(format!(
            "--loss must be between 0.0 and 1.0, got {loss}"
        )));
    }
    scenario.override_default_link(LinkOverride {
        delay: link.delay,
        jitter: link.jitter,
        loss: link.loss,
    });
    Ok(scenario)
}

/// Preflight for this scenario, then removes what dead runs left behind.
fn prepare(scenario: &Scenario) -> Result<Sys> {
    let needs = Needs {
        delayer: !Plan::new(scenario, "check").delayed_links().is_empty(),
    };
    let sys = Sys::new(preflight::check(needs)?);
    let removed = state::clean(&sys, false);
    if !removed.runs.is_empty() || !removed.namespaces.is_empty() {
        eprintln!(
            "removed what {} earlier run(s) left behind ({} namespaces, {} processes)",
            removed.runs.len().max(1),
            removed.namespaces.len(),
            removed.processes
        );
    }
    Ok(sys)
}

fn options(dirs: &DirArgs) -> Result<(LabOptions, PathBuf)> {
    let exe = std::env::current_exe().map_err(|e| LabError::io("finding this binary", e))?;
    let bin_dir = match &dirs.bin_dir {
        Some(dir) => dir.clone(),
        None => exe.parent().map(PathBuf::from).unwrap_or_default(),
    };
    Ok((
        LabOptions {
            lab_bin: exe,
            runs_dir: dirs.runs_dir.clone(),
            peers_dir: dirs
                .peers_dir
                .clone()
                .unwrap_or_else(crate::implementation::default_peers_dir),
            stop: stop_flag()?,
        },
        bin_dir,
    ))
}

/// A flag that SIGINT and SIGTERM set; a second signal ends the process at once (exit 130).
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone())
            .map_err(|e| LabError::io("installing signal handlers", e))?;
        signal_hook::flag::register(signal, flag.clone())
            .map_err(|e| LabError::io("installing signal handlers", e))?;
    }
    Ok(flag)
}
