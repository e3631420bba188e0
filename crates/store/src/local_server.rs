//! Where this machine's PostgreSQL server binaries are: for the lab's `--db postgres`, which runs
//! a server of its own inside the lab, and for tests that need a private server. The store
//! itself only ever connects to a server; this is the one place that knows where one can be
//! started from.

use std::path::PathBuf;

/// The directory of the machine's PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`):
/// the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout), else the directory of an
/// `initdb` on the `PATH`. The error says which package to install.
pub fn server_binaries() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| dir.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    // Version directories sort numerically only by length first ("9.6" < "15").
    candidates.sort_by_key(|bin| (bin.as_os_str().len(), bin.clone()));
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    candidates
        .into_iter()
        .rev()
        .chain(on_path)
        .find(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .ok_or_else(|| {
            "no PostgreSQL server binaries (initdb, postgres) found; install them with: \
             apt-get install postgresql"
                .to_owned()
        })
}
