//! Socket probes that run inside the lab's namespaces (`punchr-lab probe …`) and show how the
//! NAT routers and links behave. Each prints one JSON object on stdout, except the echo server,
//! which serves until it is stopped.
//!
//! The echo server works like a STUN binding server: it tells each UDP or TCP client the source
//! address it saw, so a client behind NAT learns its mapping toward that server
//! (RFC 4787/5780 use the same trick to tell endpoint-independent from dependent mapping).

mod tcp;
mod udp;

use std::net::SocketAddrV4;
use std::time::Duration;

use clap::Subcommand;
use serde::Serialize;

use crate::scenario::parse_duration;

/// The port the echo server listens on by default (STUN's).
pub const ECHO_PORT: u16 = 3478;

/// The probes.
#[derive(Debug, Clone, Subcommand)]
pub enum ProbeCommand {
    /// Serve UDP and TCP on a port, telling each client the address it came from.
    Echo {
        /// Port for both UDP and TCP.
        #[arg(long, env = "PUNCHR_LAB_PROBE_PORT", default_value_t = ECHO_PORT)]
        port: u16,
    },
    /// Ask echo servers over UDP, from one socket, which address they see.
    UdpMapping {
        /// Echo servers, comma-separated.
        #[arg(
            long,
            env = "PUNCHR_LAB_PROBE_SERVERS",
            value_delimiter = ',',
            required = true
        )]
        servers: Vec<SocketAddrV4>,
        /// Local port (0: any).
        #[arg(long, env = "PUNCHR_LAB_PROBE_LOCAL_PORT", default_value_t = 0)]
        local_port: u16,
        /// How long to wait for each answer.
        #[arg(long, env = "PUNCHR_LAB_PROBE_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Ask echo servers over TCP, from one local port, which address they see.
    TcpMapping {
        /// Echo servers, comma-separated.
        #[arg(
            long,
            env = "PUNCHR_LAB_PROBE_SERVERS",
            value_delimiter = ',',
            required = true
        )]
        servers: Vec<SocketAddrV4>,
        /// Local port (0: any, the same for all servers).
        #[arg(long, env = "PUNCHR_LAB_PROBE_LOCAL_PORT", default_value_t = 0)]
        local_port: u16,
        /// Connect timeout per server.
        #[arg(long, env = "PUNCHR_LAB_PROBE_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Open a UDP port (optionally punching toward an echo server first, which also reports
    /// the mapping) and report every address that gets a datagram through.
    UdpListen {
        /// Local port.
        #[arg(long, env = "PUNCHR_LAB_PROBE_LOCAL_PORT")]
        local_port: u16,
        /// Echo server to send to first (creates the NAT mapping).
        #[arg(long, env = "PUNCHR_LAB_PROBE_PUNCH")]
        punch: Option<SocketAddrV4>,
        /// How long to listen at most.
        #[arg(long, env = "PUNCHR_LAB_PROBE_WAIT", default_value = "3s", value_parser = parse_duration)]
        wait: Duration,
        /// Once the punch target answered (the mapping exists), write the mapped address into
        /// this file: the moment a test may send to the mapping.
        #[arg(long, env = "PUNCHR_LAB_PROBE_READY_FILE")]
        ready_file: Option<std::path::PathBuf>,
        /// Stop listening once a datagram whose payload starts with this text arrives (what a
        /// test sends last, to know that everything it sent before had its chance).
        #[arg(long, env = "PUNCHR_LAB_PROBE_UNTIL")]
        until: Option<String>,
    },
    /// Send datagrams, then optionally wait for an answer (telling a reply from an ICMP error
    /// from silence).
    UdpSend {
        /// Destination.
        #[arg(long, env = "PUNCHR_LAB_PROBE_TO")]
        to: SocketAddrV4,
        /// Local port (0: any).
        #[arg(long, env = "PUNCHR_LAB_PROBE_LOCAL_PORT", default_value_t = 0)]
        local_port: u16,
        /// Datagrams to send.
        #[arg(long, env = "PUNCHR_LAB_PROBE_COUNT", default_value_t = 1)]
        count: u32,
        /// Time between datagrams.
        #[arg(long, env = "PUNCHR_LAB_PROBE_INTERVAL", default_value = "100ms", value_parser = parse_duration)]
        interval: Duration,
        /// How long to wait for an answer afterwards (0: do not wait).
        #[arg(long, env = "PUNCHR_LAB_PROBE_WAIT", default_value = "0", value_parser = parse_duration)]
        wait: Duration,
        /// The datagrams' payload: this text, a dash and the datagram's number.
        #[arg(long, env = "PUNCHR_LAB_PROBE_MESSAGE", default_value = "send")]
        message: String,
    },
    /// Open a TCP connection (optionally from a fixed port at a fixed time, for a simultaneous
    /// open), send a line and report the first line received.
    TcpConnect {
        /// Destination.
        #[arg(long, env = "PUNCHR_LAB_PROBE_TO")]
        to: SocketAddrV4,
        /// Local port (0: any); bound with SO_REUSEADDR and SO_REUSEPORT.
        #[arg(long, env = "PUNCHR_LAB_PROBE_LOCAL_PORT", default_value_t = 0)]
        local_port: u16,
        /// Give up after this long.
        #[arg(long, env = "PUNCHR_LAB_PROBE_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
        timeout: Duration,
        /// Start at this Unix time in milliseconds (for simultaneous opens).
        #[arg(long, env = "PUNCHR_LAB_PROBE_AT")]
        at: Option<u64>,
        /// The line to send once connected.
        #[arg(long, env = "PUNCHR_LAB_PROBE_SAY", default_value = "hello")]
        say: String,
    },
    /// Measure round-trip times to an echo server over UDP.
    Rtt {
        /// The echo server.
        #[arg(long, env = "PUNCHR_LAB_PROBE_TO")]
        to: SocketAddrV4,
        /// Datagrams to send.
        #[arg(long, env = "PUNCHR_LAB_PROBE_COUNT", default_value_t = 20)]
        count: u32,
        /// Time between datagrams.
        #[arg(long, env = "PUNCHR_LAB_PROBE_INTERVAL", default_value = "20ms", value_parser = parse_duration)]
        interval: Duration,
        /// How long to wait for the last answers.
        #[arg(long, env = "PUNCHR_LAB_PROBE_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
        timeout: Duration,
    },
}

