//! Plain HTTP/1.0 GETs against the telemetry and dashboard ports the binaries serve, and
//! reading one sample out of a Prometheus text page.

use std::net::SocketAddr;

/// `GET path` over a plain HTTP/1.0 connection; returns the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr)
            .unwrap_or_else(|e| panic!("connect to {addr} for GET {request:?}: {e}"));
        stream
            .write_all(request.as_bytes())
            .expect("send the request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read the response");
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status code");
        (status, body.to_owned())
    })
    .await
    .expect("the HTTP request ran")
}

/// The value of the sample `series` (name and labels exactly as the encoder writes them).
pub fn metric_sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}
