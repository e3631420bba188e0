//! The real `punchr-server` binary as a child process on loopback, so that its memory is its own
//! (read from `/proc/<pid>/status`) and it runs exactly as deployed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use punchr_testutil::free_port;
use tokio::process::{Child, Command};

use crate::SoakError;

/// How long the server may take to listen after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the server may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `punchr-server` process; killed if dropped without [`ServerProcess::stop`].
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pid: u32,
    grpc_addr: SocketAddr,
    dashboard_addr: SocketAddr,
    log: PathBuf,
}

/// What `/proc/<pid>` says about a process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSample {
    /// Resident set size, bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// CPU time in user and kernel mode so far.
    pub cpu: Duration,
}

impl ServerProcess {
    /// Starts `binary` on the database `db` (a URL), listening on free loopback ports, with
    /// `extra_args` after the defaults. Its output goes to `log`.
    pub async fn start(
        binary: &Path,
        db: &str,
        extra_args: &[String],
        log: &Path,
    ) -> Result<ServerProcess, SoakError> {
        let grpc_port = free_port();
        let dashboard_port = free_port();
        let output = std::fs::File::create(log)?;
        let mut command = Command::new(binary);
        // The run is the defaults plus the flags given here, whatever the caller's environment
        // holds for the server.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PUNCHR_SERVER_") {
                command.env_remove(name);
            }
        }
        command
            .args(["--db", db, "--host", "127.0.0.1", "--port"])
            .arg(grpc_port.to_string())
            .args(["--telemetry-host", "127.0.0.1", "--telemetry-port"])
            .arg(free_port().to_string())
            .args(["--dashboard-host", "127.0.0.1", "--dashboard-port"])
            .arg(dashboard_port.to_string())
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .map_err(|e| SoakError::Server(format!("cannot start {}: {e}", binary.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| SoakError::Server("the server exited at once".into()))?;
        let mut server = ServerProcess {
            child,
            pid,
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], grpc_port)),
            dashboard_addr: SocketAddr::from(([127, 0, 0, 1], dashboard_port)),
            log: log.to_owned(),
        };
        server.wait_listening().await?;
        Ok(server)
    }

    async fn wait_listening(&mut self) -> Result<(), SoakError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(self.failure(&format!("the server exited with {status}")));
            }
            // The dashboard is bound after gRPC: a caller may use either port at once.
            let grpc = tokio::net::TcpStream::connect(self.grpc_addr).await.is_ok();
            let dashboard = tokio::net::TcpStream::connect(self.dashboard_addr)
                .await
                .is_ok();
            if grpc && dashboard {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.failure(&format!(
                    "the server did not listen on {} (gRPC) and {} (dashboard) within \
                     {START_TIMEOUT:?}",
                    self.grpc_addr, self.dashboard_addr
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where gRPC listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Where the dashboard listens.
    pub fn dashboard_addr(&self) -> SocketAddr {
        self.dashboard_addr
    }

    /// The server's resident memory now, after checking that it still runs (a process that
    /// died has no memory to speak of).
    pub fn live_rss_bytes(&mut self) -> Result<u64, SoakError> {
        if let Some(status) = self.child.try_wait()? {
            return Err(self.failure(&format!("the server exited with {status}")));
        }
        Ok(self.sample()?.rss_bytes)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's resident memory and CPU time now.
    pub fn sample(&self) -> Result<ProcessSample, SoakError> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        Ok(ProcessSample {
            rss_bytes: vm_rss_bytes(&status)
                .ok_or_else(|| SoakError::Server("no VmRSS in /proc/<pid>/status".into()))?,
            cpu: cpu_time(&stat)
                .ok_or_else(|| SoakError::Server("unreadable /proc/<pid>/stat".into()))?,
        })
    }

    /// Asks the server to stop (SIGTERM, as systemd does) and waits for it.
    pub async fn stop(mut self) -> Result<ExitStatus, SoakError> {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()?;
        if !sent.success() {
            return Err(self.failure("could not send SIGTERM to the server"));
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => Err(self.failure(&format!(
                "the server did not stop within {STOP_TIMEOUT:?} of SIGTERM"
            ))),
        }
    }

    /// An error with the end of the server's log.
    pub fn failure(&self, what: &str) -> SoakError {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        SoakError::Server(format!(
            "{what}; the end of its log ({}):\n{tail}",
            self.log.display()
        ))
    }
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU time of a `/proc/<pid>/stat` text.
fn cpu_time(stat: &str) -> Option<Duration> {
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are
    // plain. utime and stime are fields 14 and 15, so 12th and 13th after the name.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // /proc reports clock ticks of USER_HZ, which Linux fixes at 100 for user space.
    Some(Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_texts_are_read() {
        let status =
            "Name:\tpunchr-server\nVmPeak:\t  200000 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(vm_rss_bytes(status), Some(12345 * 1024));
        let stat = "4242 (punchr server) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 4";
        assert_eq!(cpu_time(stat), Some(Duration::from_millis(3000)));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(vm_rss_bytes(&status).unwrap() > 0);
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_time(&stat).is_some());
    }
}
