//! The campaign runner: builds a scenario's lab, starts its peers in role order (relay,
//! bootstrap, honeypot, server, remote peers, then — after the settle time — clients), lets the
//! campaign run, collects results through [`Hooks`], stops everything and tears the lab down.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::lab::{Lab, LabOptions};
use crate::nat::NatType;
use crate::netns::Sys;
use crate::postgres;
use crate::process::{Ended, Spec};
use crate::scenario::{Role, Scenario};
use crate::template::{self, Context, Own};
use crate::theory::{self, Transport};
use punchr_types::log_target::LAB;

/// The order in which roles are started.
pub const START_ORDER: [Role; 7] = [
    Role::Database,
    Role::Relay,
    Role::Bootstrap,
    Role::Honeypot,
    Role::Server,
    Role::Remote,
    Role::Client,
];

/// Everything a campaign needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The scenario (with the command line's overrides applied).
    pub scenario: Scenario,
    /// How to build the lab.
    pub lab: LabOptions,
    /// Directory of the Punchr binaries (`{bin_dir}`).
    pub bin_dir: PathBuf,
    /// How long a peer may take to become ready.
    pub ready_timeout: Duration,
    /// The campaign database (`{db}`) if not the run directory's SQLite file.
    pub db: Option<String>,
}

/// Where the Punchr-specific parts of a campaign plug in. Every method has a default that does
/// nothing, so a campaign of plain commands needs no hooks.
pub trait Hooks {
    /// Called when every peer has been started and is ready, before the campaign time runs.
    fn started(&mut self, _lab: &Lab, _context: &Context) -> Result<()> {
        Ok(())
    }

    /// Asked every few seconds while the campaign runs: true ends it before its duration.
    fn done(&mut self, _lab: &Lab) -> Result<bool> {
        Ok(false)
    }

    /// Called when the campaign time is over, before any process is stopped: read results
    /// (databases, logs, metrics) and return report lines.
    fn collect(&mut self, _lab: &Lab, _context: &Context) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// Hooks that do nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Hooks for NoHooks {}

/// What a campaign did.
#[derive(Debug, Clone)]
pub struct CampaignRun {
    /// The scenario's name.
    pub scenario: String,
    /// The run id.
    pub run_id: String,
    /// Where plan and logs are.
    pub run_dir: PathBuf,
    /// The scenario file that repeats the run (`scenario.toml` in the run directory).
    pub scenario_file: PathBuf,
    /// The seed of the links' loss and jitter.
    pub seed: u64,
    /// The addressing plan, as text.
    pub plan: String,
    /// How each process ended (`exit: None`: it ran until the lab stopped it).
    pub processes: Vec<Ended>,
    /// Lines from [`Hooks::collect`].
    pub results: Vec<String>,
    /// Client/remote NAT type pairs in the scenario with their predictions.
    pub predictions: Vec<Predicted>,
    /// Namespaces removed at the end.
    pub namespaces_removed: usize,
    /// How long the whole run took.
    pub elapsed: Duration,
}

impl fmt::Display for CampaignRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario {} — run {} ({:.1} s)",
            self.scenario,
            self.run_id,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "run directory: {}", self.run_dir.display())?;
        writeln!(
            f,
            "repeat with: punchr-lab run --scenario {} (seed {})",
            self.scenario_file.display(),
            self.seed
        )?;
        write!(f, "{}", self.plan)?;
        // A collected report puts the predictions next to the measurements; without one, the
        // predictions alone say what the campaign was for.
        if self.results.is_empty() && !self.predictions.is_empty() {
            writeln!(f, "\nwhat NAT theory predicts (client NAT ↔ remote NAT):")?;
            for Predicted { pair, theory } in &self.predictions {
                let prediction = theory.prediction.map_or("–".to_owned(), |p| p.to_string());
                writeln!(
                    f,
                    "  {:<16} ↔ {:<16} {:<8} {:<4} {:<8} {}",
                    pair.client.as_str(),
                    pair.remote.as_str(),
                    pair.remote_impl.name(),
                    pair.transport.as_str(),
                    prediction,
                    theory.rule
                )?;
            }
        }
        if !self.results.is_empty() {
            writeln!(f, "\nresults:")?;
            for line in &self.results {
                writeln!(f, "  {line}")?;
            }
        }
        writeln!(f, "\nprocesses:")?;
        for p in &self.processes {
            let how = p.exit.as_deref().map_or("ran to the end".to_owned(), |e| {
                format!("exited early: {e}")
            });
            writeln!(f, "  {:<24} {:<28} {}", p.name, how, p.log.display())?;
        }
        writeln!(f, "removed {} namespaces", self.namespaces_removed)
    }
}

