//! A built lab: the namespaces of a [`Plan`], the delayers on its links, the processes started in
//! it, and the state file that lists them. Dropping a [`Lab`] tears everything down, also when
//! building failed half-way or the owner panicked.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::guard;
use crate::netns::{describe, Sys};
use crate::process::{self, Ended, Process, Spec};
use crate::scenario::{Ready, Scenario};
use crate::state::{self, ProcessRecord, Removed, StateFile};
use crate::topology::{self, Plan};
use crate::wiring;
use punchr_types::log_target::LAB;

/// The NFQUEUE queue number the delayers use (queues are per namespace).
pub const DELAY_QUEUE: u16 = 0;

/// How to build a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The `punchr-lab` binary (runs the delayers and probes inside the namespaces).
    pub lab_bin: PathBuf,
    /// Parent directory of run directories; the run's is `<runs_dir>/<run id>`.
    pub runs_dir: PathBuf,
    /// Where `scripts/lab-peers` built the remote implementations other than rust.
    pub peers_dir: PathBuf,
    /// Set by a signal handler: building and waiting stop early with
    /// [`LabError::Interrupted`].
    pub stop: Arc<AtomicBool>,
}

impl LabOptions {
    /// Options with the given binary, runs under [`crate::rundir::DEFAULT_RUNS_DIR`], and no stop
    /// flag wired to signals.
    pub fn new(lab_bin: impl Into<PathBuf>) -> Self {
        LabOptions {
            lab_bin: lab_bin.into(),
            runs_dir: crate::rundir::DEFAULT_RUNS_DIR.into(),
            peers_dir: crate::implementation::default_peers_dir(),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A process started in the lab, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    /// Its name in the run.
    pub name: String,
    /// Its pid.
    pub pid: i32,
    /// Its log file.
    pub log: PathBuf,
}

/// A lab that exists. See the module documentation.
#[derive(Debug)]
pub struct Lab {
    sys: Sys,
    plan: Plan,
    options: LabOptions,
    run_dir: PathBuf,
    log_dir: PathBuf,
    state: Mutex<StateFile>,
    processes: Mutex<Vec<Process>>,
    torn_down: bool,
    /// Seed of every link's loss and jitter: the scenario's, or drawn for this run.
    seed: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Lab {
    /// Builds the lab a scenario describes: namespaces, wiring, NAT rules and delayers.
    pub fn build(sys: Sys, scenario: &Scenario, options: LabOptions) -> Result<Lab> {
        let started = Instant::now();
        // The run directory is named after the run id, which the state file picks.
        let state = StateFile::create(options.runs_dir.clone())?;
        let id = state.state.id.clone();
        let run_dir = options.runs_dir.join(&id);
        let log_dir = run_dir.join("logs");
        let plan = Plan::new(scenario, &id);
        let lab = Lab {
            sys,
            plan,
            options,
            run_dir: run_dir.clone(),
            log_dir: log_dir.clone(),
            state: Mutex::new(state),
            processes: Mutex::new(Vec::new()),
            torn_down: false,
            seed: scenario.campaign.seed.unwrap_or_else(rand::random),
        };
        guard::check_no_foreign_routes(&lab.sys)?;
        crate::rundir::ensure_trusted(&lab.options.runs_dir)?;
        crate::rundir::create_fresh(&run_dir)?;
        {
            // Written down before the guard exists, so a kill between the two still cleans it.
            let mut state = lock(&lab.state);
            state.state.run_dir = run_dir.clone();
            state.state.guarded = true;
            state.save()?;
        }
        guard::install(&lab.sys, &id)?;
        crate::rundir::create_fresh(&log_dir)?;
        std::fs::write(run_dir.join("plan.txt"), lab.plan.describe())
            .map_err(|e| LabError::io(format!("writing {}", run_dir.display()), e))?;
        let routers: Vec<String> = lab
            .plan
            .routers
            .iter()
            .flat_map(|r| r.stages.iter().map(|s| s.ns.clone()))
            .collect();
        for ns in lab.plan.namespaces() {
            lab.check_stop()?;
            {
                let mut state = lock(&lab.state);
                state.state.namespaces.push(ns.clone());
                state.save()?;
            }
            let router = routers.contains(&ns);
            wiring::create_namespace(&lab.sys, &ns, router)?;
            if router {
                wiring::set_udp_timeout(&ns, scenario.nat.udp_timeout)?;
            }
        }
        lab.check_stop()?;
        wiring::wire(&lab.sys, &lab.plan)?;
        for link in lab.plan.delayed_links() {
            lab.check_stop()?;
            lab.start_delayer(&link)?;
        }
        tracing::info!(
            target: LAB,
            event = "lab_built",
            run = %id,
            namespaces = lab.plan.namespaces().len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "lab built"
        );
        Ok(lab)
    }

    fn check_stop(&self) -> Result<()> {
        if self.options.stop.load(Ordering::Relaxed) {
            Err(LabError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// The seed of loss and jitter for links (and so this run's losses and jitters).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// One link's seed: the run's, mixed with the link's name (FNV-1a) so that links differ.
    fn link_seed(&self, link: &str) -> u64 {
        link.bytes()
            .fold(self.seed ^ 0xcbf2_9ce4_8422_2325, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            })
    }

    fn start_delayer(&self, link: &topology::DelayedLink) -> Result<()> {
        let micros = |d: Duration| format!("{}us", d.as_micros());
        let argv = vec![
            self.options.lab_bin.display().to_string(),
            "delay".into(),
            "--queue".into(),
            DELAY_QUEUE.to_string(),
            "--delay".into(),
            micros(link.link.delay),
            "--jitter".into(),
            micros(link.link.jitter),
            "--loss".into(),
            link.link.loss.to_string(),
            "--seed".into(),
            self.link_seed(&link.name).to_string(),
        ];
        let handle = self.spawn(Spec {
            name: link.name.clone(),
            ns: link.ns.clone(),
            argv,
            env: vec![("RUST_LOG".into(), "info".into())],
        })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !process::has_queue(handle.pid, DELAY_QUEUE) {
            self.check_stop()?;
            if self.exited(&link.name) || Instant::now() > deadline {
                return Err(LabError::NotReady {
                    what: link.name.clone(),
                    seconds: 10,
                    log: handle.log,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for rule in &link.rules {
            let args = rule.args(DELAY_QUEUE);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            self.sys.iptables_in(&link.ns, &args)?;
        }
        Ok(())
    }

    /// The plan: names and addresses.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The run id.
    pub fn id(&self) -> &str {
        &self.plan.id
    }

    /// The run directory (plan, logs).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The log directory.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The system tool runner.
    pub fn sys(&self) -> &Sys {
        &self.sys
    }

    /// The options the lab was built with.
    pub fn options(&self) -> &LabOptions {
        &self.options
    }

    /// The namespace of a peer, or of a router (its innermost stage).
    pub fn ns(&self, name: &str) -> Result<&str> {
        if let Some(peer) = self.plan.peer(name) {
            return Ok(&peer.ns);
        }
        if let Some(router) = self.plan.router(name) {
            return Ok(&router.home().ns);
        }
        Err(LabError::InvalidScenario(format!(
            "no peer or router named {name:?}"
        )))
    }

    /// Starts a long-running process; it is stopped at teardown at the latest.
    pub fn spawn(&self, mut spec: Spec) -> Result<Handle> {
        let mut processes = lock(&self.processes);
        let mut name = spec.name.clone();
        let mut n = 1;
        while processes.iter().any(|p| p.name == name) {
            n += 1;
            name = format!("{}-{n}", spec.name);
        }
        spec.name = name;
        let process = Process::start(&self.sys.tools().ip, &spec, &self.log_dir)?;
        let handle = Handle {
            name: process.name.clone(),
            pid: process.id.pid,
            log: process.log.clone(),
        };
        {
            let mut state = lock(&self.state);
            state.state.processes.push(ProcessRecord {
                id: process.id,
                name: process.name.clone(),
                ns: process.ns.clone(),
            });
            state.save()?;
        }
        tracing::debug!(target: LAB, event = "process_started", name = %handle.name, pid = handle.pid, command = %process.command, "started");
        processes.push(process);
        Ok(handle)
    }

    /// Starts `punchr-lab ARGS` in the namespace of peer or router `name`.
    pub fn spawn_lab(&self, name: &str, process_name: &str, args: &[&str]) -> Result<Handle> {
        let argv = std::iter::once(self.options.lab_bin.display().to_string())
            .chain(args.iter().map(|a| a.to_string()))
            .collect();
        self.spawn(Spec {
            name: process_name.to_owned(),
            ns: self.ns(name)?.to_owned(),
            argv,
            env: Vec::new(),
        })
    }

    /// Whether the named process has exited.
    pub fn exited(&self, process_name: &str) -> bool {
        lock(&self.processes)
            .iter_mut()
            .find(|p| p.name == process_name)
            .is_none_or(|p| p.exited().is_some())
    }

    /// Waits until a started process is ready (see [`Ready`]).
    pub fn wait_ready(&self, process_name: &str, ready: &Ready, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut processes = lock(&self.processes);
                let p = processes
                    .iter_mut()
                    .find(|p| p.name == process_name)
                    .ok_or_else(|| {
                        LabError::InvalidScenario(format!("no process {process_name}"))
                    })?;
                let left = deadline.saturating_duration_since(Instant::now());
                // Poll in short slices so that other threads can use the runner meanwhile.
                match p.wait_ready(
                    ready,
                    left.min(Duration::from_millis(50)),
                    &self.options.stop,
                ) {
                    Ok(()) => return Ok(()),
                    Err(LabError::NotReady { .. }) if Instant::now() < deadline => {}
                    Err(LabError::NotReady { what, log, .. }) => {
                        return Err(LabError::NotReady {
                            what,
                            seconds: timeout.as_secs(),
                            log,
                        })
                    }
                    Err(e) => return Err(e),
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs `punchr-lab ARGS` to completion inside the namespace of peer or router `name` and
    /// returns its stdout. It is killed after `timeout`.
    pub fn exec(&self, name: &str, args: &[&str], timeout: Duration) -> Result<String> {
        let mut command = Command::new(&self.sys.tools().ip);
        command
            .args(["netns", "exec", self.ns(name)?])
            .arg(&self.options.lab_bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let line = describe(&command);
        let child = command.spawn().map_err(|source| LabError::Spawn {
            command: line.clone(),
            source,
        })?;
        let pid = child.id() as i32;
        let done = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let done = done.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + timeout;
                while !done.load(Ordering::Relaxed) {
                    if Instant::now() > deadline {
                        state::signal_group(pid, libc::SIGKILL);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let output = child.wait_with_output();
        done.store(true, Ordering::Relaxed);
        let _ = watchdog.join();
        let output = output.map_err(|e| LabError::io(format!("waiting for `{line}`"), e))?;
        if !output.status.success() {
            return Err(LabError::Command {
                command: line,
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `punchr-lab probe ARGS` in the namespace of `name` and parses the JSON it prints.
    pub fn probe(&self, name: &str, args: &[&str]) -> Result<serde_json::Value> {
        let args: Vec<&str> = std::iter::once("probe")
            .chain(args.iter().copied())
            .collect();
        let out = self.exec(name, &args, Duration::from_secs(30))?;
        let last = out.lines().last().unwrap_or_default();
        serde_json::from_str(last).map_err(|e| {
            LabError::io(
                format!("probe {args:?} printed {out:?}"),
                std::io::Error::other(e),
            )
        })
    }

    /// Stops every process the lab started (newest first) and says how each ended.
    pub fn stop_processes(&self) -> Vec<Ended> {
        process::stop_all(&mut lock(&self.processes), Duration::from_secs(3))
    }

    /// Removes everything: processes, namespaces, the state file. Logs stay in the run directory.
    pub fn tear_down(mut self) -> Removed {
        self.tear_down_inner()
    }

    fn tear_down_inner(&mut self) -> Removed {
        self.torn_down = true;
        let ended = self.stop_processes();
        let state = lock(&self.state);
        let mut removed = Removed {
            processes: ended.iter().filter(|e| e.exit.is_none()).count(),
            ..Removed::default()
        };
        // Processes were stopped above; the state's list also catches any we lost track of.
        state::tear_down(&self.sys, &state.state, &mut removed);
        if removed.errors.is_empty() {
            if let Err(e) = state.remove() {
                removed.errors.push(e.to_string());
            }
        } else {
            tracing::warn!(target: LAB, event = "teardown_incomplete", errors = ?removed.errors, "teardown incomplete; `punchr-lab clean` retries");
        }
        tracing::info!(target: LAB, event = "lab_removed", run = %self.plan.id, namespaces = removed.namespaces.len(), "lab removed");
        removed
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.torn_down {
            self.tear_down_inner();
        }
    }
}
