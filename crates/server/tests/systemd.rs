//! The systemd units of the three services (`deploy/systemd/`) pass `systemd-analyze verify`
//! with the binaries this workspace builds in place of `/usr/local/bin`, and set what operations
//! rely on: a graceful stop by SIGTERM, restarts, and settings from an environment file.

use std::path::{Path, PathBuf};
use std::process::Command;

const SERVICES: [&str; 3] = ["punchr-server", "punchr-honeypot", "punchr-client"];

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd")
}

/// The directory of the workspace's binaries, with all three built.
fn bin_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_punchr-server"))
        .parent()
        .expect("bin dir")
        .to_owned();
    if SERVICES.iter().any(|s| !dir.join(s).exists()) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "--bins",
            "-p",
            "punchr-honeypot",
            "-p",
            "punchr-client",
        ]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(build.status().expect("cargo build").success());
    }
    dir
}

#[test]
fn units_verify_and_stop_gracefully() {
    let which = Command::new("sh")
        .args(["-c", "command -v systemd-analyze"])
        .output()
        .expect("sh");
    assert!(
        which.status.success(),
        "systemd-analyze is missing (Debian package systemd); scripts/setup installs it"
    );
    let bin_dir = bin_dir();
    let scratch = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for service in SERVICES {
        let text = std::fs::read_to_string(units_dir().join(format!("{service}.service")))
            .unwrap_or_else(|e| panic!("{service}.service: {e}"));
        for needed in [
            "KillSignal=SIGTERM",
            "Restart=",
            "EnvironmentFile=",
            "StateDirectory=",
            "NoNewPrivileges=yes",
        ] {
            assert!(text.contains(needed), "{service}.service lacks {needed}");
        }
        let local = text.replace("/usr/local/bin/", &format!("{}/", bin_dir.display()));
        let path = scratch.path().join(format!("{service}.service"));
        std::fs::write(&path, local).unwrap();
        paths.push(path);
    }
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Warnings (unknown keys, keys in the wrong section) come with exit status 0.
    assert!(stderr.trim().is_empty(), "systemd-analyze warns:\n{stderr}");
}
