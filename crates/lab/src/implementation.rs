//! The libp2p implementations a remote peer can run: the field's population, each a program of
//! ours with the same flags as `punchr-lab remote-peer` (`--seed`, `--port`, `--relay`,
//! `--bootstrap`, `--lookup-interval`), so one command template serves them all.
//!
//! The IPFS network the honeypot finds is mostly kubo, i.e. go-libp2p, whose DCUtR roles changed
//! twice (see `punchr_dcutr::RoleStrategy`): so go-libp2p runs at one version of each role era,
//! beside a real kubo node, js-libp2p and stock rust-libp2p. Everything but `rust` is built
//! outside the clone by `scripts/lab-peers` (pinned by `go.sum` and `package-lock.json`, sources
//! in `crates/lab/impls/`) into `<peers dir>/<name>/remote`.
//!
//! In a scenario a remote's `impl = "go-v0.40"` picks one; its command names the program with
//! the whole word `{remote}` (see [`crate::template`]); `run --remote-impls` regenerates the
//! remotes once per implementation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{LabError, Result};

/// A remote peer's implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Implementation {
    /// Stock rust-libp2p 0.57 (`punchr-lab remote-peer`).
    #[default]
    Rust,
    /// go-libp2p v0.40.0: the roles before the fix for go-libp2p #3171.
    GoV040,
    /// go-libp2p v0.47.0: the `legacyBehavior` era (v0.41–v0.47).
    GoV047,
    /// go-libp2p v0.52.0: the spec's roles, switching on attempt 3 (v0.48 and later).
    GoV052,
    /// kubo v0.43.1, the IPFS node most of the field runs.
    Kubo,
    /// js-libp2p 3.3 on Node.js.
    Js,
}

impl Implementation {
    /// Every implementation, in the order reports list them.
    pub const ALL: [Implementation; 6] = [
        Implementation::Rust,
        Implementation::GoV040,
        Implementation::GoV047,
        Implementation::GoV052,
        Implementation::Kubo,
        Implementation::Js,
    ];

    /// The name used in flags, scenarios, reports and the peers directory.
    pub fn name(self) -> &'static str {
        match self {
            Implementation::Rust => "rust",
            Implementation::GoV040 => "go-v0.40",
            Implementation::GoV047 => "go-v0.47",
            Implementation::GoV052 => "go-v0.52",
            Implementation::Kubo => "kubo",
            Implementation::Js => "js",
        }
    }

    /// A short form for generated peer names (at most 4 characters).
    pub fn short(self) -> &'static str {
        match self {
            Implementation::Rust => "rs",
            Implementation::GoV040 => "go40",
            Implementation::GoV047 => "go47",
            Implementation::GoV052 => "go52",
            Implementation::Kubo => "kubo",
            Implementation::Js => "js",
        }
    }

    /// The program words `{remote}` stands for.
    pub fn program(self, bin_dir: &Path, peers_dir: &Path) -> Vec<String> {
        match self {
            Implementation::Rust => vec![
                bin_dir.join("punchr-lab").display().to_string(),
                "remote-peer".into(),
            ],
            other => vec![other.built_program(peers_dir).display().to_string()],
        }
    }

    fn built_program(self, peers_dir: &Path) -> PathBuf {
        peers_dir.join(self.name()).join("remote")
    }

    /// What the implementation is pinned to in this checkout.
    pub fn pinned(self) -> &'static str {
        match self {
            Implementation::Rust => "rust-libp2p 0.57 (punchr-lab remote-peer)",
            Implementation::GoV040 => "go-libp2p v0.40.0",
            Implementation::GoV047 => "go-libp2p v0.47.0",
            Implementation::GoV052 => "go-libp2p v0.52.0",
            Implementation::Kubo => "kubo v0.43.1",
            Implementation::Js => "js-libp2p 3.3",
        }
    }

    /// The pinned version and, for builds of `scripts/lab-peers`, the stamp of their inputs
    /// (sources, pins, toolchain), which names the exact build a run used.
    pub fn build_stamp(self, peers_dir: &Path) -> String {
        if self == Implementation::Rust {
            return self.pinned().to_owned();
        }
        let stamp_file = peers_dir.join(self.name()).join(".stamp");
        match std::fs::read_to_string(&stamp_file) {
            Ok(stamp) => format!(
                "{}, scripts/lab-peers build {}",
                self.pinned(),
                stamp.trim()
            ),
            Err(_) => format!(
                "{}, no build stamp in {}",
                self.pinned(),
                stamp_file.display()
            ),
        }
    }

    /// Refuses, saying how to build it, when the implementation's program is missing.
    pub fn check_built(self, peers_dir: &Path) -> Result<()> {
        if self == Implementation::Rust {
            return Ok(());
        }
        let program = self.built_program(peers_dir);
        let executable = std::fs::metadata(&program).is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        });
        if executable {
            return Ok(());
        }
        Err(LabError::Preflight(format!(
            "remote implementation {name} is not built (no executable {program}); build it with \
             `scripts/lab-peers {name}` (it writes to $PUNCHR_LAB_PEERS_DIR, default \
             ~/.cache/punchr-lab/peers; give the same directory to punchr-lab with --peers-dir)",
            name = self.name(),
            program = program.display()
        )))
    }
}

/// Where `scripts/lab-peers` puts its builds unless told otherwise:
/// `$PUNCHR_LAB_PEERS_DIR`, else `$XDG_CACHE_HOME/punchr-lab/peers`, else
/// `~/.cache/punchr-lab/peers`.
pub fn default_peers_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PUNCHR_LAB_PEERS_DIR").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    cache.join("punchr-lab").join("peers")
}

impl fmt::Display for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Implementation {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        let text = text.trim().to_ascii_lowercase();
        Implementation::ALL
            .into_iter()
            .find(|i| i.name() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = Implementation::ALL.iter().map(|i| i.name()).collect();
                format!(
                    "unknown remote implementation {text:?} (known: {})",
                    known.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_shorts_fit_in_peer_names() {
        for implementation in Implementation::ALL {
            assert_eq!(implementation.name().parse(), Ok(implementation));
            assert!(implementation.short().len() <= 4);
        }
        assert!("go-v0.41".parse::<Implementation>().is_err());
    }

    #[test]
    fn rust_runs_the_lab_binary_and_the_others_their_build() {
        let bin = Path::new("/bin-dir");
        let peers = Path::new("/peers");
        assert_eq!(
            Implementation::Rust.program(bin, peers),
            ["/bin-dir/punchr-lab", "remote-peer"]
        );
        assert_eq!(
            Implementation::GoV047.program(bin, peers),
            ["/peers/go-v0.47/remote"]
        );
    }

    #[test]
    fn a_missing_build_says_how_to_make_it() {
        let dir = tempfile::tempdir().unwrap();
        let error = Implementation::Kubo.check_built(dir.path()).unwrap_err();
        assert!(
            error.to_string().contains("scripts/lab-peers kubo"),
            "{error}"
        );
        assert!(Implementation::Rust.check_built(dir.path()).is_ok());
    }
}
