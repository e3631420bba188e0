//! Building, running and removing labs: teardown on drop and on panic, `punchr-lab clean` after
//! a killed run, Ctrl-C and SIGTERM, the campaign runner, and preflight without root.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{build, leftover_namespaces, scenario, state_file, sys, LAB_BIN};
use punchr_lab::campaign::{self, Hooks, RunConfig};
use punchr_lab::state::ProcessId;
use punchr_lab::template::Context;
use punchr_lab::{Lab, Result};

fn alive(pid: i32) -> bool {
    ProcessId::of(pid).is_some()
}

/// Pids of the processes running in a run's namespaces.
fn pids_in(id: &str) -> Vec<i32> {
    let sys = sys();
    leftover_namespaces(id)
        .iter()
        .flat_map(|ns| sys.netns_pids(ns).unwrap_or_default())
        .collect()
}

#[test]
fn dropping_a_lab_removes_everything_even_when_its_owner_panics() {
    let (tx, rx) = mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let lab = build("small.toml");
        let pids = pids_in(lab.id());
        tx.send((lab.id().to_owned(), pids, lab.plan().namespaces()))
            .expect("send");
        panic!("a test failing half-way");
    })
    .join();
    assert!(outcome.is_err(), "the thread panicked");
    let (id, pids, namespaces) = rx.recv().expect("lab was built");
    println!(
        "lab {id}: {} namespaces, delayer pids {pids:?}",
        namespaces.len()
    );
    assert_eq!(
        pids.len(),
        2,
        "one delayer per delayed link (router r1, host pub)"
    );
    assert_eq!(leftover_namespaces(&id), Vec::<String>::new());
    assert!(pids.iter().all(|p| !alive(*p)), "delayers are gone");
    assert!(!state_file(&id).exists());
    // The panicking owner kept its logs (as a failed test does); this one passed.
    let _ = std::fs::remove_dir_all(common::runs_dir().join(&id));
}

/// Starts `punchr-lab up` on the small scenario and waits until it reports the lab is up.
fn start_up() -> (Child, String) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/small.toml");
    let mut child = Command::new(LAB_BIN)
        .args(["up", "--scenario"])
        .arg(&file)
        .arg("--runs-dir")
        .arg(common::runs_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting punchr-lab up");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let id = loop {
        let line = lines
            .next()
            .expect("punchr-lab up ended before the lab was up")
            .expect("reading its output");
        if let Some(rest) = line.strip_prefix("lab ") {
            break rest.split_whitespace().next().expect("id").to_owned();
        }
    };
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, id)
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "punchr-lab did not exit in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Makes sure a test that fails half-way leaves nothing: removes run `id` by hand.
struct Sweep(String);

impl Drop for Sweep {
    fn drop(&mut self) {
        let sys = sys();
        let state = punchr_lab::state::RunState {
            id: self.0.clone(),
            owner: ProcessId { pid: 0, start: 0 },
            namespaces: leftover_namespaces(&self.0),
            processes: Vec::new(),
            run_dir: Default::default(),
            guarded: true,
        };
        punchr_lab::state::tear_down(&sys, &state, &mut Default::default());
        let _ = std::fs::remove_file(state_file(&self.0));
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(common::runs_dir().join(&self.0));
        }
    }
}

#[test]
fn clean_removes_what_a_killed_run_left_behind() {
    let (mut child, id) = start_up();
    let _sweep = Sweep(id.clone());
    let namespaces = leftover_namespaces(&id);
    let pids = pids_in(&id);
    assert_eq!(namespaces.len(), 4, "{namespaces:?}");
    assert_eq!(pids.len(), 2, "two delayers: {pids:?}");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert_eq!(
        leftover_namespaces(&id).len(),
        4,
        "a killed run cannot clean up"
    );
    assert!(pids.iter().all(|p| alive(*p)), "its delayers outlive it");
    assert!(state_file(&id).exists());
    assert!(
        common::wan_guard(&id).complete(),
        "the killed run's WAN guard stays until clean"
    );

    let out = Command::new(LAB_BIN)
        .arg("clean")
        .output()
        .expect("punchr-lab clean");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("punchr-lab clean: {}", stdout.trim());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(leftover_namespaces(&id), Vec::<String>::new());
    assert!(pids.iter().all(|p| !alive(*p)), "delayers killed");
    assert!(!state_file(&id).exists());
    assert_eq!(
        common::wan_guard(&id),
        common::WanGuard::default(),
        "guard removed"
    );
}

#[test]
fn sigint_and_sigterm_remove_the_lab() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let (mut child, id) = start_up();
        let _sweep = Sweep(id.clone());
        let pids = pids_in(&id);
        let started = Instant::now();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = wait_exit(&mut child, Duration::from_secs(15));
        println!(
            "signal {signal}: exited {status} after {:?}",
            started.elapsed()
        );
        assert!(
            status.success(),
            "up exits cleanly after a signal: {status}"
        );
        assert_eq!(leftover_namespaces(&id), Vec::<String>::new());
        assert!(pids.iter().all(|p| !alive(*p)));
        assert!(!state_file(&id).exists());
    }
}

/// Hooks that check the lab while the campaign runs.
#[derive(Default)]
struct Check {
    started: bool,
    seen_by_relay: Option<String>,
}

