//! `run --db postgres`: the campaign's database is a PostgreSQL server of its own, started inside
//! the lab on the WAN (a scratch cluster in the run directory, from the machine's PostgreSQL
//! binaries), so the server and the honeypot write to PostgreSQL over the lab's network as they
//! would in the field. The collector, outside the lab's namespaces, reaches the same server
//! through its Unix socket in the run directory.

use std::path::{Path, PathBuf};

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::scenario::{Attachment, LinkOverride, Peer, Ready, Role, Scenario};

/// The database peer's name.
pub const PEER: &str = "postgres";

/// The port it listens on inside the lab.
pub const PORT: u16 = 5432;

/// The directory of the machine's PostgreSQL server binaries (`initdb`, `postgres`), found the
/// same way the tests' private servers find them.
pub fn binaries() -> Result<PathBuf> {
    punchr_testutil::postgres::server_binaries()
        .map_err(|reason| LabError::Preflight(format!("--db postgres: {reason}")))
}

/// Adds the database peer to `scenario`: a fresh cluster in `<run_dir>/postgres`, owned by the
/// `postgres` user, trusting connections from the lab's WAN (nothing outside the lab can reach
/// it).
pub fn add_to(scenario: &mut Scenario) -> Result<()> {
    let bin = binaries()?;
    let initdb = bin.join("initdb");
    let postgres = bin.join("postgres");
    let inner = format!(
        "{} -D {{run_dir}}/postgres/data -U postgres -A trust --no-sync >{{run_dir}}/postgres/initdb.log 2>&1 \
         && echo host all all {wan} trust >>{{run_dir}}/postgres/data/pg_hba.conf \
         && exec {} -D {{run_dir}}/postgres/data -h {{ip}} -p {PORT} -k {{run_dir}}/postgres \
         -c fsync=off -c synchronous_commit=off -c max_connections=100",
        path(&initdb),
        path(&postgres),
        wan = crate::guard::wan_range()
    );
    let command = format!(
        "sh -c \"mkdir -p {{run_dir}}/postgres && chown postgres {{run_dir}}/postgres && exec runuser -u postgres -- sh -c '{inner}'\""
    );
    scenario.peers.push(Peer {
        name: PEER.to_owned(),
        role: Role::Database,
        at: Attachment::Wan,
        command: Some(command),
        env: Default::default(),
        ready: Some(Ready::Tcp(PORT)),
        link: LinkOverride::default(),
        implementation: Default::default(),
    });
    Ok(())
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// How the lab's PostgreSQL server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    /// From inside the lab (the server and honeypot): its WAN address.
    pub in_lab: String,
    /// From this machine's namespace (the collector): its Unix socket in the run directory.
    pub from_host: String,
}

/// The URLs of the lab's database peer, if the lab has one.
pub fn urls(lab: &Lab) -> Option<Urls> {
    let peer = lab.plan().peers.iter().find(|p| p.role == Role::Database)?;
    Some(Urls {
        in_lab: format!("postgres://postgres@{}:{PORT}/postgres", peer.ip),
        from_host: format!(
            "postgres://postgres@localhost:{PORT}/postgres?host={}",
            lab.run_dir().join("postgres").display()
        ),
    })
}
