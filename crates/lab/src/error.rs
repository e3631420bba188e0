//! The lab's error type.

use std::path::PathBuf;

/// Everything that can go wrong while checking, building, running or removing a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The machine lacks something the lab needs (root, a tool, a kernel feature). The message
    /// says what and how to get it.
    #[error("{0}")]
    Preflight(String),
    /// The scenario file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    ReadScenario {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The scenario is not valid TOML or does not fit the schema.
    #[error("scenario {name}: {source}")]
    ParseScenario {
        /// The file or the name given to the text.
        name: String,
        /// The parser's message (with line and column).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The scenario parses but describes an impossible lab.
    #[error("invalid scenario: {0}")]
    InvalidScenario(String),
    /// A command template could not be expanded.
    #[error("command template of {peer}: {message}")]
    Template {
        /// The peer whose command it is.
        peer: String,
        /// What is wrong.
        message: String,
    },
    /// A system command (`ip`, `nft`, `iptables`, ...) failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A process could not be started.
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A process did not become ready in time.
    #[error("{what} did not become ready within {seconds} s; see {log}")]
    NotReady {
        /// Which process.
        what: String,
        /// How long we waited.
        seconds: u64,
        /// Its log file.
        log: PathBuf,
    },
    /// A directory the lab would write into as root could be controlled by someone else.
    #[error("refusing to use {path}: {why}; remove it or choose another --runs-dir")]
    UntrustedDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The run was interrupted by SIGINT or SIGTERM.
    #[error("interrupted")]
    Interrupted,
    /// Reading or writing the campaign database failed.
    #[error("campaign results: {0}")]
    Collect(String),
    /// The state directory or a state file could not be used.
    #[error("state file {path}: {message}")]
    State {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A libp2p peer program (relay, bootstrap, remote peer) failed.
    #[error("libp2p: {0}")]
    Peer(String),
    /// Some other input/output error, with what we were doing.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

impl LabError {
    /// An [`LabError::Io`] with a description of what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Short for `Result<T, LabError>`.
pub type Result<T, E = LabError> = std::result::Result<T, E>;
