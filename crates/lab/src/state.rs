//! What a run created, written down before it is created, so that teardown, `punchr-lab clean`
//! and the next run can remove it even after the owner was killed.
//!
//! Each run has a short random id. Its namespaces are named `plab-<id>-<name>` and its state
//! file is `/run/punchr-lab/<id>.json` (tmpfs, so a reboot forgets it together with the
//! namespaces). The file is rewritten (atomically) before every namespace is created and after
//! every process is started. A run is *stale* when its owner process is gone; [`clean`] removes
//! stale runs and namespaces with the lab's prefix that no state file claims.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::guard;
use crate::netns::{self, Sys};

/// Where state files live.
pub const STATE_DIR: &str = "/run/punchr-lab";
/// Prefix of every namespace the lab creates.
pub const NETNS_PREFIX: &str = "plab-";

/// Identifies a process across pid reuse: its pid and its start time in clock ticks since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    /// The pid (also its process group id: the lab starts every process in its own group).
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat`.
    pub start: u64,
}

impl ProcessId {
    /// This process.
    pub fn current() -> Option<ProcessId> {
        ProcessId::of(std::process::id() as i32)
    }

    /// The process with this pid, if it runs (zombies count as gone).
    pub fn of(pid: i32) -> Option<ProcessId> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<_> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
            return None;
        }
        Some(ProcessId {
            pid,
            start: fields.get(19)?.parse().ok()?,
        })
    }

    /// Whether this very process still runs.
    pub fn alive(&self) -> bool {
        ProcessId::of(self.pid) == Some(*self)
    }
}

/// One process a run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// Which process.
    pub id: ProcessId,
    /// Its name in the run (for messages).
    pub name: String,
    /// The namespace it runs in.
    pub ns: String,
}

/// Everything one run created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// The run id.
    pub id: String,
    /// The process that owns the run.
    pub owner: ProcessId,
    /// Namespaces, in creation order (a namespace is listed before it is created).
    pub namespaces: Vec<String>,
    /// Processes, in start order.
    pub processes: Vec<ProcessRecord>,
    /// Where the run's logs are.
    pub run_dir: PathBuf,
    /// Whether the run's WAN guard ([`crate::guard`]) may exist (set before it is installed).
    #[serde(default)]
    pub guarded: bool,
}

/// A run's state, kept on disk as it changes.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    /// The state.
    pub state: RunState,
}

impl StateFile {
    /// Picks a fresh run id and writes an empty state file for it.
    pub fn create(run_dir: PathBuf) -> Result<StateFile> {
        let dir = Path::new(STATE_DIR);
        crate::rundir::ensure_trusted(dir)?;
        let owner = ProcessId::current().ok_or_else(|| LabError::State {
            path: dir.to_owned(),
            message: "cannot read /proc/self/stat".into(),
        })?;
        let existing: HashSet<String> = netns::list_netns().into_iter().collect();
        loop {
            let id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
            let path = dir.join(format!("{id}.json"));
            let prefix = format!("{NETNS_PREFIX}{id}-");
            if path.exists() || existing.iter().any(|n| n.starts_with(&prefix)) {
                continue;
            }
            let file = StateFile {
                path,
                state: RunState {
                    id,
                    owner,
                    namespaces: Vec::new(),
                    processes: Vec::new(),
                    run_dir,
                    guarded: false,
                },
            };
            file.save()?;
            return Ok(file);
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the state (to a temporary file renamed over the old one).
    pub fn save(&self) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&self.state).expect("state serializes");
        std::fs::write(&tmp, text).map_err(|e| state_error(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| state_error(&self.path, e))
    }

    /// Removes the file (after teardown).
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(state_error(&self.path, e)),
            _ => Ok(()),
        }
    }
}

fn state_error(path: &Path, e: std::io::Error) -> LabError {
    LabError::State {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// What [`clean`] or a teardown removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Runs whose state file was processed.
    pub runs: Vec<String>,
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
    /// Processes killed.
    pub processes: usize,
    /// Runs left alone because their owner still runs.
    pub live_runs: Vec<String>,
    /// Runs whose WAN guard (blackhole route and drop table) was removed.
    pub guards: Vec<String>,
    /// What could not be removed.
    pub errors: Vec<String>,
}

/// Stops processes: SIGTERM to each process group, up to `grace` to exit, then SIGKILL.
/// Returns how many were still running.
pub fn stop_processes(ids: &[ProcessId], grace: Duration) -> usize {
    let running: Vec<_> = ids.iter().filter(|id| id.alive()).copied().collect();
    for id in &running {
        signal_group(id.pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && running.iter().any(|id| id.alive()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for id in running.iter().filter(|id| id.alive()) {
        signal_group(id.pid, libc::SIGKILL);
    }
    running.len()
}

/// Sends `signal` to the process group `pid` (and to `pid` itself, should it have left it).
pub fn signal_group(pid: i32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions; errors (ESRCH) are fine to ignore.
    unsafe {
        libc::kill(-pid, signal);
        libc::kill(pid, signal);
    }
}

/// Kills whatever still runs inside a namespace, then deletes it.
pub fn remove_namespace(sys: &Sys, name: &str, removed: &mut Removed) {
    if !netns::netns_exists(name) {
        return;
    }
    for _ in 0..50 {
        match sys.netns_pids(name) {
            Ok(pids) if pids.is_empty() => break,
            Ok(pids) => {
                for pid in pids {
                    // SAFETY: as in signal_group.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    removed.processes += 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                removed.errors.push(e.to_string());
                break;
            }
        }
    }
    match sys.del_netns(name) {
        Ok(()) => removed.namespaces.push(name.to_owned()),
        Err(e) => removed.errors.push(e.to_string()),
    }
}

/// Removes what a run's state lists: its processes, then its namespaces (newest first), then its
/// WAN guard (last, so that nothing of the lab's internet exists without it).
pub fn tear_down(sys: &Sys, state: &RunState, removed: &mut Removed) {
    let ids: Vec<_> = state.processes.iter().map(|p| p.id).collect();
    removed.processes += stop_processes(&ids, Duration::from_secs(2));
    for ns in state.namespaces.iter().rev() {
        remove_namespace(sys, ns, removed);
    }
    let namespaces_left = state.namespaces.iter().any(|ns| netns::netns_exists(ns));
    if state.guarded && !namespaces_left {
        remove_guard(sys, &state.id, removed);
    }
    removed.runs.push(state.id.clone());
}

fn remove_guard(sys: &Sys, id: &str, removed: &mut Removed) {
    let errors = guard::remove(sys, id);
    if errors.is_empty() {
        removed.guards.push(id.to_owned());
    }
    removed.errors.extend(errors);
}

/// Removes what earlier runs left behind: every run whose owner is gone (with `all`, every run,
/// even live ones), and namespaces with the lab's prefix that no live run claims.
pub fn clean(sys: &Sys, all: bool) -> Removed {
    let mut removed = Removed::default();
    let mut live = HashSet::new();
    let mut files: Vec<_> = std::fs::read_dir(STATE_DIR)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for path in files {
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let parsed = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<RunState>(&text).ok());
        let Some(state) = parsed else {
            removed
                .errors
                .push(format!("{}: unreadable, removed", path.display()));
            let _ = std::fs::remove_file(&path);
            continue;
        };
        if !all && state.owner.alive() {
            live.insert(state.id.clone());
            removed.live_runs.push(state.id.clone());
            continue;
        }
        tear_down(sys, &state, &mut removed);
        let _ = std::fs::remove_file(&path);
    }
    for name in netns::list_netns() {
        let Some(rest) = name.strip_prefix(NETNS_PREFIX) else {
            continue;
        };
        let id = rest.split('-').next().unwrap_or_default();
        // A run writes its state file before it creates a namespace, so a namespace without a
        // state file (checked now, not at the listing above) belongs to no run.
        let claimed = Path::new(STATE_DIR).join(format!("{id}.json")).exists();
        if !live.contains(id) && !claimed {
            remove_namespace(sys, &name, &mut removed);
        }
    }
    // A guard outlives its state file only when a run was killed between the two removals.
    for id in guard::guarded_runs(sys) {
        let claimed = Path::new(STATE_DIR).join(format!("{id}.json")).exists();
        let has_namespaces = netns::list_netns()
            .iter()
            .any(|n| n.starts_with(&format!("{NETNS_PREFIX}{id}-")));
        if !live.contains(&id) && !claimed && !has_namespaces {
            remove_guard(sys, &id, &mut removed);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessId::current().unwrap();
        assert!(me.alive());
        let other = ProcessId {
            start: me.start + 1,
            ..me
        };
        assert!(!other.alive());
    }

    #[test]
    fn state_round_trips_through_json() {
        let state = RunState {
            id: "abc123".into(),
            owner: ProcessId { pid: 1, start: 2 },
            namespaces: vec!["plab-abc123-wan".into()],
            processes: vec![ProcessRecord {
                id: ProcessId { pid: 3, start: 4 },
                name: "delay-r1".into(),
                ns: "plab-abc123-r1".into(),
            }],
            run_dir: "/tmp/x".into(),
            guarded: true,
        };
        let text = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<RunState>(&text).unwrap(), state);
    }
}
