//! What a stranger can do to the gRPC and dashboard ports of the real `punchr-server` binary:
//! hold one HTTP/2 connection open with hundreds of half-sent requests, or open connections and
//! send nothing. Memory stays bounded and the server cuts such connections off within its
//! configured times (issue 15, point 2).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use punchr_loadgen::ServerProcess;
use punchr_server::config::Cli;
use punchr_testutil::TestDb;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const MB: u64 = 1024 * 1024;

/// The request timeout and idle/header timeouts the tests give the server, short so that they
/// finish quickly.
const SHORT_TIMES: [&str; 6] = [
    "--request-timeout",
    "2s",
    "--idle-timeout",
    "3s",
    "--header-timeout",
    "3s",
];

async fn start_binary(db: &TestDb, extra: &[&str]) -> (ServerProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
    let server = ServerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_punchr-server")),
        &db.location,
        &args,
        &dir.path().join("server.log"),
    )
    .await
    .expect("start punchr-server");
    (server, dir)
}

/// The default --max-request-bytes, as the binary reads it.
fn default_max_request_bytes() -> usize {
    Cli::parse_from(["punchr-server"]).server.max_request_bytes
}

/// A gRPC message frame header announcing `len` bytes that will never all come.
fn frame_header(len: usize) -> Bytes {
    let mut header = vec![0u8];
    header.extend_from_slice(&(len as u32).to_be_bytes());
    Bytes::from(header)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_stay_small_and_are_cut_off() {
    let db = TestDb::sqlite().await;
    let (mut server, _dir) = start_binary(&db, &SHORT_TIMES).await;
    let baseline = server.live_rss_bytes().unwrap();

    let tcp = TcpStream::connect(server.grpc_addr()).await.unwrap();
    let (mut h2, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    // Each request announces a message just below the limit and sends all of it but 1 KiB.
    let announced = default_max_request_bytes() - 16;
    let body = Bytes::from(vec![0x0a; announced - 1024]);
    let mut open = Vec::new();
    for _ in 0..300 {
        let request = http::Request::builder()
            .method("POST")
            .uri(format!(
                "http://{}/PunchrService/TrackHolePunch",
                server.grpc_addr()
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        h2 = h2.ready().await.unwrap_or_else(|e| panic!("{e}"));
        let Ok((response, mut stream)) = h2.send_request(request, false) else {
            break;
        };
        let _ = stream.send_data(frame_header(announced), false);
        let _ = stream.send_data(body.clone(), false);
        open.push((response, stream));
        if open.len() % 16 == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let sent = open.len();

    let started = Instant::now();
    let mut peak = server.live_rss_bytes().unwrap();
    let mut ended = 0;
    for (response, stream) in open {
        tokio::pin!(response);
        let answer = loop {
            peak = peak.max(server.live_rss_bytes().unwrap());
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the server still holds the half-sent requests after 2 minutes ({ended} of {sent} ended)"
            );
            if let Ok(answer) =
                tokio::time::timeout(Duration::from_millis(250), &mut response).await
            {
                break answer;
            }
        };
        drop(stream);
        let ok =
            matches!(&answer, Ok(r) if r.headers().get("grpc-status").is_none_or(|s| s == "0"));
        assert!(!ok, "a half-sent request must not succeed: {answer:?}");
        ended += 1;
    }
    peak = peak.max(server.live_rss_bytes().unwrap());
    eprintln!(
        "300 half-sent requests: server RSS {} MB before, peak {} MB; {ended} of {sent} cut off after {:?}",
        baseline / MB,
        peak / MB,
        started.elapsed()
    );
    assert!(peak < 100 * MB, "server RSS peaked at {} MB", peak / MB);
    // With nothing in flight, the connection itself is closed by the idle timeout.
    drop(h2);
    tokio::time::timeout(Duration::from_secs(30), connection)
        .await
        .expect("the server closes the connection once it is idle")
        .unwrap()
        .ok();
    server.stop().await.unwrap();
}

/// Reads from `stream` until the peer closes it; how long that took, or `None` within `limit`.
async fn closed_within(mut stream: TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_within_the_configured_time() {
    let db = TestDb::sqlite().await;
    let (mut server, _dir) = start_binary(&db, &SHORT_TIMES).await;
    let grpc = TcpStream::connect(server.grpc_addr()).await.unwrap();
    let dashboard = TcpStream::connect(server.dashboard_addr()).await.unwrap();
    // Half a request line: the dashboard must not wait for the rest for ever.
    let half = TcpStream::connect(server.dashboard_addr()).await.unwrap();
    half.try_write(b"GET /api/report HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let limit = Duration::from_secs(20);
    let (grpc, dashboard, half) = tokio::join!(
        closed_within(grpc, limit),
        closed_within(dashboard, limit),
        closed_within(half, limit)
    );
    eprintln!("idle connections closed after: gRPC {grpc:?}, dashboard {dashboard:?}, dashboard half-sent {half:?}");
    for (what, closed) in [
        ("gRPC", grpc),
        ("dashboard", dashboard),
        ("half-sent dashboard", half),
    ] {
        let closed = closed
            .unwrap_or_else(|| panic!("the idle {what} connection is still open after {limit:?}"));
        assert!(
            closed >= Duration::from_secs(2),
            "{what} closed too early: {closed:?}"
        );
    }
    assert!(server.live_rss_bytes().is_ok());
    server.stop().await.unwrap();
}