impl Hooks for Check {
    fn started(&mut self, lab: &Lab, _: &Context) -> Result<()> {
        self.started = true;
        // The relay's echo server answers the remote (whose own echo server is only ready if
        // it got its port, 4000, from the templated environment).
        let to = format!("{}:3478", lab.plan().peer("relay").expect("relay").ip);
        let v = lab.probe("remote", &["tcp-connect", "--to", &to])?;
        self.seen_by_relay = v["peer_said"].as_str().map(str::to_owned);
        Ok(())
    }

    fn collect(&mut self, lab: &Lab, _: &Context) -> Result<Vec<String>> {
        let log = lab.log_dir().join("client.log");
        Ok(std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect())
    }
}

#[test]
fn a_campaign_starts_peers_in_order_and_stops_them_all() {
    let config = RunConfig {
        scenario: scenario("campaign.toml"),
        lab: common::options(),
        bin_dir: Path::new(LAB_BIN).parent().expect("bin dir").to_owned(),
        ready_timeout: Duration::from_secs(10),
        db: None,
    };
    let mut hooks = Check::default();
    let report = campaign::run(sys(), &config, &mut hooks).unwrap_or_else(|e| panic!("{e}"));
    print!("{report}");
    assert!(hooks.started);
    let office = report
        .plan
        .lines()
        .find(|l| l.starts_with("router office"))
        .expect("office in plan");
    let seen = hooks
        .seen_by_relay
        .as_deref()
        .expect("the relay saw the remote");
    assert!(
        office.contains(&format!(
            "public {} ",
            seen.split(':').next().unwrap_or_default()
        )),
        "{seen} vs {office}"
    );
    let ended = |name: &str| {
        report
            .processes
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} ran"))
    };
    assert_eq!(ended("relay").exit, None, "the relay ran until the end");
    assert_eq!(ended("remote").exit, None);
    assert_eq!(
        ended("client").exit.as_deref(),
        Some("exit status: 0"),
        "the client finished by itself"
    );
    let rtt: serde_json::Value =
        serde_json::from_str(report.results.last().expect("client output")).expect("json");
    assert_eq!(
        rtt["received"], 5,
        "the client reached the relay through its NAT: {rtt}"
    );
    assert!(ended("delay-home").log.exists());
    assert_eq!(leftover_namespaces(&report.run_id), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&report.run_dir);
    assert!(report
        .predictions
        .iter()
        .any(|p| p.pair.client.as_str() == "symmetric" && p.pair.remote.as_str() == "full-cone"));
}

#[test]
fn preflight_refuses_without_root_and_says_why() {
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", LAB_BIN, "run", "--scenario", "ci"])
        .output()
        .expect("runuser (util-linux; scripts/setup installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("as nobody: {}", stderr.trim());
    assert!(!out.status.success());
    assert!(stderr.contains("must run as root"), "{stderr}");
}

/// The lab's internet (11.0.0.0/8) belongs to someone, so while a lab exists the machine's own
/// namespace blackholes and drops it, and afterwards neither is left. Checked without sending a
/// packet: `ip route get` (the kernel's answer for a blackhole is EINVAL), the route table and the
/// nftables ruleset.
#[test]
fn the_wan_range_is_blackholed_and_dropped_here_while_a_lab_exists() {
    let lab = build("small.toml");
    let id = lab.id().to_owned();
    let guard = common::wan_guard(&id);
    assert!(guard.complete(), "{guard:?}");
    for ip in ["11.0.0.10", "11.0.1.10", "11.255.255.254"] {
        let out = Command::new("ip")
            .args(["route", "get", ip])
            .output()
            .expect("ip route get");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("Invalid argument") && stdout.is_empty(),
            "ip route get {ip} must hit the blackhole, got: {stdout}{stderr}"
        );
    }
    drop(lab);
    assert_eq!(common::wan_guard(&id), common::WanGuard::default());
}

/// Runs `punchr-lab up` on the small scenario with `runs_dir`, expecting it to refuse at once.
fn up_refuses(runs_dir: &Path) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/small.toml");
    let out = Command::new(LAB_BIN)
        .args(["up", "--scenario"])
        .arg(&file)
        .arg("--runs-dir")
        .arg(runs_dir)
        .stdin(Stdio::null())
        .output()
        .expect("running punchr-lab up");
    assert!(!out.status.success(), "punchr-lab up accepted {runs_dir:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_runs_dir_another_user_planted_is_refused_and_nothing_is_written_through_it() {
    let scratch = tempfile::tempdir().expect("tempdir");
    // What a local user does before root runs the lab: a symlink where the runs go, pointing
    // at a directory of their choosing.
    let victim = scratch.path().join("victim");
    std::fs::create_dir(&victim).expect("victim dir");
    let planted = scratch.path().join("runs");
    std::os::unix::fs::symlink(&victim, &planted).expect("symlink");
    let stderr = up_refuses(&planted);
    assert!(
        stderr.contains("refusing to use") && stderr.contains("symlink"),
        "{stderr}"
    );
    let written: Vec<_> = std::fs::read_dir(&victim).expect("victim").collect();
    assert!(
        written.is_empty(),
        "root wrote through the symlink: {written:?}"
    );

    // Or a directory of their own that anyone may write to.
    let theirs = scratch.path().join("theirs");
    std::fs::create_dir(&theirs).expect("dir");
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown to nobody");
    std::fs::set_permissions(&theirs, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
    let stderr = up_refuses(&theirs);
    assert!(
        stderr.contains("refusing to use") && stderr.contains("uid 65534"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&theirs).expect("dir").count(), 0);
}
