//! The instrumented DCUtR's integration tests, one binary: both roles against stock
//! `libp2p-dcutr` over real TCP and QUIC on loopback; one module per area.

mod common;

mod failure;
mod upgrade;
