//! The systemd units of the three services (`deploy/systemd/`) pass `systemd-analyze verify`
//! with the binaries this workspace builds in place of `/usr/local/bin`, and set what operations
//! rely on: a graceful stop by SIGTERM, restarts (limited for the services that open the
//! database), and settings from an environment file.

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

/// The value of `key=` in a unit file, if set.
fn setting(unit: &str, key: &str) -> Option<u64> {
    unit.lines()
        .find_map(|line| line.trim().strip_prefix(&format!("{key}=")))
        .map(|value| {
            value
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{key}={value} is not a number of seconds or starts"))
        })
}

/// The services that open the database fail at start on a database they cannot write (a full
/// disk, a read-only file system): systemd must give up after a few tries instead of
/// restarting them for ever. The limit only works if the tries fit in its interval.
#[test]
fn database_services_stop_restarting_after_repeated_failed_starts() {
    for service in ["punchr-server", "punchr-honeypot"] {
        let unit = std::fs::read_to_string(units_dir().join(format!("{service}.service")))
            .unwrap_or_else(|e| panic!("{service}.service: {e}"));
        assert!(unit.contains("Restart=on-failure"), "{service}.service");
        let burst = setting(&unit, "StartLimitBurst")
            .unwrap_or_else(|| panic!("{service}.service has no StartLimitBurst"));
        let interval = setting(&unit, "StartLimitIntervalSec")
            .unwrap_or_else(|| panic!("{service}.service has no StartLimitIntervalSec"));
        let pause = setting(&unit, "RestartSec").unwrap_or(0);
        assert!(
            burst >= 1 && interval > 0,
            "{service}.service: {burst} in {interval}s"
        );
        assert!(
            burst * pause < interval,
            "{service}.service: {burst} starts {pause}s apart never fit in {interval}s, so the \
             limit never stops the restarts"
        );
    }
}

/// The value of `Environment=<variable>=` in a unit file.
fn environment(unit: &str, variable: &str) -> Option<String> {
    unit.lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix(&format!("Environment={variable}="))
        })
        .map(|value| value.trim().to_owned())
}

/// On the SQLite default the honeypot records peers into the file the server hands them out
/// from: two files would make a deployment that never hands out a peer.
#[test]
fn server_and_honeypot_share_one_database_by_default() {
    let read = |service: &str| {
        std::fs::read_to_string(units_dir().join(format!("{service}.service")))
            .unwrap_or_else(|e| panic!("{service}.service: {e}"))
    };
    let (server, honeypot) = (read("punchr-server"), read("punchr-honeypot"));
    let server_db = environment(&server, "PUNCHR_SERVER_DB").expect("PUNCHR_SERVER_DB set");
    let honeypot_db = environment(&honeypot, "PUNCHR_HONEYPOT_DB").expect("PUNCHR_HONEYPOT_DB set");
    assert_eq!(server_db, honeypot_db);
    // Both must be able to write it: the same (dynamic) user and state directory.
    for key in ["User", "StateDirectory"] {
        let value = |unit: &str| {
            unit.lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{key}=")).map(str::to_owned))
        };
        assert_eq!(value(&server), value(&honeypot), "{key}=");
        assert!(value(&server).is_some(), "{key}= is set");
    }
}
