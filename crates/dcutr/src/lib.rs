//! An instrumented DCUtR (Direct Connection Upgrade through Relay) behaviour for rust-libp2p.
//!
//! DCUtR turns a relayed connection between two peers into a direct one by hole punching: both
//! peers exchange their addresses over the relay (CONNECT), one measures the round-trip time and
//! tells the other when to start (SYNC), and both dial at the same moment. The stock
//! `libp2p-dcutr` crate does this but reports only a final success or failure. Punchr measures
//! hole punching, so this crate speaks the same protocol — same wire format, same timing, same
//! roles, interoperable with the stock crate in both roles — and reports every step of every
//! attempt: stream opened, CONNECT sent and received with the addresses offered, SYNC, RTT, each
//! direct dial with its addresses and result (per-address errors included), each attempt's
//! outcome and duration, and direct connections that appear without our dial (connection
//! reversal).
//!
//! Who uses it: the Punchr client (which is the responder: it dials a NATed peer through its
//! relay and waits for that peer to start DCUtR) and any Rust peer of the lab. Use the stock
//! crate instead if one final result is all you need. Never add both to one swarm: both would
//! claim `/libp2p/dcutr` on the same connections.
//!
//! The two types that matter:
//! - [`Behaviour`]: put it in the swarm next to the relay client; feed it address candidates
//!   if identify is not there to do it ([`Behaviour::add_candidate`]).
//! - [`Event`]: one step, with the remote peer, the relayed connection, our [`Role`], the
//!   attempt number, the time as [`std::time::Instant`] and as Unix nanoseconds (both from one
//!   [`Clock`]), and what happened ([`EventKind`]). Each event is also logged as a `tracing`
//!   event with target [`TRACE_TARGET`] and fields only.
//!
//! Where each module comes from (spec: libp2p `relay/DCUtR.md`; stock: rust-libp2p
//! `protocols/dcutr/src`, libp2p-dcutr 0.15.0):
//! - `message`: the spec's RPC messages; stock `generated/message.proto`, `protocol.rs`.
//! - `handshake`: the spec's protocol steps; stock `protocol/outbound.rs` and `inbound.rs`.
//! - `upgrade`: the protocol core without I/O — roles, attempts, retries, outcomes; the spec's
//!   retry rule and stock `behaviour.rs`.
//! - `handler`: streams and the 10 s deadline; stock `handler/relayed.rs`.
//! - `behaviour`: swarm plumbing and dial options; stock `behaviour.rs`.
//! - `candidates`: our addresses for CONNECT; stock `behaviour.rs` (`Candidates`).
//! - `scope`: which CONNECT addresses we dial (public ones); go-multiaddr's `IsPublicAddr`.
//! - `roles`: which handshake role the responder's dial takes per attempt; go-libp2p's role
//!   history (issue #3171, PR #3044, v0.48).
//! - `clock`, `event`: this crate's own.
//!
//! Deliberate differences from the stock crate, each for the measurement's sake: candidates are
//! read when a CONNECT is sent (stock: copied once per relayed connection) and include confirmed
//! external addresses and user-added ones; a new inbound stream replaces an exchange still
//! running (stock: the new stream is dropped); the responder reports its dial failures (stock:
//! silence); the responder's handshake role follows a [`RoleStrategy`] (stock: always the spec's,
//! which is [`RoleStrategy::Spec`]), so that go-libp2p peers of every DCUtR role era can be
//! punched; an attempt whose dial is running ends when the remote's dial makes the direct
//! connection first (stock: it waits for its own dial). Retries, timeouts, dial options and message checks are the stock crate's.

mod behaviour;
mod candidates;
mod clock;
mod event;
mod handler;
mod handshake;
mod message;
mod preference;
mod roles;
mod scope;
mod upgrade;

pub use behaviour::Behaviour;
pub use clock::Clock;
pub use event::{AttemptOutcome, DialFailure, Event, EventKind, Role, TRACE_TARGET};
pub use handler::{HANDSHAKE_TIMEOUT, PROTOCOL_NAME};
pub use message::MAX_MESSAGE_SIZE;
pub use preference::Preference;
pub use roles::{HandshakeRole, RemoteRoles, RoleStrategy};
pub use upgrade::MAX_ATTEMPTS;