/// Sleeps for `duration` unless the stop flag is set first.
pub fn sleep_unless_stopped(lab: &Lab, duration: Duration) -> Result<()> {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        if lab.options().stop.load(Ordering::Relaxed) {
            return Err(LabError::Interrupted);
        }
        std::thread::sleep((deadline - Instant::now()).min(Duration::from_millis(100)));
    }
    Ok(())
}

/// The template context of a built lab; writes every peer's key file (`<run>/keys/<name>.key`).
pub fn template_context(lab: &Lab, bin_dir: PathBuf) -> Result<Context> {
    let plan = lab.plan();
    let keys = lab.run_dir().join("keys");
    std::fs::create_dir_all(&keys)
        .map_err(|e| LabError::io(format!("creating {}", keys.display()), e))?;
    let mut key_files = BTreeMap::new();
    for peer in &plan.peers {
        let keypair = punchr_keyfile::from_seed(template::seed(&peer.name).as_bytes(), 0);
        let line = punchr_keyfile::encode(&keypair)
            .map_err(|e| LabError::io("encoding a key", std::io::Error::other(e)))?;
        let path = keys.join(format!("{}.key", peer.name));
        write_private(&path, &format!("{line}\n"))?;
        key_files.insert(peer.name.clone(), path);
    }
    Ok(Context {
        bin_dir,
        run_dir: lab.run_dir().to_owned(),
        log_dir: lab.log_dir().to_owned(),
        peers: plan
            .peers
            .iter()
            .map(|p| (p.name.clone(), (p.role, p.ip)))
            .collect::<BTreeMap<_, _>>(),
        order: plan.peers.iter().map(|p| p.name.clone()).collect(),
        key_files,
        db: default_db(lab).display().to_string(),
        local_db: None,
        peers_dir: lab.options().peers_dir.clone(),
    })
}

/// Where a campaign's database is unless `run --db` names another: a SQLite file in the run
/// directory, kept with the logs after the run.
pub fn default_db(lab: &Lab) -> PathBuf {
    lab.run_dir().join("punchr.sqlite")
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}

/// Starts every peer with a command and the given role, then waits until each is ready.
pub fn start_role(lab: &Lab, context: &Context, role: Role, timeout: Duration) -> Result<usize> {
    let mut started = Vec::new();
    for (index, peer) in lab.plan().peers.iter().enumerate() {
        let Some(command) = peer.command.as_deref().filter(|_| peer.role == role) else {
            continue;
        };
        let own = Own {
            name: &peer.name,
            role: peer.role,
            index: index + 1,
            ip: peer.ip,
            public_ip: peer.public_ip,
            nat: peer.nat.as_str(),
            implementation: peer.implementation,
        };
        let fail = |message| LabError::Template {
            peer: peer.name.clone(),
            message,
        };
        let argv = template::expand_command(command, &own, context).map_err(fail)?;
        let env = peer
            .env
            .iter()
            .map(|(k, v)| Ok((k.clone(), template::expand(v, &own, context).map_err(fail)?)))
            .collect::<Result<Vec<_>>>()?;
        let handle = lab.spawn(Spec {
            name: peer.name.clone(),
            ns: peer.ns.clone(),
            argv,
            env,
        })?;
        started.push((handle, peer.ready.clone()));
    }
    for (handle, ready) in &started {
        if let Some(ready) = ready {
            lab.wait_ready(&handle.name, ready, timeout)?;
        }
    }
    Ok(started.len())
}

/// A pair a campaign measures and what theory says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicted {
    /// The pair.
    pub pair: theory::Pair,
    /// The theory's answer.
    pub theory: theory::Theory,
}

