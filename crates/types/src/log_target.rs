//! The `tracing` targets of Punchr's events, one per part: `punchr::<part>`. So
//! `RUST_LOG=punchr=debug` shows everything of ours and nothing of libp2p's, and
//! `RUST_LOG=punchr::honeypot=debug` one part.
//!
//! An event meant for tools, not only for people, names itself in an `event` field (snake case:
//! `connection_recorded`, `stream_opened`, `host_bootstrapped`) and carries its facts as
//! structured fields; its message, if any, is for people and may change (iroh's `DEVELOPMENT.md`
//! has the same rule). With `--log-format json` (`punchr-logging`) each event is one JSON object
//! with `target`, `event` and those fields at its top level.

/// `punchr-client` and its hosts.
pub const CLIENT: &str = "punchr::client";
/// `punchr-server`: the gRPC API, key checks, selection.
pub const SERVER: &str = "punchr::server";
/// The server's web dashboard.
pub const DASHBOARD: &str = "punchr::dashboard";
/// Reports (the `report` command and the dashboard's report).
pub const REPORT: &str = "punchr::report";
/// `punchr-honeypot`.
pub const HONEYPOT: &str = "punchr::honeypot";
/// The instrumented DCUtR's step events.
pub const DCUTR: &str = "punchr::dcutr";
/// `punchr-lab`: the lab, its campaigns and the peers it runs.
pub const LAB: &str = "punchr::lab";
/// The load generator of the soak.
pub const LOADGEN: &str = "punchr::loadgen";
