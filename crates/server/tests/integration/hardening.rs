//! What a stranger can do to the gRPC and dashboard ports of the real `punchr-server` binary:
//! hold one HTTP/2 connection open with hundreds of half-sent requests, or open connections and
//! send nothing. Memory stays bounded and the server cuts such connections off within its
//! configured times (issue 15, point 2).

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

/// A multiaddress of exactly `bytes` bytes whose text form reads back: a long DNS name.
fn address_of_size(bytes: usize, seq: usize) -> Vec<u8> {
    let overhead = "/dns4/a/tcp/1"
        .parse::<multiaddr::Multiaddr>()
        .unwrap()
        .to_vec()
        .len()
        - 1;
    let name_len = bytes - overhead - 1; // the name's length varint takes 2 bytes from 128 on
    let name = format!("{seq:06}{}", "a".repeat(name_len - 6));
    let address: multiaddr::Multiaddr = format!("/dns4/{name}/tcp/1").parse().unwrap();
    assert_eq!(address.to_vec().len(), bytes);
    address.to_vec()
}

/// Every list of a TrackHolePunch request at its limit and every text at its largest, as the
/// validator allows them.
fn largest_valid_request(
    limits: &punchr_server::validate::Limits,
) -> punchr_proto::TrackHolePunchRequest {
    use punchr_proto as pb;
    let client = punchr_testutil::fixtures::peer_id();
    let remote = punchr_testutil::fixtures::peer_id();
    let key = "k".repeat(punchr_server::validate::MAX_API_KEY_BYTES);
    let mut request = crate::common::track_request(&key, &client, &remote);
    let text = |bytes: usize| "e".repeat(bytes);
    let addresses = |count: usize| -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| address_of_size(limits.max_address_bytes, i))
            .collect()
    };
    request.remote_multi_addresses = addresses(limits.max_addresses);
    request.open_multi_addresses = addresses(limits.max_addresses);
    request.listen_multi_addresses = addresses(limits.max_addresses);
    request.error = Some(text(limits.max_text_bytes));
    request.protocols = vec![i32::MAX; limits.max_protocol_filters];
    let template = request.hole_punch_attempts[0].clone();
    request.hole_punch_attempts = (0..limits.max_attempts)
        .map(|_| pb::HolePunchAttempt {
            error: Some(text(limits.max_text_bytes)),
            direct_dial_error: Some(text(limits.max_text_bytes)),
            multi_addresses: addresses(limits.max_attempt_addresses),
            handshake_role: Some(pb::HandshakeRole::Server.into()),
            ..template.clone()
        })
        .collect();
    let measurement = request.latency_measurements[0].clone();
    request.latency_measurements = (0..limits.max_latency_measurements)
        .map(|_| pb::LatencyMeasurement {
            agent_version: text(limits.max_text_bytes),
            protocols: (0..limits.max_measurement_protocols)
                .map(|i| format!("/{i:04}{}", "p".repeat(limits.max_protocol_bytes - 5)))
                .collect(),
            multi_address: address_of_size(limits.max_address_bytes, 0),
            rtts: vec![0.5; limits.max_samples],
            rtt_errs: vec![text(limits.max_sample_error_bytes); limits.max_samples],
            ..measurement.clone()
        })
        .collect();
    request.network_information = Some(pb::NetworkInformation {
        router_login_html: Some(text(limits.max_html_bytes)),
        router_login_html_error: Some(text(limits.max_text_bytes)),
        supports_ipv6: Some(false),
        supports_ipv6_error: Some(text(limits.max_text_bytes)),
    });
    request.nat_mappings = (0..limits.max_nat_mappings)
        .map(|_| pb::NatMapping {
            internal_port: 65535,
            external_port: 65535,
            protocol: "udp".into(),
            addr: text(limits.max_nat_text_bytes),
            addr_network: text(limits.max_nat_text_bytes),
        })
        .collect();
    request.report_id = Some(vec![7; 64]);
    request.role_strategy = Some(pb::RoleStrategy::Adaptive.into());
    request
}

#[tokio::test]
async fn the_largest_valid_result_fits_the_default_request_limit() {
    use prost::Message;
    use punchr_server::validate::{self, Limits, Quirks};
    let limits = Limits::default();
    let request = largest_valid_request(&limits);
    let now = punchr_store::now_unix_nanos();
    validate::hole_punch_result(&request, 1, now, &limits, Quirks::default())
        .expect("the validator accepts it");
    let size = request.encoded_len();
    let default = default_max_request_bytes();
    eprintln!(
        "largest valid TrackHolePunchRequest: {size} bytes; default --max-request-bytes {default}"
    );
    assert!(size <= default, "{size} > {default}");
    // The bound is tight: the default buffers little beyond what a valid result needs.
    assert!(default - size < default / 20, "{size} vs {default}");

    // And the real server takes it: not refused for its size.
    let db = TestDb::sqlite().await;
    let (server, mut client) = crate::common::serve(&db, &[]).await;
    let answer = client.track_hole_punch(request).await;
    if let Err(status) = &answer {
        assert_ne!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert_ne!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    }
    server.shutdown().await.unwrap();
}