/// The pairs a campaign measures: every client NAT against every remote's NAT and
/// implementation, over both transports.
pub fn predictions(lab: &Lab) -> Vec<Predicted> {
    let plan = lab.plan();
    let mut clients: Vec<NatType> = plan
        .peers
        .iter()
        .filter(|p| p.role == Role::Client)
        .map(|p| p.nat)
        .collect();
    clients.sort();
    clients.dedup();
    let mut remotes: Vec<_> = plan
        .peers
        .iter()
        .filter(|p| p.role == Role::Remote)
        .map(|p| (p.nat, p.implementation))
        .collect();
    remotes.sort();
    remotes.dedup();
    let strategy = client_role_strategy(plan);
    let mut out = Vec::new();
    for &client in &clients {
        for &(remote, remote_impl) in &remotes {
            for transport in [Transport::Tcp, Transport::Quic] {
                let pair = theory::Pair {
                    client,
                    remote,
                    transport,
                    remote_impl,
                    strategy,
                };
                out.push(Predicted {
                    pair,
                    theory: theory::predict(pair),
                });
            }
        }
    }
    out
}

/// The role strategy the campaign's clients run with: `--role-strategy` (or a scenario's
/// `env`) sets PUNCHR_CLIENT_ROLE_STRATEGY for them, else the client's default. A campaign gives
/// all its clients one strategy; the first client's stands for all.
pub fn client_role_strategy(plan: &crate::topology::Plan) -> punchr_dcutr::RoleStrategy {
    plan.peers
        .iter()
        .filter(|p| p.role == Role::Client)
        .find_map(|p| {
            p.env
                .iter()
                .find(|(key, _)| key == "PUNCHR_CLIENT_ROLE_STRATEGY")
                .and_then(|(_, value)| value.parse().ok())
        })
        .unwrap_or_default()
}

/// Environment variables that carry the campaign's settings to the Punchr binaries: the
/// transports become the server's protocol filters, the host count the clients'. A peer's own
/// `env` in the scenario wins.
pub fn campaign_env(scenario: &Scenario) -> Scenario {
    let mut scenario = scenario.clone();
    let filters: Vec<&str> = scenario
        .campaign
        .transports
        .iter()
        .map(|t| t.server_filter())
        .collect();
    let hosts = scenario.campaign.hosts_per_client.to_string();
    for peer in &mut scenario.peers {
        let (key, value) = match peer.role {
            Role::Server => ("PUNCHR_SERVER_PROTOCOL_FILTERS", filters.join(",")),
            Role::Client => ("PUNCHR_CLIENT_HOST_COUNT", hosts.clone()),
            _ => continue,
        };
        peer.env.entry(key.to_owned()).or_insert(value);
    }
    scenario
}

/// Sleeps through the campaign: its duration, or less once [`Hooks::done`] says so.
fn run_campaign(lab: &Lab, duration: Duration, hooks: &mut dyn Hooks) -> Result<()> {
    let deadline = Instant::now() + duration;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        sleep_unless_stopped(lab, left.min(DONE_POLL))?;
        if hooks.done(lab)? {
            tracing::info!(target: LAB, event = "campaign_complete", "campaign complete");
            return Ok(());
        }
    }
}

/// How often [`Hooks::done`] is asked.
const DONE_POLL: Duration = Duration::from_secs(2);

/// The file in the run directory that repeats this campaign.
pub const SCENARIO_FILE: &str = "scenario.toml";

/// Writes the campaign's scenario (flags applied, the run's seed fixed) into the run directory,
/// with what else a repeat needs to know as comments.
fn write_scenario(lab: &Lab, scenario: &Scenario) -> Result<PathBuf> {
    let mut scenario = scenario.clone();
    scenario.campaign.seed = Some(lab.seed());
    let mut text = format!(
        "# Run {} of punchr-lab {}: the scenario with every flag applied and the links' seed\n\
         # fixed. Repeat it with: punchr-lab run --scenario <this file> (and the same --db).\n",
        lab.id(),
        env!("CARGO_PKG_VERSION")
    );
    for implementation in scenario.remote_implementations() {
        let _ = writeln!(
            text,
            "# remote {implementation}: {}",
            implementation.build_stamp(&lab.options().peers_dir)
        );
    }
    text.push_str(&scenario.to_toml());
    let path = lab.run_dir().join(SCENARIO_FILE);
    std::fs::write(&path, text)
        .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
    Ok(path)
}

