//! Punchr's shared vocabulary: the small types and rules that the client, the server, the store,
//! the report and the instrumented DCUtR all speak, and nothing heavier.
//!
//! A client names an outcome, checks an address and stamps a time with the same definitions the
//! server validates with and the store writes, from a crate that links neither the storage layer
//! nor the wire protocol: the client, built for Raspberry Pis, carries no database drivers
//! (iroh's `iroh-base` is the model). How the parts fit:
//! - `punchr-proto` converts the wire's enums to and from these ([`From`]/[`TryFrom`] impls live
//!   there, once);
//! - `punchr-store` stores them by their upper-case names and re-exports them, so its users may
//!   name them either way;
//! - the server, the client and the honeypot decide which addresses a volunteer may dial with
//!   [`address`], one rule for all;
//! - the binaries parse their duration flags with [`duration::parse_duration`] and print their
//!   last error with [`error_line`], which the instrumented DCUtR also uses for dial errors;
//! - every part logs under its [`log_target`], one convention for structured events;
//! - the client and the honeypot join the IPFS Amino DHT through [`bootstrap`]'s peers.
//!
//! The types that matter most: [`Outcome`] and [`AttemptOutcome`] (how a hole punch and each of
//! its attempts ended, `punchr-original.md` §7.3), [`AddressFacts`] and
//! [`address::is_public_ip`].

pub mod address;
pub mod bootstrap;
pub mod duration;
mod error;
pub mod log_target;
mod outcome;
mod time;

pub use address::AddressFacts;
pub use error::error_line;
pub use outcome::{
    AttemptOutcome, HandshakeRole, LatencyKind, Outcome, Relationship, RoleStrategy,
};
pub use time::{now_unix_nanos, UnixNanos};
