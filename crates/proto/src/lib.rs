//! The Punchr wire protocol: the `PunchrService` gRPC API shared by the server and the clients.
//!
//! This crate holds `proto/punchr.proto` and the Rust types tonic/prost generate from it at build
//! time (with protox, so no system `protoc` is needed). The proto is wire-compatible with the
//! final version of the original Go punchr: proto2, no package, the same field numbers, labels and
//! enum values; our own additions are optional fields numbered 100 and up.
//!
//! Most users want:
//! - [`TrackHolePunchRequest`], [`HolePunchAttempt`] and the outcome enums, which the client fills
//!   and the server validates and stores;
//! - [`punchr_service_server::PunchrService`] (server side) and
//!   [`punchr_service_client::PunchrServiceClient`] (client side);
//! - the [`From`]/[`TryFrom`] conversions between the wire's enums and the shared vocabulary of
//!   `punchr-types` ([`punchr_types::Outcome`] and the others), written once for both sides.
//!
//! Wire conventions: peer IDs are multihash bytes, multiaddresses binary multiaddrs, times Unix
//! nanoseconds (`u64`) and durations seconds (`f32`).

#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

mod convert;

pub use convert::WireUnknown;
pub use generated::*;

/// gRPC method paths. The original proto has no package, so the service name is bare.
pub mod paths {
    /// Path of the Register method.
    pub const REGISTER: &str = "/PunchrService/Register";
    /// Path of the GetAddrInfo method.
    pub const GET_ADDR_INFO: &str = "/PunchrService/GetAddrInfo";
    /// Path of the TrackHolePunch method.
    pub const TRACK_HOLE_PUNCH: &str = "/PunchrService/TrackHolePunch";
}
