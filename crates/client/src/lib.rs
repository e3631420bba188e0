//! The Punchr client (work in progress): hole punches the NATed peers the server hands out and
//! reports every attempt.
//!
//! - [`classifier`]: one hole punch in flight as a state machine without I/O, fed every event
//!   with its time, after the original punchr's rules;
//! - [`outbox`]: results waiting for the server, kept on disk until it confirms them.

pub mod classifier;
pub mod config;
pub mod delivery;
pub mod host;
mod insecure_tls;
pub mod latency;
pub mod observed;
pub mod outbox;
pub mod report;
pub mod run;
pub mod telemetry;
