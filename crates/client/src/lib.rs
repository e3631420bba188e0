//! The Punchr client: a volunteer's program that hole punches the NATed peers the server hands
//! out and reports every attempt, built small enough for Raspberry Pis.
//!
//! `punchr-client` (this crate's binary) parses [`config`] and hands it to [`run::Client`]. One
//! result's way through the crate:
//! - [`run`]: the main loop: start the hosts, bootstrap and register them, then round-robin: ask
//!   for a peer, punch it, report;
//! - [`host`]: one libp2p host in its own task (TCP and QUIC, the instrumented DCUtR of
//!   `punchr-dcutr`, identify, ping), taking commands over a channel;
//! - [`observed`]: which of a host's addresses the outside world sees, as identify reports them;
//! - [`classifier`]: one hole punch in flight as a state machine without I/O, fed every event
//!   with its time, after the original punchr's rules;
//! - [`latency`]: the ping samples a punch gathers (relay, remote over the relay, remote direct);
//! - [`request`]: the TrackHolePunch request built from a classified punch;
//! - [`outbox`]: results waiting for the server, kept on disk until it confirms them;
//! - [`delivery`]: the link to the server (register, ask for peers, deliver from the outbox);
//! - [`telemetry`]: the Prometheus metrics, `/healthz` and `/readyz` endpoint.
//!
//! `--server-ssl-skip-verify`'s certificate verifier that verifies nothing is private
//! (`insecure_tls`), so nothing outside the crate can reuse it.

pub mod classifier;
pub mod config;
pub mod delivery;
pub mod host;
mod insecure_tls;
pub mod latency;
pub mod observed;
pub mod outbox;
pub mod request;
pub mod run;
pub mod telemetry;
