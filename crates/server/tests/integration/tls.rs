//! TLS: with `--tls-cert`/`--tls-key` the server speaks gRPC over TLS, and only over TLS.

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use punchr_proto::punchr_service_client::PunchrServiceClient;
use punchr_testutil::fixtures::peer_id;
use punchr_testutil::{error_chain, on_both_engines, TestDb};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

on_both_engines!(
    clients_trusting_the_certificate_can_register,
    plaintext_clients_are_refused_by_a_tls_server,
    clients_trusting_another_certificate_are_refused,
    an_unreadable_certificate_stops_the_start,
);

/// A self-signed certificate for `localhost`, written as PEM files into `dir`; returns the
/// certificate PEM.
fn write_certificate(dir: &Path) -> String {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()])
        .expect("generate a certificate");
    let cert = certified.cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("key.pem"), certified.key_pair.serialize_pem()).unwrap();
    cert
}

async fn start_tls_server(db: &TestDb, dir: &Path) -> punchr_server::RunningServer {
    let cert = dir.join("cert.pem").display().to_string();
    let key = dir.join("key.pem").display().to_string();
    start_server(db, &["--tls-cert", &cert, "--tls-key", &key]).await
}

async fn clients_trusting_the_certificate_can_register(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let cert = write_certificate(dir.path());
    let server = start_tls_server(&db, dir.path()).await;

    // Connect to 127.0.0.1 but verify the certificate's name, localhost.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(cert))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", server.grpc_addr()))
        .unwrap()
        .tls_config(tls)
        .expect("TLS configuration")
        .connect()
        .await
        .expect("a TLS connection");
    let mut client = PunchrServiceClient::new(channel);
    let key = new_api_key(&db.store, "alice").await;
    let host = peer_id();

    let response = client
        .register(register_request(&key, &host))
        .await
        .expect("Register over TLS")
        .into_inner();

    let key_id = api_key_id(&db.store, &key).await;
    assert_eq!(
        db.store
            .registered_host(key_id, &host.to_base58())
            .await
            .unwrap(),
        Some(response.db_peer_id)
    );
}

/// What a plaintext HTTP/2 client sees when the TLS server answers its preface with a TLS alert
/// and hangs up: the alert read as an HTTP/2 frame, or the closed connection (which of the two
/// depends on timing: a write into it is a broken pipe, a read of it hyper's "connection
/// closed"). Anything else, such as a refused connection, is the wrong cause; that the server
/// answered with an alert is checked on the raw bytes first.
const PLAINTEXT_REFUSALS: [&str; 3] = [
    "frame with invalid size",
    "broken pipe",
    "connection closed",
];

/// The first bytes the server sends back to an HTTP/2 connection preface in plaintext.
fn answer_to_a_plaintext_preface(addr: std::net::SocketAddr) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(addr).expect("the TLS server accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

async fn plaintext_clients_are_refused_by_a_tls_server(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path());
    let server = start_tls_server(&db, dir.path()).await;
    let key = new_api_key(&db.store, "alice").await;
    // The server answers plaintext with a TLS alert record (content type 21).
    let answer = answer_to_a_plaintext_preface(server.grpc_addr());
    assert_eq!(answer.first(), Some(&21), "not a TLS alert: {answer:?}");

    let attempt = async {
        let mut client =
            PunchrServiceClient::connect(format!("http://{}", server.grpc_addr())).await?;
        client.register(register_request(&key, &peer_id())).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    // A guard against a hang, not a timing assertion: the refusal comes at once.
    let result = tokio::time::timeout(Duration::from_secs(30), attempt)
        .await
        .expect("the plaintext attempt ends");

    let error = error_chain(
        result
            .expect_err("a plaintext client got through to a TLS server")
            .as_ref(),
    );
    println!("plaintext client: {error}");
    assert!(
        PLAINTEXT_REFUSALS.iter().any(|words| error.contains(words)),
        "refused for another reason than speaking plaintext to TLS: {error}"
    );
    assert_eq!(count(&db.store, "client_hosts").await, 0);
}

async fn clients_trusting_another_certificate_are_refused(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path());
    let server = start_tls_server(&db, dir.path()).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let other_cert = write_certificate(elsewhere.path());
    let key = new_api_key(&db.store, "alice").await;

    let attempt = async {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(other_cert))
            .domain_name("localhost");
        let channel = Channel::from_shared(format!("https://{}", server.grpc_addr()))?
            .tls_config(tls)?
            .connect()
            .await?;
        PunchrServiceClient::new(channel)
            .register(register_request(&key, &peer_id()))
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    let result = tokio::time::timeout(Duration::from_secs(30), attempt)
        .await
        .expect("the attempt ends");

    let error = error_chain(
        result
            .expect_err("a client got through without trusting the certificate")
            .as_ref(),
    );
    assert!(
        error.contains("invalid peer certificate"),
        "refused for another reason than the certificate: {error}"
    );
    assert_eq!(count(&db.store, "client_hosts").await, 0);
}

async fn an_unreadable_certificate_stops_the_start(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem").display().to_string();
    let config = config(&db, &["--tls-cert", &missing, "--tls-key", &missing]);
    let error = punchr_server::start(&config)
        .await
        .expect_err("no certificate, no server");
    assert!(error.to_string().contains("missing.pem"), "{error}");
}
