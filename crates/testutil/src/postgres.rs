//! A PostgreSQL server of a test's own, for tests that stop, restart or reconfigure the server
//! (doing that to the shared scratch server would break the tests running beside them).
//!
//! [`PrivatePostgres`] runs the machine's PostgreSQL binaries (found by
//! `punchr_store::local_server`, as the lab finds them) on a cluster in a temporary directory and
//! a free loopback port, as the `postgres` user when the test runs as root (`initdb` refuses
//! root). Durability is off (`fsync`,
//! `synchronous_commit`): a fast stop still writes everything out, and tests need no more.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use punchr_store::local_server::server_binaries;
use tempfile::TempDir;

use crate::disk::running_as_root;

/// A PostgreSQL server owned by one test; stopped and deleted when dropped.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    data: TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// Creates a cluster (`initdb`, trust authentication for `postgres`) and starts it.
    pub async fn start() -> PrivatePostgres {
        let bin = server_binaries().unwrap_or_else(|e| panic!("{e}"));
        let data = tempfile::Builder::new()
            .prefix("punchr-private-pg.")
            .tempdir()
            .expect("create a data directory");
        if running_as_root() {
            run_checked(
                std::process::Command::new("chown")
                    .arg("postgres:")
                    .arg(data.path()),
            );
        }
        let server = PrivatePostgres {
            bin,
            data,
            port: crate::free_port(),
        };
        let initdb = server.bin.join("initdb");
        let mut command = server.as_owner(&initdb);
        command.args(["-U", "postgres", "-A", "trust", "--no-sync", "-D"]);
        command.arg(server.data.path());
        run_checked(&mut command);
        server.pg_ctl_start().await;
        server
    }

    /// The admin URL (user `postgres`, database `postgres`).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Creates an empty database, dropped with the returned guard.
    pub async fn create_database(&self) -> crate::PostgresDatabase {
        crate::PostgresDatabase::create_on(&self.admin_url()).await
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops the server the way an operator restarting it does (`pg_ctl stop -m fast`: open
    /// sessions are terminated, transactions in flight roll back); returns once it is down.
    pub async fn stop(&self) {
        let mut command = self.pg_ctl();
        command.args(["-m", "fast", "-w", "stop"]);
        run_checked_async(command).await;
    }

    /// Starts the stopped server again on the same port and data; returns once it accepts
    /// connections.
    pub async fn start_again(&self) {
        self.pg_ctl_start().await;
    }

    async fn pg_ctl_start(&self) {
        let settings = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c max_connections=100 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.data.path().display()
        );
        let mut command = self.pg_ctl();
        command
            .arg("-o")
            .arg(settings)
            .arg("-l")
            .arg(self.log_path());
        command.args(["-w", "-t", "60", "start"]);
        if !status_of(command).await {
            panic!(
                "the private PostgreSQL server did not start:\n{}",
                self.log()
            );
        }
    }

    fn pg_ctl(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::from(self.as_owner(&self.bin.join("pg_ctl")));
        command.arg("-D").arg(self.data.path());
        command
    }

    fn log_path(&self) -> PathBuf {
        self.data.path().join("server.log")
    }

    /// `program` run by the cluster's owner: `postgres` when we are root.
    fn as_owner(&self, program: &Path) -> std::process::Command {
        if running_as_root() {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            std::process::Command::new(program)
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let mut command = self.as_owner(&self.bin.join("pg_ctl"));
        command
            .arg("-D")
            .arg(self.data.path())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = command.status();
    }
}

fn run_checked(command: &mut std::process::Command) {
    let output = command.output().expect("run a PostgreSQL tool");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn run_checked_async(mut command: tokio::process::Command) {
    let output = command.output().await.expect("run pg_ctl");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn status_of(mut command: tokio::process::Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}
