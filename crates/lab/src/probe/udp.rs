//! UDP probes: the echo server, mapping discovery, filtering and round-trip times.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

use super::Outcome;

/// Binds a UDP socket on all addresses, with SO_REUSEADDR (so a probe can reuse a port a moment
/// after another probe used it).
pub(super) fn bind(port: u16) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    Ok(socket.into())
}

/// Answers every datagram with `"<source ip:port> <payload>"`, forever (in this thread).
pub(super) fn serve_echo(port: u16) -> std::io::Result<()> {
    let socket = bind(port)?;
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut reply = format!("{from} ").into_bytes();
        reply.extend_from_slice(&buf[..n.min(1024)]);
        // A failed send (e.g. an ICMP error from an earlier one) must not stop the server.
        let _ = socket.send_to(&reply, from);
    }
}

/// Splits an echo reply into the observed address and the payload.
fn parse_reply(reply: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(reply).ok()?;
    let (observed, payload) = text.split_once(' ')?;
    observed.parse::<SocketAddr>().ok()?;
    Some((observed.to_owned(), payload.to_owned()))
}

/// The result of `udp-mapping`.
#[derive(Debug, Serialize)]
pub(super) struct Mapping {
    /// The socket's local address.
    local: String,
    /// Per server, the address it saw (null: no answer).
    observed: BTreeMap<String, Option<String>>,
}

