//! The one way tests start a Punchr server in-process: the command line a user would type
//! (`punchr-server --db … --port 0 …`), parsed by the server's own `Cli`, so every setting a test
//! does not name is the real default. Every port is chosen by the system unless the test fixes
//! the gRPC port (a restart on the same port), and the server listens on loopback only.

use clap::Parser;
use punchr_server::config::Cli;
use punchr_server::{RunningServer, ServerConfig};

/// The configuration of `punchr-server --db <location> --host 127.0.0.1 --port <grpc_port>`
/// with telemetry and dashboard on ports the system chooses, plus `extra` flags.
pub fn config_on_port(location: &str, grpc_port: u16, extra: &[&str]) -> ServerConfig {
    let grpc_port = grpc_port.to_string();
    let mut args = vec![
        "punchr-server",
        "--db",
        location,
        "--host",
        "127.0.0.1",
        "--port",
        &grpc_port,
        "--telemetry-port",
        "0",
        "--dashboard-port",
        "0",
    ];
    args.extend_from_slice(extra);
    match Cli::try_parse_from(&args) {
        Ok(cli) => cli.server,
        Err(error) => panic!("the test's server flags {args:?} do not parse: {error}"),
    }
}

/// [`config_on_port`] with the gRPC port chosen by the system too.
pub fn config(location: &str, extra: &[&str]) -> ServerConfig {
    config_on_port(location, 0, extra)
}

/// Starts a server on the database at `location` with `extra` flags, every port free.
pub async fn start(location: &str, extra: &[&str]) -> RunningServer {
    start_with(&config(location, extra)).await
}

/// Starts a server with `config` (from [`config`] or [`config_on_port`], perhaps changed).
pub async fn start_with(config: &ServerConfig) -> RunningServer {
    punchr_server::start(config)
        .await
        .unwrap_or_else(|e| panic!("the test server did not start: {e}"))
}
