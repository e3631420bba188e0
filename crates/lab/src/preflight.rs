//! Preflight: refuse at once, with a message that says what is missing and how to get it,
//! when the machine cannot host a lab.

use std::path::{Path, PathBuf};

use crate::error::{LabError, Result};

/// Paths of the system tools the lab drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// `ip` from iproute2.
    pub ip: PathBuf,
    /// `nft` from nftables.
    pub nft: PathBuf,
    /// `iptables` (for the NFQUEUE target, which nftables' own `queue` statement cannot replace
    /// on kernels built without `nft_queue`).
    pub iptables: PathBuf,
}

/// What the lab about to be built needs beyond namespaces and nftables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// Some link delays or drops packets, so the NFQUEUE delayer must run.
    pub delayer: bool,
}

/// What preflight found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Effective user id.
    pub euid: u32,
    /// `ip`, if found.
    pub ip: Option<PathBuf>,
    /// `nft`, if found.
    pub nft: Option<PathBuf>,
    /// `iptables`, if found.
    pub iptables: Option<PathBuf>,
    /// The kernel has network namespaces.
    pub netns: bool,
    /// The kernel has nfnetlink_queue (NFQUEUE).
    pub nfqueue: bool,
}

impl Facts {
    /// Looks at this machine.
    pub fn gather() -> Facts {
        Facts {
            // SAFETY: geteuid has no preconditions and cannot fail.
            euid: unsafe { libc::geteuid() },
            ip: find_tool("ip"),
            nft: find_tool("nft"),
            iptables: find_tool("iptables"),
            netns: Path::new("/proc/self/ns/net").exists(),
            nfqueue: Path::new("/proc/net/netfilter/nfnetlink_queue").exists(),
        }
    }

    /// The tools, or a message listing everything that is missing, one line each.
    pub fn diagnose(&self, needs: Needs) -> Result<Tools, String> {
        let mut problems = Vec::new();
        if self.euid != 0 {
            problems.push(
                "must run as root: namespaces, nftables and NFQUEUE need CAP_NET_ADMIN \
                 (run it with sudo)"
                    .to_owned(),
            );
        }
        for (tool, found, package) in [
            ("ip", &self.ip, "iproute2"),
            ("nft", &self.nft, "nftables"),
            ("iptables", &self.iptables, "iptables"),
        ] {
            if found.is_none() {
                problems.push(format!("missing {tool}: apt-get install {package}"));
            }
        }
        if !self.netns {
            problems.push(
                "kernel without network namespaces (CONFIG_NET_NS): the lab cannot run here"
                    .to_owned(),
            );
        }
        if needs.delayer && !self.nfqueue {
            problems.push(
                "kernel without NFQUEUE (nfnetlink_queue), needed for link delay and loss: \
                 `modprobe nfnetlink_queue`, or run with --delay 0ms --jitter 0ms --loss 0"
                    .to_owned(),
            );
        }
        match (&self.ip, &self.nft, &self.iptables) {
            (Some(ip), Some(nft), Some(iptables)) if problems.is_empty() => Ok(Tools {
                ip: ip.clone(),
                nft: nft.clone(),
                iptables: iptables.clone(),
            }),
            _ => Err(problems.join("\n")),
        }
    }
}

/// Checks this machine and returns the tools' paths.
pub fn check(needs: Needs) -> Result<Tools> {
    Facts::gather().diagnose(needs).map_err(LabError::Preflight)
}

/// Finds a program in `PATH` and the sbin directories (which a non-root `PATH` often lacks).
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_there() -> Facts {
        Facts {
            euid: 0,
            ip: Some("/usr/sbin/ip".into()),
            nft: Some("/usr/sbin/nft".into()),
            iptables: Some("/usr/sbin/iptables".into()),
            netns: true,
            nfqueue: true,
        }
    }

    #[test]
    fn a_complete_machine_passes() {
        let tools = all_there().diagnose(Needs { delayer: true }).unwrap();
        assert_eq!(tools.nft, PathBuf::from("/usr/sbin/nft"));
    }

    #[test]
    fn every_problem_is_named_with_its_remedy() {
        let facts = Facts {
            euid: 1000,
            nft: None,
            iptables: None,
            nfqueue: false,
            ..all_there()
        };
        let message = facts.diagnose(Needs { delayer: true }).unwrap_err();
        let lines: Vec<_> = message.lines().collect();
        assert!(lines[0].starts_with("must run as root"));
        assert!(lines.contains(&"missing nft: apt-get install nftables"));
        assert!(lines.contains(&"missing iptables: apt-get install iptables"));
        assert!(lines[3].contains("--delay 0ms"));
        let without_delay = facts.diagnose(Needs { delayer: false }).unwrap_err();
        assert!(!without_delay.contains("nfnetlink_queue"));
        let no_ip = Facts {
            ip: None,
            ..all_there()
        };
        assert_eq!(
            no_ip.diagnose(Needs::default()).unwrap_err(),
            "missing ip: apt-get install iproute2"
        );
    }
}
