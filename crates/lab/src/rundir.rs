//! Directories the lab writes to as root, made so that no other local user can redirect the
//! writes.
//!
//! The lab runs as root and writes plans, logs, key files and a database cluster. A directory at a
//! predictable path that another user created first (or a symlink they planted there) would let
//! them read those files or point root's writes anywhere. So every directory the lab writes into
//! is checked before use: a real directory (never a symlink), owned by the lab's own user, and not
//! writable by anyone else; and the directory of a run is always created fresh, never reused.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::{LabError, Result};

/// The default parent of run directories: under `/run`, which only root can write.
pub const DEFAULT_RUNS_DIR: &str = "/run/punchr-lab/runs";

/// Mode of the lab's directories: the owner writes; others may only pass through (the database
/// peer runs as the `postgres` user and needs to reach its own directory inside a run's).
const MODE: u32 = 0o711;

/// Makes `dir` (and any missing parents) if needed and checks that it is safe to write into.
pub fn ensure_trusted(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(MODE)
        .create(dir)
        .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    check_trusted(dir)
}

/// Creates `dir`, which must not exist yet, inside a trusted parent.
pub fn create_fresh(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(MODE)
        .create(dir)
        .map_err(|e| {
            LabError::io(
                format!("creating {} (it must not exist yet)", dir.display()),
                e,
            )
        })?;
    check_trusted(dir)
}

/// Refuses `dir` unless it is a directory, not a symlink, owned by this process's user and not
/// writable by group or others.
pub fn check_trusted(dir: &Path) -> Result<()> {
    let untrusted = |why: String| LabError::UntrustedDir {
        path: dir.to_owned(),
        why,
    };
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| LabError::io(format!("inspecting {}", dir.display()), e))?;
    if meta.file_type().is_symlink() {
        return Err(untrusted("it is a symlink".into()));
    }
    if !meta.is_dir() {
        return Err(untrusted("it is not a directory".into()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(untrusted(format!(
            "it belongs to uid {}, not to this process's uid {me}",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(untrusted(format!("others may write to it (mode {mode:o})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_directory_is_trusted_and_cannot_be_made_twice() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("run");
        create_fresh(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o022, 0, "mode {mode:o}");
        let again = create_fresh(&dir).unwrap_err().to_string();
        assert!(again.contains("must not exist yet"), "{again}");
    }

    #[test]
    fn a_symlink_is_refused_even_to_a_good_directory() {
        let parent = tempfile::tempdir().unwrap();
        let real = parent.path().join("real");
        ensure_trusted(&real).unwrap();
        let link = parent.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = ensure_trusted(&link).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("open");
        ensure_trusted(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = check_trusted(&dir).unwrap_err().to_string();
        assert!(err.contains("others may write"), "{err}");
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            panic!("this test needs root (to give a directory to another user)");
        }
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("theirs");
        ensure_trusted(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let err = check_trusted(&dir).unwrap_err().to_string();
        assert!(err.contains("belongs to uid 65534"), "{err}");
    }
}