/// Asks each server, from one socket, which source address it sees (3 tries each).
pub(super) fn mapping(
    servers: &[SocketAddrV4],
    local_port: u16,
    timeout: Duration,
) -> std::io::Result<Mapping> {
    let socket = bind(local_port)?;
    let per_try = timeout / 3;
    socket.set_read_timeout(Some(per_try.max(Duration::from_millis(10))))?;
    let mut observed = BTreeMap::new();
    let mut buf = [0u8; 2048];
    for server in servers {
        let mut seen = None;
        'tries: for attempt in 0..3 {
            let token = format!("map-{attempt}");
            // An ICMP error from an earlier send would fail this one; the next try goes on.
            let _ = socket.send_to(token.as_bytes(), server);
            let deadline = Instant::now() + per_try;
            while Instant::now() < deadline {
                match socket.recv_from(&mut buf) {
                    Ok((n, from)) if from == SocketAddr::V4(*server) => {
                        if let Some((addr, _)) = parse_reply(&buf[..n]) {
                            seen = Some(addr);
                            break 'tries;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        observed.insert(server.to_string(), seen);
    }
    Ok(Mapping {
        local: socket.local_addr()?.to_string(),
        observed,
    })
}

/// The result of `udp-listen`.
#[derive(Debug, Serialize)]
pub(super) struct Listen {
    /// The mapping the punch target reported, if a punch was asked for and answered.
    mapped: Option<String>,
    /// Every source that got a datagram through, with how many.
    received_from: BTreeMap<String, u32>,
    /// Whether the datagram `--until` waits for arrived (`false`: the listen ran out of time).
    until_seen: bool,
}

/// What `udp-listen` does.
#[derive(Debug, Clone)]
pub(super) struct ListenOptions {
    /// The port to open.
    pub(super) local_port: u16,
    /// The echo server to punch toward first.
    pub(super) punch: Option<SocketAddrV4>,
    /// How long to listen at most.
    pub(super) wait: Duration,
    /// Where to write the mapping once the punch is answered.
    pub(super) ready_file: Option<std::path::PathBuf>,
    /// The payload prefix that ends the listen.
    pub(super) until: Option<String>,
}

/// Opens the port, punches toward the echo server (if asked) and records who gets through,
/// until the `until` datagram comes or the time is up.
pub(super) fn listen(options: &ListenOptions) -> std::io::Result<Listen> {
    let socket = bind(options.local_port)?;
    let punch = options.punch;
    let mut mapped = None;
    let mut received_from = BTreeMap::new();
    let mut until_seen = false;
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + options.wait;
    if let Some(server) = punch {
        let _ = socket.send_to(b"punch", server);
    }
    let mut last_punch = Instant::now();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket.set_read_timeout(Some(
            left.clamp(Duration::from_millis(1), Duration::from_millis(200)),
        ))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                *received_from.entry(from.to_string()).or_insert(0) += 1;
                if punch.is_some_and(|p| SocketAddr::V4(p) == from) && mapped.is_none() {
                    mapped = parse_reply(&buf[..n]).map(|(addr, _)| addr);
                    if let (Some(file), Some(addr)) = (&options.ready_file, &mapped) {
                        std::fs::write(file, addr)?;
                    }
                }
                if options
                    .until
                    .as_ref()
                    .is_some_and(|until| buf[..n].starts_with(until.as_bytes()))
                {
                    until_seen = true;
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::ConnectionRefused
                ) => {}
            Err(e) => return Err(e),
        }
        // Repeat the punch until it is answered (the first datagram may be lost on a lossy link).
        if let Some(server) = punch.filter(|_| mapped.is_none()) {
            if last_punch.elapsed() > Duration::from_millis(300) {
                let _ = socket.send_to(b"punch", server);
                last_punch = Instant::now();
            }
        }
    }
    Ok(Listen {
        mapped,
        received_from,
        until_seen,
    })
}

/// The result of `udp-send`.
#[derive(Debug, Serialize)]
pub(super) struct Send {
    /// Datagrams sent.
    sent: u32,
    /// What came back (only when asked to wait).
    result: Option<Outcome>,
    /// Who answered.
    reply_from: Option<String>,
}

/// Sends `count` datagrams (`"<message>-<n>"`, `interval` apart) to `to`; with a non-zero
/// `wait`, reports whether an answer, an ICMP error or nothing came back. The socket is
/// connected, so ICMP errors surface as errors.
pub(super) fn send(
    to: SocketAddrV4,
    local_port: u16,
    count: u32,
    interval: Duration,
    wait: Duration,
    message: &str,
) -> std::io::Result<Send> {
    let socket = bind(local_port)?;
    socket.connect(to)?;
    let mut sent = 0;
    let mut refused = false;
    for i in 0..count {
        if i > 0 {
            std::thread::sleep(interval);
        }
        match socket.send(format!("{message}-{i}").as_bytes()) {
            Ok(_) => sent += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused = true,
            Err(e) => return Err(e),
        }
    }
    if wait.is_zero() {
        return Ok(Send {
            sent,
            result: None,
            reply_from: None,
        });
    }
    socket.set_read_timeout(Some(wait))?;
    let mut buf = [0u8; 2048];
    let (result, reply_from) = match socket.recv_from(&mut buf) {
        Ok((_, from)) => (Outcome::Connected, Some(from.to_string())),
        Err(_) if refused => (Outcome::Refused, None),
        Err(e) => (Outcome::of(&e), None),
    };
    Ok(Send {
        sent,
        result: Some(result),
        reply_from,
    })
}

/// The result of `rtt`.
#[derive(Debug, Serialize)]
pub(super) struct Rtt {
    sent: u32,
    received: u32,
    /// Fraction of datagrams without an answer.
    loss: f64,
    min_ms: Option<f64>,
    median_ms: Option<f64>,
    mean_ms: Option<f64>,
    p90_ms: Option<f64>,
    max_ms: Option<f64>,
}

/// Sends `count` numbered datagrams to an echo server, `interval` apart, and matches the answers.
pub(super) fn rtt(
    to: SocketAddrV4,
    count: u32,
    interval: Duration,
    timeout: Duration,
) -> std::io::Result<Rtt> {
    let socket = bind(0)?;
    socket.connect(to)?;
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> =
        Arc::new(Mutex::new(vec![None; count as usize]));
    let sender = {
        let socket = socket.try_clone()?;
        let sent_at = sent_at.clone();
        std::thread::spawn(move || {
            for i in 0..count {
                sent_at.lock().expect("not poisoned")[i as usize] = Some(Instant::now());
                let _ = socket.send(format!("rtt-{i}").as_bytes());
                std::thread::sleep(interval);
            }
        })
    };
    let deadline = Instant::now() + interval * count + timeout;
    let mut rtts = vec![None; count as usize];
    let mut buf = [0u8; 2048];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        let Ok(n) = socket.recv(&mut buf) else {
            continue;
        };
        let now = Instant::now();
        let Some((_, payload)) = parse_reply(&buf[..n]) else {
            continue;
        };
        let Some(i) = payload
            .strip_prefix("rtt-")
            .and_then(|i| i.parse::<usize>().ok())
        else {
            continue;
        };
        if let Some(Some(at)) = sent_at.lock().expect("not poisoned").get(i) {
            if i < rtts.len() && rtts[i].is_none() {
                rtts[i] = Some(now.duration_since(*at).as_secs_f64() * 1e3);
            }
        }
        if rtts.iter().all(Option::is_some) {
            break;
        }
    }
    let _ = sender.join();
    let mut got: Vec<f64> = rtts.into_iter().flatten().collect();
    got.sort_by(f64::total_cmp);
    let received = got.len() as u32;
    Ok(Rtt {
        sent: count,
        received,
        loss: if count == 0 {
            0.0
        } else {
            1.0 - f64::from(received) / f64::from(count)
        },
        min_ms: got.first().copied(),
        median_ms: got.get(got.len() / 2).copied(),
        mean_ms: (!got.is_empty()).then(|| got.iter().sum::<f64>() / got.len() as f64),
        p90_ms: got.get(got.len() * 9 / 10).copied(),
        max_ms: got.last().copied(),
    })
}