/// Runs a whole campaign. The lab is torn down before this returns, also on error.
pub fn run(sys: Sys, config: &RunConfig, hooks: &mut dyn Hooks) -> Result<CampaignRun> {
    let started = Instant::now();
    let scenario = campaign_env(&config.scenario);
    let lab = Lab::build(sys, &scenario, config.lab.clone())?;
    let scenario_file = write_scenario(&lab, &config.scenario)?;
    let seed = lab.seed();
    eprintln!("{}", lab.plan().describe());
    let mut context = template_context(&lab, config.bin_dir.clone())?;
    if let Some(db) = &config.db {
        context.db = db.clone();
    }
    if let Some(urls) = postgres::urls(&lab) {
        context.db = urls.in_lab;
        context.local_db = Some(urls.from_host);
    }
    for role in START_ORDER {
        if role == Role::Client
            && lab
                .plan()
                .peers
                .iter()
                .any(|p| p.role == Role::Client && p.command.is_some())
        {
            tracing::info!(
                target: LAB,
                event = "settling",
                settle_s = config.scenario.campaign.settle.as_secs(),
                "letting the network settle before starting clients"
            );
            sleep_unless_stopped(&lab, config.scenario.campaign.settle)?;
        }
        let n = start_role(&lab, &context, role, config.ready_timeout)?;
        if n > 0 {
            tracing::info!(target: LAB, event = "peers_started", role = role.as_str(), started = n, "peers started");
        }
    }
    hooks.started(&lab, &context)?;
    tracing::info!(
        target: LAB,
        event = "campaign_running",
        duration_s = config.scenario.campaign.duration.as_secs(),
        "campaign running"
    );
    run_campaign(&lab, config.scenario.campaign.duration, hooks)?;
    let results = hooks.collect(&lab, &context)?;
    let processes = lab.stop_processes();
    let report_base = (
        lab.id().to_owned(),
        lab.run_dir().to_owned(),
        lab.plan().describe(),
        predictions(&lab),
    );
    let removed = lab.tear_down();
    Ok(CampaignRun {
        scenario: config.scenario.name.clone(),
        run_id: report_base.0,
        run_dir: report_base.1,
        scenario_file,
        seed,
        plan: report_base.2,
        processes,
        results,
        predictions: report_base.3,
        namespaces_removed: removed.namespaces.len(),
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{CI_SCENARIO, DEFAULT_SCENARIO};
    use crate::topology::Plan;

    #[test]
    fn every_shipped_command_template_expands() {
        for (name, text) in [("default", DEFAULT_SCENARIO), ("ci", CI_SCENARIO)] {
            let scenario = Scenario::parse(name, text).unwrap();
            let plan = Plan::new(&scenario, "test00");
            let context = Context {
                bin_dir: "/bin".into(),
                run_dir: "/run".into(),
                log_dir: "/run/logs".into(),
                peers: plan
                    .peers
                    .iter()
                    .map(|p| (p.name.clone(), (p.role, p.ip)))
                    .collect(),
                order: plan.peers.iter().map(|p| p.name.clone()).collect(),
                key_files: plan
                    .peers
                    .iter()
                    .map(|p| (p.name.clone(), PathBuf::from("/k")))
                    .collect(),
                db: "/run/punchr.sqlite".into(),
                local_db: None,
                peers_dir: "/peers".into(),
            };
            for (index, peer) in plan.peers.iter().enumerate() {
                let own = Own {
                    name: &peer.name,
                    role: peer.role,
                    index: index + 1,
                    ip: peer.ip,
                    public_ip: peer.public_ip,
                    nat: peer.nat.as_str(),
                    implementation: peer.implementation,
                };
                let command = peer
                    .command
                    .as_deref()
                    .expect("shipped peers have commands");
                let argv = template::expand_command(command, &own, &context)
                    .unwrap_or_else(|e| panic!("{name}: {}: {e}", peer.name));
                assert!(argv[0].starts_with("/bin/punchr-"), "{argv:?}");
                for (_, value) in &peer.env {
                    template::expand(value, &own, &context).unwrap();
                }
            }
        }
    }
}
