//! The server's integration tests, one binary (one link of the whole server instead of one per
//! file): the server started in-process or as the binary on free loopback ports, over real gRPC,
//! on both engines; one module per area.

mod common;

mod auth;
mod cli;
mod faults;
mod hardening;
mod logs;
mod metrics;
mod original_clients;
mod register;
mod rejected_requests;
mod report_load;
mod selection;
mod shutdown;
mod soak;
mod systemd;
mod tls;
mod track;
mod wire_compat;
