//! `punchr-lab`'s logs (issue 17, point 7): with its output going to a file, as the lab's own
//! peers' logs do, they are plain text without escape codes, or JSON objects naming each event's
//! target and name with `PUNCHR_LAB_LOG_FORMAT=json`. The lab's relay runs on loopback here, no
//! namespaces needed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use punchr_testutil::free_port;
use punchr_testutil::logs::{assert_plain_text, json_events, json_lines};
use punchr_types::log_target::LAB;

/// Runs `punchr-lab relay` on 127.0.0.1 until it logged that it listens, then stops it;
/// returns what it wrote. `NO_COLOR` is unset: the binary alone decides that a file gets no
/// colours.
fn relay_log(log_format: Option<&str>) -> String {
    let logs = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_punchr-lab"));
    command
        .args(["relay", "--listen-ip", "127.0.0.1", "--seed", "logs"])
        .args(["--port", &free_port().to_string()])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("PUNCHR_LAB_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(logs.reopen().unwrap())
        .stderr(logs.reopen().unwrap());
    if let Some(format) = log_format {
        command.env("PUNCHR_LAB_LOG_FORMAT", format);
    }
    let mut relay = command.spawn().expect("start punchr-lab relay");
    let deadline = Instant::now() + Duration::from_secs(60);
    let logged = loop {
        let logged = std::fs::read_to_string(logs.path()).unwrap();
        if logged.contains("listening") {
            break logged;
        }
        assert!(
            relay.try_wait().unwrap().is_none(),
            "the relay exited:\n{logged}"
        );
        assert!(
            Instant::now() < deadline,
            "the relay did not listen:\n{logged}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    relay.kill().unwrap();
    relay.wait().unwrap();
    logged
}

#[test]
fn logs_are_plain_text_in_a_file_and_json_on_request() {
    let text = relay_log(None);
    assert_plain_text(&text);
    assert!(
        text.lines()
            .any(|line| line.contains("INFO punchr::lab: relay running")
                && line.contains(r#"event="relay_running""#)),
        "{text}"
    );
    let json = relay_log(Some("json"));
    let lines = json_lines(&json);
    assert_eq!(json_events(&lines, LAB, "relay_running").len(), 1, "{json}");
    assert!(!json_events(&lines, LAB, "listening").is_empty(), "{json}");
}
