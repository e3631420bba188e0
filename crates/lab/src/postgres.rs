//! `run --db postgres`: the campaign's database is a PostgreSQL server of its own, started inside
//! the lab on the WAN (a scratch cluster in the run directory, from the machine's PostgreSQL
//! binaries), so the server and the honeypot write to PostgreSQL over the lab's network as they
//! would in the field. The collector, outside the lab's namespaces, reaches the same server
//! through its Unix socket in the run directory.

use std::os::unix::process::CommandExt;
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
    punchr_store::local_server::server_binaries()
        .map_err(|reason| LabError::Preflight(format!("--db postgres: {reason}")))
}

/// Adds the database peer to `scenario`: a fresh cluster in `<run_dir>/postgres`, owned by the
/// `postgres` user, trusting connections from the lab's WAN (nothing outside the lab can reach
/// it).
pub fn add_to(scenario: &mut Scenario) -> Result<()> {
    let bin = binaries()?;
    // The lab's own binary sets the cluster up and then becomes the server: no shell, so no
    // quoting of paths, and the directory is made and checked by code that refuses to follow a
    // planted symlink.
    let command = format!(
        "{{bin_dir}}/punchr-lab database --postgres-bin {} --dir {{run_dir}}/postgres \
         --listen {{ip}} --port {PORT} --trust {}",
        path(&bin),
        crate::guard::wan_range()
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

/// `punchr-lab database`: the arguments of the lab's PostgreSQL peer.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// The directory of PostgreSQL's server binaries (`initdb`, `postgres`).
    #[arg(long)]
    pub postgres_bin: PathBuf,
    /// The cluster's directory; must not exist yet.
    #[arg(long)]
    pub dir: PathBuf,
    /// The address to listen on.
    #[arg(long)]
    pub listen: std::net::IpAddr,
    /// The port to listen on.
    #[arg(long, default_value_t = PORT)]
    pub port: u16,
    /// The network whose clients are trusted without a password (the lab's WAN).
    #[arg(long)]
    pub trust: String,
}

/// Makes a fresh cluster in `args.dir` as the `postgres` user and then becomes its server
/// (returns only on failure).
pub fn run_database(args: &DatabaseArgs) -> Result<()> {
    let (uid, gid) = system_user("postgres")?;
    crate::rundir::create_fresh(&args.dir)?;
    std::os::unix::fs::chown(&args.dir, Some(uid), Some(gid))
        .map_err(|e| LabError::io(format!("giving {} to postgres", args.dir.display()), e))?;
    let data = args.dir.join("data");
    let log = std::fs::File::create_new(args.dir.join("initdb.log"))
        .map_err(|e| LabError::io("creating initdb.log", e))?;
    let status = std::process::Command::new(args.postgres_bin.join("initdb"))
        .args(["-D".as_ref(), data.as_os_str()])
        .args(["-U", "postgres", "-A", "trust", "--no-sync"])
        .uid(uid)
        .gid(gid)
        .stdout(log.try_clone().map_err(|e| LabError::io("initdb.log", e))?)
        .stderr(log)
        .status()
        .map_err(|e| LabError::io("starting initdb", e))?;
    if !status.success() {
        return Err(LabError::Preflight(format!(
            "initdb failed ({status}); see {}",
            args.dir.join("initdb.log").display()
        )));
    }
    append_line(
        &data.join("pg_hba.conf"),
        &format!("host all all {} trust", args.trust),
    )?;
    let error = std::process::Command::new(args.postgres_bin.join("postgres"))
        .args(["-D".as_ref(), data.as_os_str()])
        .args(["-h", &args.listen.to_string(), "-p", &args.port.to_string()])
        .args(["-k".as_ref(), args.dir.as_os_str()])
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "max_connections=100"])
        .uid(uid)
        .gid(gid)
        .exec();
    Err(LabError::io("starting postgres", error))
}

/// The uid and gid of a system user.
fn system_user(name: &str) -> Result<(u32, u32)> {
    let c_name = std::ffi::CString::new(name).expect("a user name without NUL");
    // SAFETY: getpwnam reads a NUL-terminated name and returns a pointer into static storage
    // (or null); the fields are copied out before any other call could overwrite it.
    let entry = unsafe { libc::getpwnam(c_name.as_ptr()) };
    if entry.is_null() {
        return Err(LabError::Preflight(format!(
            "--db postgres needs the `{name}` system user (Debian's postgresql package makes it)"
        )));
    }
    // SAFETY: entry is non-null and points to a passwd record.
    Ok(unsafe { ((*entry).pw_uid, (*entry).pw_gid) })
}

fn append_line(file: &Path, line: &str) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| writeln!(f, "{line}"))
        .map_err(|e| LabError::io(format!("writing {}", file.display()), e))
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
