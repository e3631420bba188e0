//! TCP probes: the echo server, mapping discovery, connects and simultaneous opens.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

use super::Outcome;

/// Accepts connections in a thread; to each it writes `"<source ip:port>\n"`, then reads one
/// line (at most 2 s) and closes.
pub(super) fn serve_echo(port: u16) -> std::io::Result<JoinHandle<()>> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    socket.listen(128)?;
    let listener: TcpListener = socket.into();
    Ok(std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let Ok(peer) = stream.peer_addr() else { return };
                let _ = writeln!(stream, "{peer}");
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut line = String::new();
                let _ = BufReader::new(&stream).read_line(&mut line);
            });
        }
    }))
}

/// A TCP socket bound to `local_port` with SO_REUSEADDR and SO_REUSEPORT, as libp2p binds its
/// dialing sockets to its listening port.
fn bound(local_port: u16) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, local_port)).into())?;
    Ok(socket)
}

/// The result of `tcp-connect`.
#[derive(Debug, Serialize)]
pub(super) struct Connect {
    result: Outcome,
    /// The local address used.
    local: Option<String>,
    /// Time from `connect` to the outcome.
    elapsed_ms: f64,
    /// The first line the other side sent.
    peer_said: Option<String>,
    /// The error, if any.
    error: Option<String>,
}

/// Connects (at Unix time `at_ms`, if given), sends `say`, reads one line.
pub(super) fn connect(
    to: SocketAddrV4,
    local_port: u16,
    timeout: Duration,
    at_ms: Option<u64>,
    say: &str,
) -> std::io::Result<Connect> {
    let socket = bound(local_port)?;
    let local = socket.local_addr()?.as_socket().map(|a| a.to_string());
    if let Some(at) = at_ms {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        if let Some(wait) = Duration::from_millis(at).checked_sub(now) {
            std::thread::sleep(wait);
        }
    }
    let started = std::time::Instant::now();
    let result = socket.connect_timeout(&SocketAddr::V4(to).into(), timeout);
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    if let Err(e) = result {
        return Ok(Connect {
            result: Outcome::of(&e),
            local,
            elapsed_ms,
            peer_said: None,
            error: Some(e.to_string()),
        });
    }
    let mut stream: TcpStream = socket.into();
    let _ = writeln!(stream, "{say}");
    stream.set_read_timeout(Some(timeout))?;
    let mut line = String::new();
    let peer_said = match BufReader::new(&stream).read_line(&mut line) {
        Ok(n) if n > 0 => Some(line.trim_end().to_owned()),
        _ => None,
    };
    Ok(Connect {
        result: Outcome::Connected,
        local,
        elapsed_ms,
        peer_said,
        error: None,
    })
}

/// The result of `tcp-mapping`.
#[derive(Debug, Serialize)]
pub(super) struct Mapping {
    /// The local port used for every connection.
    local_port: u16,
    /// Per server, the address it saw (null: no connection).
    observed: BTreeMap<String, Option<String>>,
}

/// Connects to each echo server from the same local port and records what it saw.
pub(super) fn mapping(
    servers: &[SocketAddrV4],
    local_port: u16,
    timeout: Duration,
) -> std::io::Result<Mapping> {
    let mut port = local_port;
    let mut observed = BTreeMap::new();
    for server in servers {
        let socket = bound(port)?;
        if port == 0 {
            port = socket.local_addr()?.as_socket().map_or(0, |a| a.port());
        }
        let seen = socket
            .connect_timeout(&SocketAddr::V4(*server).into(), timeout)
            .ok()
            .and_then(|()| {
                let stream: TcpStream = socket.into();
                stream.set_read_timeout(Some(timeout)).ok()?;
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).ok()?;
                let _ = writeln!(&stream, "bye");
                Some(line.trim_end().to_owned())
            });
        observed.insert(server.to_string(), seen);
    }
    Ok(Mapping {
        local_port: port,
        observed,
    })
}
