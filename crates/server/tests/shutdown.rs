//! Stopping an in-process server: `RunningServer::shutdown` closes both ports, even while a
//! client still holds its connection open.

mod common;

use std::time::Duration;

use common::*;
use punchr_testutil::{on_both_engines, TestDb};

on_both_engines!(shutdown_closes_both_ports_with_a_client_connected);

async fn shutdown_closes_both_ports_with_a_client_connected(db: TestDb) {
    let (server, mut client) = serve(&db, &[]).await;
    new_client(&db.store, &mut client, "alice").await;
    let (grpc, telemetry) = (server.grpc_addr(), server.telemetry_addr());

    // A guard against a hang, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(30), server.shutdown())
        .await
        .expect("shutdown finishes although the client is still connected")
        .expect("a clean shutdown");

    assert!(
        std::net::TcpStream::connect(grpc).is_err(),
        "gRPC port still open"
    );
    assert!(
        std::net::TcpStream::connect(telemetry).is_err(),
        "telemetry port still open"
    );
    drop(client);
}
