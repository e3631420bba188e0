//! A small file system of a test's own, to fill up or turn read-only without touching anything
//! else: a tmpfs mounted on a temporary directory. Mounting needs root: a test that needs it
//! calls [`require_root`] and fails with a message saying so, never passes by skipping.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// Whether this process runs as root.
pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Fails the calling test, saying why, unless this process runs as root; `why` completes
/// "this test needs root to …".
pub fn require_root(why: &str) {
    assert!(
        running_as_root(),
        "this test needs root to {why}; run the tests as root (scripts/test checks this first)"
    );
}

/// A tmpfs of a given size, unmounted when dropped.
#[derive(Debug)]
pub struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (`mount -o size=…`, e.g. `16m`) on a new temporary directory.
    pub fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("create a mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs (root only)");
        SmallDisk { dir }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Mounts it again with `options`, e.g. `ro` or `rw`.
    ///
    /// A read-only remount fails with "busy" while any process holds a file on it open for
    /// writing. A database closed a moment ago can still be: a child that another test of the
    /// same binary was spawning at that moment holds a copy of every descriptor until its exec.
    /// So a busy remount is tried again, for at most 10 s.
    pub fn remount(&self, options: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let output = Command::new("mount")
                .args(["-o", &format!("remount,{options}")])
                .arg(self.path())
                .output()
                .expect("run mount");
            if output.status.success() {
                return;
            }
            let error = String::from_utf8_lossy(&output.stderr);
            let busy = error.contains("busy");
            assert!(
                busy && std::time::Instant::now() < deadline,
                "remount {options}: {error}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Fills it to the last byte by growing one file (called again, it takes what was freed
    /// since); returns the file's path. Deleting the file frees the space.
    pub fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .expect("create the filler file");
        let block = vec![0xa5u8; 64 * 1024];
        while let Ok(()) = file.write_all(&block) {}
        // The last partial block.
        while file.write(&[0]).is_ok_and(|written| written == 1) {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a process of the test may still hold a file open on it.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
