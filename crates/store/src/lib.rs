//! Punchr's storage layer: one schema and one behaviour on two engines.
//!
//! Every Punchr service that touches the database (the server, the honeypot, the report) goes
//! through [`Store`]. It runs on **SQLite** (embedded, the default: give it a file path; nothing to
//! install) or on **PostgreSQL** (give it a `postgres://` URL) for campaigns that outgrow one file.
//! Both engines get the same tables from migrations embedded in the binary and applied by
//! [`Store::open`], and the same queries through sqlx's `Any` driver, so a test that passes on one
//! engine must pass on the other (the test suite runs every storage test on both).
//!
//! The types that matter most:
//! - [`Store`]: open a database, manage API keys, peers and client hosts, record what the honeypot
//!   saw, and write hole punch results;
//! - [`HolePunchRecord`]: one validated hole punch result with all its parts (attempts,
//!   addresses, latency measurements, NAT mappings). [`Store::insert_hole_punch_result`] writes it
//!   in one transaction: all of it or nothing (the original punchr lost results silently).
//!
//! Times are Unix nanoseconds in `i64` throughout, the unit of the wire protocol.

pub mod agent;
mod engine;
mod error;
pub mod facts;
mod keys;
mod lab_labels;
pub mod local_server;
mod model;
mod peers;
mod read_only;
pub mod reason;
mod results;
mod selection;
pub mod sql;

pub use engine::{redact_password, Engine, Store};
pub use error::StoreError;
pub use keys::{uuid_v4_text, ApiKey, ApiKeySecret};
pub use model::{
    ConnectionEventRecord, HolePunchAttemptRecord, HolePunchRecord, LatencyRecord, NatMapping,
    NetworkInformation, PeerInfo,
};
pub use read_only::ReadOnlyStore;
// The shared vocabulary, re-exported so the store's users name it as before.
pub use punchr_types::address::MAX_HANDOUT_ADDRESSES;
pub use punchr_types::duration::parse_duration;
pub use punchr_types::{
    error_line, now_unix_nanos, AddressFacts, AttemptOutcome, HandshakeRole, LatencyKind, Outcome,
    Relationship, RoleStrategy,
};
pub use results::InsertedResult;
pub use selection::{Handout, Requester, Selection, SelectionOutcome, SelectionRules};

/// Result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
