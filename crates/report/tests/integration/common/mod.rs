//! Helpers shared by the report's integration tests: a dataset with known outcomes, a running
//! server with its dashboard, a tiny HTTP client, and headless Chromium driven over the DevTools
//! protocol.
//!
//! Each test binary uses a different subset, hence `dead_code` is allowed here.
#![allow(dead_code, unreachable_pub)]

pub mod browser;
pub mod dataset;

use std::net::SocketAddr;

use punchr_server::RunningServer;
use punchr_testutil::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts a server on the test database with every port chosen by the system, the dashboard's
/// included.
pub async fn start_server(db: &TestDb) -> RunningServer {
    start_server_with(db, &[]).await
}

/// Like [`start_server`], with `extra` flags.
pub async fn start_server_with(db: &TestDb, extra: &[&str]) -> RunningServer {
    punchr_testutil::server::start(&db.location, extra).await
}

/// The dashboard's address of a server started by [`start_server`].
pub fn dashboard(server: &RunningServer) -> SocketAddr {
    server
        .dashboard_addr()
        .expect("the dashboard listens on a free port")
}

/// A GET request; returns status and body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_get(addr, path)
        .await
        .unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

/// A GET request to a server that may not listen yet.
pub async fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    request(addr, "GET", path, None)
        .await
        .map(|(status, _, body)| (status, body))
}

/// A GET request; returns status, the response head (status line and headers) and body.
pub async fn get_with_head(addr: SocketAddr, path: &str) -> (u16, String, String) {
    request(addr, "GET", path, None)
        .await
        .unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

/// A POST of a URL-encoded form; returns status and body.
pub async fn post_form(addr: SocketAddr, path: &str, form: &str) -> (u16, String) {
    let (status, _, body) = request(addr, "POST", path, Some(form)).await.expect("POST");
    (status, body)
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    form: Option<&str>,
) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(form) = form {
        head.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        ));
    }
    head.push_str("\r\n");
    head.push_str(form.unwrap_or(""));
    stream.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        head.to_owned(),
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    ))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// Percent-encodes a form value.
pub fn form_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
