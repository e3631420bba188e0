//! Punchr's lab: a small internet built from Linux network namespaces, to measure hole punching
//! through NAT routers of known types with the real Punchr binaries and the real protocol.
//!
//! `punchr-lab run` reads a [`scenario::Scenario`] (TOML: routers with their NAT type, peers with
//! their role and command template, link delay and loss, campaign length), checks the machine
//! ([`preflight`]), builds a [`lab::Lab`] (a WAN bridge on 11.0.0.0/8 in its own namespace, guarded by [`guard`],
//! nftables NAT routers per [`nat::NatType`], NFQUEUE [`delay`]ers for link latency and loss,
//! since this kernel has no netem), starts the peers in role order ([`campaign`]), and removes
//! everything at the end — also on error, on Ctrl-C, and for runs that were killed
//! (`punchr-lab clean`, see [`state`]).
//!
//! The two types that matter most: [`scenario::Scenario`] (what to build) and [`lab::Lab`] (what
//! was built; dropping it tears it down). Tests drive a `Lab` directly and probe the routers
//! with `punchr-lab probe …` ([`probe`]) run inside the namespaces. [`theory`] holds what NAT
//! theory predicts for each pair of NAT types, for the report. [`peers`] holds the stock
//! rust-libp2p relay, bootstrap server and NATed remote peer the scenarios run;
//! [`implementation`] the other libp2p implementations a remote can run (go-libp2p of each DCUtR
//! role era, kubo, js-libp2p).
//!
//! Commands: `run` (a campaign), `up` (build a lab and keep it until Ctrl-C, for experiments
//! with `ip netns exec`), `plan` (print names and addresses), `clean` (remove what killed runs
//! left), `check` (preflight), and the programs the lab runs inside its namespaces: `delay`,
//! `probe …`, `relay`, `bootstrap` and `remote-peer`. [`wiring`] turns a [`topology::Plan`]
//! into namespaces, veths, addresses, routes and rulesets; [`process`] runs commands inside them.
//!
//! Nothing here reaches the machine's real network: the WAN namespace has no link out, and
//! every address lives inside namespaces the lab created.

pub mod campaign;
pub mod cli;
pub mod collector;
pub mod commands;
pub mod delay;
pub mod error;
pub mod guard;
pub mod implementation;
pub mod lab;
pub mod measured;
pub mod nat;
pub mod netns;
pub mod peers;
pub mod population;
pub mod postgres;
pub mod preflight;
pub mod probe;
pub mod process;
pub mod rundir;
pub mod scenario;
pub mod state;
pub mod template;
pub mod theory;
pub mod topology;
pub mod wiring;

pub use error::{LabError, Result};
pub use lab::{Lab, LabOptions};
pub use scenario::Scenario;
