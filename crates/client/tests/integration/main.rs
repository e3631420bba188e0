//! The client's integration tests, one binary: the real client against a real server, relays
//! and stock libp2p peers on loopback (and, in `cross`, the cross-built clients under qemu); one
//! module per area.

mod common;

mod cross;
mod end_to_end;
mod logs;
mod outbox_delivery;
mod outcomes;
mod relay_scope;
mod stop;
mod strangers;
mod tls;
mod wire_values;
