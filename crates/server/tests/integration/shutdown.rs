//! Stopping a server: `RunningServer::shutdown` closes both ports, even while a client still
//! holds its connection open, and the binary lets a request in flight finish after SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::*;
use punchr_store::Engine;
use punchr_testutil::{free_port, on_both_engines, TestDb};

on_both_engines!(
    shutdown_closes_both_ports_with_a_client_connected,
    sigterm_lets_a_request_in_flight_finish,
);

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

/// Holds the database's write lock until dropped, so that a result sent meanwhile is in flight.
async fn hold_write_lock(db: &TestDb) -> sqlx::Transaction<'static, sqlx::Any> {
    let mut tx = db.store.pool().begin().await.unwrap();
    let lock = match db.engine() {
        Engine::Postgres => "LOCK TABLE hole_punch_results IN ACCESS EXCLUSIVE MODE",
        Engine::Sqlite => "UPDATE api_keys SET name = name",
    };
    sqlx::query(lock).execute(&mut *tx).await.unwrap();
    tx
}

/// Waits until the log file at `path` has a line for which `found` holds; panics with the log
/// if the server exits first or nothing comes within a minute (a guard against a hang).
async fn wait_for_log_line(
    path: &std::path::Path,
    server: &mut tokio::process::Child,
    what: &str,
    found: impl Fn(&str) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.lines().any(&found) {
            return;
        }
        assert!(
            server.try_wait().unwrap().is_none(),
            "the server exited before {what}:\n{log}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line of {what}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server's HTTP/2 layer (h2, at debug) logs each frame it receives: the request on the
/// connection's second stream (after Register on the first) is whole once its END_STREAM frame
/// is in, and from then on it is the server's to answer.
fn track_request_received(line: &str) -> bool {
    line.contains("received frame=")
        && line.contains("stream_id: StreamId(3)")
        && line.contains("END_STREAM")
}

async fn sigterm_lets_a_request_in_flight_finish(db: TestDb) {
    let key = new_api_key(&db.store, "alice").await;
    let remote = seed_remote(&db.store).await;
    let (grpc_port, telemetry_port) = (free_port(), free_port());
    let logs = tempfile::NamedTempFile::new().unwrap();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_punchr-server"))
        .args(["--db", &db.location, "--host", "127.0.0.1"])
        .args(["--port", &grpc_port.to_string()])
        .args(["--telemetry-port", &telemetry_port.to_string()])
        .args(["--dashboard-port", &free_port().to_string()])
        .env("RUST_LOG", "info,h2=debug")
        .env("NO_COLOR", "1")
        .stdout(logs.reopen().unwrap())
        .stderr(logs.reopen().unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start punchr-server");
    let telemetry: SocketAddr = ([127, 0, 0, 1], telemetry_port).into();
    while tokio::net::TcpStream::connect(telemetry).await.is_err() {
        assert!(server.try_wait().unwrap().is_none(), "the server exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut client = punchr_proto::punchr_service_client::PunchrServiceClient::connect(format!(
        "http://127.0.0.1:{grpc_port}"
    ))
    .await
    .unwrap();
    let host = register_host(&mut client, &key).await;

    let lock = hold_write_lock(&db).await;
    let request = track_request(&key, &host, &remote.peer);
    let in_flight = tokio::spawn(async move { client.track_hole_punch(request).await });
    wait_for_log_line(
        logs.path(),
        &mut server,
        "the TrackHolePunch request arriving",
        track_request_received,
    )
    .await;
    assert!(!in_flight.is_finished(), "the write waits for the lock");
    let pid = server.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    // The graceful shutdown reaches the connection (GOAWAY, the request's stream still open)
    // and the gRPC port stops accepting: the server is draining.
    wait_for_log_line(logs.path(), &mut server, "the GOAWAY", |line| {
        line.contains("send frame=GoAway")
    })
    .await;
    while std::net::TcpStream::connect(("127.0.0.1", grpc_port)).is_ok() {
        assert!(server.try_wait().unwrap().is_none(), "the server exited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A server that does not wait for its requests exits now that it accepts no more. Holding
    // the lock a little longer shows it did not: this can miss a slow exit, never fail a server
    // that waits (the request cannot end while the lock is held).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.try_wait().unwrap().is_none(),
        "the server exited with a request in flight"
    );
    lock.commit().await.unwrap();

    let answer = tokio::time::timeout(Duration::from_secs(30), in_flight)
        .await
        .expect("the request ends")
        .unwrap();
    assert!(
        answer.is_ok(),
        "the request in flight succeeded: {answer:?}\n{}",
        std::fs::read_to_string(logs.path()).unwrap_or_default()
    );
    let status = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server stops once the request is answered")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(count(&db.store, "hole_punch_results").await, 1);
}
