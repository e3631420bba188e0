//! The process runner: starts commands inside namespaces (`ip netns exec`), sends their output
//! to one log file each, waits until they are ready, and stops them all at the end.
//!
//! Every process gets its own process group, so that a Ctrl-C in the terminal reaches only the
//! lab (which then stops its processes in order) and so that stopping a process also stops what
//! it started.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::netns::describe;
use crate::scenario::Ready;
use crate::state::{signal_group, ProcessId};

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Name in the run (log file `<name>.log`).
    pub name: String,
    /// Namespace to run in.
    pub ns: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

/// A started process.
#[derive(Debug)]
pub struct Process {
    /// Name in the run.
    pub name: String,
    /// Its namespace.
    pub ns: String,
    /// The command line.
    pub command: String,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    /// Its identity.
    pub id: ProcessId,
    child: Child,
    exit: Option<ExitStatus>,
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// Name in the run.
    pub name: String,
    /// Its log.
    pub log: PathBuf,
    /// `None` when it was still running and had to be stopped by the lab.
    pub exit: Option<String>,
}

impl Process {
    /// Starts `spec` with `ip netns exec`, logging to `log_dir/<name>.log`.
    pub fn start(ip: &Path, spec: &Spec, log_dir: &Path) -> Result<Process> {
        let log = log_dir.join(format!("{}.log", spec.name));
        let file = File::create(&log)
            .map_err(|e| LabError::io(format!("creating {}", log.display()), e))?;
        let err = file
            .try_clone()
            .map_err(|e| LabError::io(format!("opening {}", log.display()), e))?;
        let mut command = Command::new(ip);
        command
            .args(["netns", "exec", &spec.ns])
            .args(&spec.argv)
            // Output goes to a file: ask for plain text (tracing-subscriber honours NO_COLOR);
            // the scenario's own environment comes after and may say otherwise.
            .env("NO_COLOR", "1")
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .process_group(0);
        let line = describe(&command);
        let child = command.spawn().map_err(|source| LabError::Spawn {
            command: line.clone(),
            source,
        })?;
        let pid = child.id() as i32;
        // The start time is what tells this process apart from a later one with the same pid.
        let id = ProcessId::of(pid).unwrap_or(ProcessId { pid, start: 0 });
        Ok(Process {
            name: spec.name.clone(),
            ns: spec.ns.clone(),
            command: line,
            log,
            id,
            child,
            exit: None,
        })
    }

    /// Whether it has exited (reaping it if so).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits until `ready` holds, the process exits (an error), `timeout` passes (an error) or
    /// `stop` is set ([`LabError::Interrupted`]).
    pub fn wait_ready(
        &mut self,
        ready: &Ready,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if is_ready(self.id.pid, ready, &self.log) {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(LabError::Command {
                    command: self.command.clone(),
                    status: status.to_string(),
                    stderr: format!(
                        "exited before it was ready; last lines of {}:\n{}",
                        self.log.display(),
                        tail(&self.log, 10)
                    ),
                });
            }
            if stop.load(Ordering::Relaxed) {
                return Err(LabError::Interrupted);
            }
            if Instant::now() > deadline {
                return Err(LabError::NotReady {
                    what: self.name.clone(),
                    seconds: timeout.as_secs(),
                    log: self.log.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Asks the process group to stop (SIGTERM).
    pub fn terminate(&mut self) {
        if self.exited().is_none() {
            signal_group(self.id.pid, libc::SIGTERM);
        }
    }

    /// Kills the process group (SIGKILL) and reaps the process.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            signal_group(self.id.pid, libc::SIGKILL);
            self.exit = self.child.wait().ok();
        }
    }
}

/// Stops processes, newest first: SIGTERM to all, up to `grace` to exit, then SIGKILL.
/// Reports how each ended.
pub fn stop_all(processes: &mut [Process], grace: Duration) -> Vec<Ended> {
    let was_running: Vec<bool> = processes.iter_mut().map(|p| p.exited().is_none()).collect();
    for p in processes.iter_mut().rev() {
        p.terminate();
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && processes.iter_mut().any(|p| p.exited().is_none()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in processes.iter_mut() {
        p.kill();
    }
    processes
        .iter()
        .zip(was_running)
        .map(|(p, running)| Ended {
            name: p.name.clone(),
            log: p.log.clone(),
            exit: if running {
                None
            } else {
                p.exit.map(|s| s.to_string())
            },
        })
        .collect()
}

/// Whether the process `pid` satisfies `ready`. Sockets are read from `/proc/<pid>/net/*`,
/// which shows the sockets of the process's own network namespace.
pub fn is_ready(pid: i32, ready: &Ready, log: &Path) -> bool {
    match ready {
        Ready::Tcp(port) => has_socket(pid, &["tcp", "tcp6"], *port, Some("0A")),
        Ready::Udp(port) => has_socket(pid, &["udp", "udp6"], *port, None),
        Ready::Log(text) => std::fs::read_to_string(log).is_ok_and(|l| l.contains(text.as_str())),
    }
}

/// Whether the namespace of process `pid` has a socket on local `port` (in `state`, hex as in
/// `/proc/net/tcp`, e.g. `0A` for LISTEN).
fn has_socket(pid: i32, tables: &[&str], port: u16, state: Option<&str>) -> bool {
    let want = format!(":{port:04X}");
    tables.iter().any(|table| {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            return false;
        };
        text.lines().skip(1).any(|line| {
            let fields: Vec<_> = line.split_whitespace().collect();
            fields.get(1).is_some_and(|local| local.ends_with(&want))
                && state.is_none_or(|s| fields.get(3) == Some(&s))
        })
    })
}

/// Whether an NFQUEUE queue with this number is bound in the namespace of process `pid`.
pub fn has_queue(pid: i32, queue: u16) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/net/netfilter/nfnetlink_queue")).is_ok_and(
        |text| {
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(&queue.to_string()))
        },
    )
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<_> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
