//! What the client's tests and benches share: a real server in-process, the honeypot's record of
//! a remote, and a classifier driven with made-up events ([`classify`]).

#![allow(dead_code, unreachable_pub)]

pub mod classify;

use clap::Parser;
use punchr_store::Store;
use punchr_testutil::fixtures;
use punchr_testutil::libp2p_peers::RunningPeer;

/// Starts a server on `location` (loopback, free ports unless `port` is given), with `extra`
/// flags. It serves the loopback relays of these tests (`--serve-private-relays`).
pub async fn start_server(
    location: &str,
    port: u16,
    extra: &[&str],
) -> punchr_server::RunningServer {
    let mut flags = vec!["--serve-private-relays"];
    flags.extend_from_slice(extra);
    let config = punchr_testutil::server::config_on_port(location, port, &flags);
    punchr_testutil::server::start_with(&config).await
}

/// Records what the honeypot would have seen of `remote`: a DCUtR peer with its relay address.
pub async fn seed_honeypot_sighting(store: &Store, remote: &RunningPeer) {
    seed_sighting(store, &remote.peer_id, &remote.address).await;
}

/// Records what the honeypot would have seen of the DCUtR peer `peer` with the relay address
/// `address`.
pub async fn seed_sighting(
    store: &Store,
    peer: &libp2p_identity::PeerId,
    address: &multiaddr::Multiaddr,
) {
    fixtures::record_sighting(store, peer, address).await;
}

/// A one-host client of `server` on loopback: no bootstrap peers, its listen address taken as
/// public, no telemetry, results in `outbox`. Tests add their own flags (`extra`).
pub fn loopback_client_config(
    server: &punchr_server::RunningServer,
    key: &str,
    seed: &str,
    outbox: &std::path::Path,
    extra: &[&str],
) -> punchr_client::config::ClientConfig {
    let port = server.grpc_addr().port().to_string();
    let mut args = vec![
        "punchr-client",
        "--api-key",
        key,
        "--server-host",
        "127.0.0.1",
        "--server-port",
        &port,
        "--host-count",
        "1",
        "--seed",
        seed,
        "--assume-public",
        "--bootstrap-peers",
        "none",
        "--listen",
        "127.0.0.1",
        "--telemetry-port",
        "0",
        "--outbox",
        outbox.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    punchr_client::config::ClientConfig::parse_from(args)
}
