//! The honeypot's integration tests, one binary: real honeypots in-process or as the binary,
//! walking simulated DHTs of real libp2p nodes on loopback; one module per area.

mod support;

mod binary;
mod dht;
mod inbound;
mod logs;
mod restart;
mod strangers;