/// How an attempt to reach something ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It answered (UDP) or the connection was established (TCP).
    Connected,
    /// A TCP RST or ICMP port unreachable came back.
    Refused,
    /// ICMP host or network unreachable came back.
    Unreachable,
    /// Nothing came back.
    Timeout,
    /// Something else went wrong.
    Error,
}

impl Outcome {
    fn of(e: &std::io::Error) -> Outcome {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused | K::ConnectionReset => Outcome::Refused,
            K::TimedOut | K::WouldBlock => Outcome::Timeout,
            K::HostUnreachable | K::NetworkUnreachable => Outcome::Unreachable,
            _ => Outcome::Error,
        }
    }
}

/// Runs a probe; returns the JSON line to print (none for the echo server, which serves until
/// it is killed).
pub fn run(command: &ProbeCommand) -> std::io::Result<Option<String>> {
    let json = |v: &dyn erased::Json| Some(v.to_json());
    Ok(match command {
        ProbeCommand::Echo { port } => {
            let tcp = tcp::serve_echo(*port)?;
            udp::serve_echo(*port)?;
            let _ = tcp.join();
            None
        }
        ProbeCommand::UdpMapping {
            servers,
            local_port,
            timeout,
        } => json(&udp::mapping(servers, *local_port, *timeout)?),
        ProbeCommand::TcpMapping {
            servers,
            local_port,
            timeout,
        } => json(&tcp::mapping(servers, *local_port, *timeout)?),
        ProbeCommand::UdpListen {
            local_port,
            punch,
            wait,
            ready_file,
            until,
        } => json(&udp::listen(&udp::ListenOptions {
            local_port: *local_port,
            punch: *punch,
            wait: *wait,
            ready_file: ready_file.clone(),
            until: until.clone(),
        })?),
        ProbeCommand::UdpSend {
            to,
            local_port,
            count,
            interval,
            wait,
            message,
        } => json(&udp::send(
            *to,
            *local_port,
            *count,
            *interval,
            *wait,
            message,
        )?),
        ProbeCommand::TcpConnect {
            to,
            local_port,
            timeout,
            at,
            say,
        } => json(&tcp::connect(*to, *local_port, *timeout, *at, say)?),
        ProbeCommand::Rtt {
            to,
            count,
            interval,
            timeout,
        } => json(&udp::rtt(*to, *count, *interval, *timeout)?),
    })
}

mod erased {
    /// Object-safe serialisation to one JSON line.
    pub(super) trait Json {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).expect("probe results serialize")
        }
    }
}
