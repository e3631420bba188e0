//! The client reaches a TLS server: verifying its certificate through --pem, or, when asked
//! to, without verification; and refuses a certificate it cannot verify.

use crate::common::start_server;
use punchr_client::delivery::{LinkError, ServerAddress, ServerLink};
use punchr_testutil::{error_chain, fixtures, TestDb};

struct TlsServer {
    server: punchr_server::RunningServer,
    ca_pem: Vec<u8>,
    _dir: tempfile::TempDir,
}

async fn tls_server(db: &TestDb) -> TlsServer {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let server = start_server(&db.location, 0, &["--tls-cert", cert, "--tls-key", key]).await;
    TlsServer {
        server,
        ca_pem: certified.cert.pem().into_bytes(),
        _dir: dir,
    }
}

async fn register(address: ServerAddress, key: &str) -> Result<i64, LinkError> {
    let link = ServerLink::new(&address, key.to_owned())?;
    link.register(fixtures::peer_id().to_bytes(), "punchr/test".into(), vec![])
        .await
}

#[tokio::test]
async fn the_certificate_is_verified_through_the_ca_file() {
    let db = TestDb::sqlite().await;
    let tls = tls_server(&db).await;
    let (_, key) = db.store.create_api_key("volunteer").await.unwrap();
    let url = format!("https://localhost:{}", tls.server.grpc_addr().port());

    let verified = ServerAddress {
        url: url.clone(),
        ca_pem: Some(tls.ca_pem.clone()),
        skip_verify: false,
        timeouts: Default::default(),
    };
    register(verified, key.expose())
        .await
        .expect("a CA file that signed the certificate is trusted");

    let unverifiable = ServerAddress {
        url: url.clone(),
        ca_pem: None,
        skip_verify: false,
        timeouts: Default::default(),
    };
    let refused = register(unverifiable, key.expose())
        .await
        .expect_err("a self-signed certificate is refused without --pem");
    let cause = error_chain(&refused);
    assert!(
        cause.contains("invalid peer certificate: UnknownIssuer"),
        "refused for another reason than the unknown issuer: {cause}"
    );

    let skipped = ServerAddress {
        url,
        ca_pem: None,
        skip_verify: true,
        timeouts: Default::default(),
    };
    register(skipped, key.expose())
        .await
        .expect("--server-ssl-skip-verify accepts any certificate");
    tls.server.shutdown().await.unwrap();
}

/// A server that accepts connections and never says a word (a stuck proxy, a stranger's port).
async fn silent_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_server_that_never_answers_ends_each_request_in_time_with_or_without_verification() {
    let (addr, task) = silent_server().await;
    let timeouts = punchr_client::delivery::LinkTimeouts {
        connect: std::time::Duration::from_millis(300),
        request: std::time::Duration::from_secs(1),
    };
    for skip_verify in [true, false] {
        let address = ServerAddress {
            url: format!("https://localhost:{}", addr.port()),
            ca_pem: None,
            skip_verify,
            timeouts,
        };
        // The bound is a guard against hanging for ever, far above the link's own timeouts.
        let outcome =
            tokio::time::timeout(std::time::Duration::from_secs(20), register(address, "key"))
                .await;
        let error = outcome
            .unwrap_or_else(|_| panic!("skip_verify={skip_verify}: the request hung"))
            .expect_err("a silent server cannot register a host");
        let cause = error_chain(&error);
        println!("skip_verify={skip_verify}: {cause}");
        assert!(
            // The connect timeout, or the request's deadline when the connection came first.
            cause.contains("no TLS handshake") || cause.contains("no answer from the server"),
            "skip_verify={skip_verify}: failed for another reason than the silence: {cause}"
        );
    }
    task.abort();
}
