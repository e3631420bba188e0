//! Thin wrappers around `ip`, `nft` and `iptables`, and entering a namespace from a thread.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{LabError, Result};
use crate::preflight::Tools;

/// Where iproute2 keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Runs the system tools the lab needs.
#[derive(Debug, Clone)]
pub struct Sys {
    tools: Tools,
}

impl Sys {
    /// A runner over the tools preflight found.
    pub fn new(tools: Tools) -> Self {
        Sys { tools }
    }

    /// The tools' paths.
    pub fn tools(&self) -> &Tools {
        &self.tools
    }

    /// `ip ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run(Command::new(&self.tools.ip).args(args), None)
    }

    /// `ip -n NS ARGS`: an `ip` command acting inside a namespace.
    pub fn ip_in(&self, ns: &str, args: &[&str]) -> Result<String> {
        run(
            Command::new(&self.tools.ip).args(["-n", ns]).args(args),
            None,
        )
    }

    /// `ip netns exec NS PROGRAM ARGS`, with `stdin` fed to it, returning its stdout.
    pub fn exec_in(
        &self,
        ns: &str,
        program: &Path,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String> {
        run(
            Command::new(&self.tools.ip)
                .args(["netns", "exec", ns])
                .arg(program)
                .args(args),
            stdin,
        )
    }

    /// Loads an nftables ruleset into a namespace.
    pub fn nft_load(&self, ns: &str, ruleset: &str) -> Result<()> {
        self.exec_in(ns, &self.tools.nft, &["-f", "-"], Some(ruleset))
            .map(drop)
    }

    /// The namespace's whole nftables ruleset, as text.
    pub fn nft_list(&self, ns: &str) -> Result<String> {
        self.exec_in(ns, &self.tools.nft, &["list", "ruleset"], None)
    }

    /// Loads an nftables ruleset into the machine's own namespace (the lab's WAN guard only).
    pub fn nft_host(&self, ruleset: &str) -> Result<()> {
        run(
            Command::new(&self.tools.nft).args(["-f", "-"]),
            Some(ruleset),
        )
        .map(drop)
    }

    /// `nft ARGS` in the machine's own namespace (the lab's WAN guard only).
    pub fn nft_host_args(&self, args: &[&str]) -> Result<String> {
        run(Command::new(&self.tools.nft).args(args), None)
    }

    /// `iptables ARGS` inside a namespace.
    pub fn iptables_in(&self, ns: &str, args: &[&str]) -> Result<String> {
        self.exec_in(ns, &self.tools.iptables, args, None)
    }

    /// Creates a named namespace.
    pub fn add_netns(&self, name: &str) -> Result<()> {
        self.ip(&["netns", "add", name]).map(drop)
    }

    /// Deletes a named namespace (its interfaces go with it; processes inside survive, so kill
    /// them first with [`Sys::netns_pids`]).
    pub fn del_netns(&self, name: &str) -> Result<()> {
        self.ip(&["netns", "del", name]).map(drop)
    }

    /// Processes whose network namespace is `name`.
    pub fn netns_pids(&self, name: &str) -> Result<Vec<i32>> {
        Ok(self
            .ip(&["netns", "pids", name])?
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }
}

/// Named namespaces that exist now.
pub fn list_netns() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Whether a named namespace exists.
pub fn netns_exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

/// Runs `f` in a new thread that has entered the named network namespace (the calling thread
/// and the rest of the process stay where they are). Sockets created inside stay in it.
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    let path = Path::new(NETNS_DIR).join(name);
    let file = std::fs::File::open(&path)
        .map_err(|e| LabError::io(format!("opening {}", path.display()), e))?;
    let context = format!("in namespace {name}");
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: `file` is an open namespace file; setns only affects this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        f()
    })
    .join()
    .map_err(|_| LabError::io(context.clone(), std::io::Error::other("thread panicked")))?
    .map_err(|e| LabError::io(context, e))
}

/// Writes `/proc/sys/<key>` (dots as in `sysctl`) inside a namespace.
pub fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let value = value.to_owned();
    in_netns(ns, move || std::fs::write(&path, value))
}

fn run(command: &mut Command, stdin: Option<&str>) -> Result<String> {
    let line = describe(command);
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| LabError::Spawn {
        command: line.clone(),
        source,
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| LabError::io(format!("feeding `{line}`"), e))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| LabError::io(format!("waiting for `{line}`"), e))?;
    if !output.status.success() {
        return Err(LabError::Command {
            command: line,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A command as a readable line.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}
