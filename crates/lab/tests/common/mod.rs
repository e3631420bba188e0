//! Shared helpers of the lab's integration tests. They build real namespaces, so they need root
//! (CI runs them as root) and the tools `scripts/setup` installs. Every lab is torn down by a
//! drop guard, also when the test panics.

#![allow(dead_code, unreachable_pub)]

use std::net::Ipv4Addr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use punchr_lab::netns::{self, Sys};
use punchr_lab::preflight::{self, Needs};
use punchr_lab::probe::ECHO_PORT;
use punchr_lab::scenario::Ready;
use punchr_lab::state::{self, NETNS_PREFIX, STATE_DIR};
use punchr_lab::{Lab, LabOptions, Scenario};
use serde_json::Value;

/// The `punchr-lab` binary Cargo built for these tests.
pub const LAB_BIN: &str = env!("CARGO_BIN_EXE_punchr-lab");

/// The system tools, or a panic that says how to get them.
pub fn sys() -> Sys {
    match preflight::check(Needs { delayer: true }) {
        Ok(tools) => Sys::new(tools),
        Err(e) => panic!(
            "the lab's integration tests need root and the lab's tools (CI runs them as root; \
             install the tools with scripts/setup):\n{e}"
        ),
    }
}

/// A scenario from `tests/scenarios/`.
pub fn scenario(file: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(file);
    Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Where the tests' run directories go.
pub fn runs_dir() -> PathBuf {
    std::env::temp_dir().join("punchr-lab-tests")
}

/// Lab options for tests.
pub fn options() -> LabOptions {
    LabOptions {
        runs_dir: runs_dir(),
        ..LabOptions::new(LAB_BIN)
    }
}

/// Runs `punchr-lab run ARGS` in-process, as a user's command line would, prints its report,
/// checks that it left no namespace and wrote an HTML report with a chart, and returns the
/// measured cells.
pub fn run_campaign(args: &[&str]) -> Vec<punchr_lab::measured::Cell> {
    use clap::Parser;
    use punchr_lab::cli::{Cli, Command};
    build_punchr_binaries();
    let cli = Cli::try_parse_from(["punchr-lab", "run"].iter().chain(args))
        .unwrap_or_else(|e| panic!("{e}"));
    let Command::Run(args) = cli.command else {
        unreachable!("parsed as run")
    };
    let config = punchr_lab::commands::run_config(&args, options(), bin_dir())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut collector =
        punchr_lab::collector::Collector::for_campaign(&config.scenario.campaign, None)
            .unwrap_or_else(|e| panic!("{e}"));
    let report =
        punchr_lab::campaign::run(sys(), &config, &mut collector).unwrap_or_else(|e| panic!("{e}"));
    println!("{report}");
    assert!(
        leftover_namespaces(&report.run_id).is_empty(),
        "the campaign left namespaces behind"
    );
    // The run directory's scenario repeats the campaign: the flags applied, the seed fixed.
    let repeat = punchr_lab::Scenario::from_file(&report.scenario_file)
        .unwrap_or_else(|e| panic!("the run's scenario.toml: {e}"));
    let mut expected = config.scenario.clone();
    expected.campaign.seed = Some(report.seed);
    assert_eq!(
        repeat, expected,
        "scenario.toml is not the campaign that ran"
    );
    let html = collector.html_written.expect("HTML report written");
    let page = std::fs::read_to_string(&html).expect("read the HTML report");
    assert!(page.contains("<svg"), "the HTML report has a chart");
    collector.cells
}

/// Namespaces of run `id` that still exist.
pub fn leftover_namespaces(id: &str) -> Vec<String> {
    let prefix = format!("{NETNS_PREFIX}{id}-");
    netns::list_netns()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// The state file of run `id`.
pub fn state_file(id: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{id}.json"))
}

/// A lab that is torn down when dropped, also on panic, and that checks nothing of it is left.
pub struct TestLab(Option<Lab>);

impl Deref for TestLab {
    type Target = Lab;

    fn deref(&self) -> &Lab {
        self.0.as_ref().expect("lab present until drop")
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let Some(lab) = self.0.take() else { return };
        let id = lab.id().to_owned();
        let run_dir = lab.run_dir().to_owned();
        let removed = lab.tear_down();
        // Logs are kept when the test failed, for a look at what happened.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(run_dir);
        }
        let left = leftover_namespaces(&id);
        let clean = left.is_empty() && removed.errors.is_empty() && !state_file(&id).exists();
        if !clean {
            let message = format!(
                "lab {id} left things behind: namespaces {left:?}, errors {:?}",
                removed.errors
            );
            if std::thread::panicking() {
                eprintln!("{message}");
            } else {
                panic!("{message}");
            }
        }
    }
}

/// Builds a lab from a scenario file in `tests/scenarios/` (after removing what dead runs left).
pub fn build(file: &str) -> TestLab {
    build_from(&scenario(file))
}

/// Builds a lab from a scenario.
pub fn build_from(scenario: &Scenario) -> TestLab {
    let sys = sys();
    state::clean(&sys, false);
    TestLab(Some(
        Lab::build(sys, scenario, options()).unwrap_or_else(|e| panic!("building the lab: {e}")),
    ))
}

impl TestLab {
    /// Starts an echo server on `peer` (UDP and TCP port 3478) and waits until it listens.
    pub fn echo(&self, peer: &str) {
        let port = ECHO_PORT.to_string();
        let name = format!("echo-{peer}");
        self.spawn_lab(peer, &name, &["probe", "echo", "--port", &port])
            .unwrap_or_else(|e| panic!("{e}"));
        for ready in [Ready::Udp(ECHO_PORT), Ready::Tcp(ECHO_PORT)] {
            self.wait_ready(&name, &ready, std::time::Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// A peer's own address.
    pub fn ip(&self, peer: &str) -> Ipv4Addr {
        self.plan().peer(peer).expect("peer in scenario").ip
    }

    /// The address the WAN sees for a router (its outermost stage).
    pub fn public_ip(&self, router: &str) -> Ipv4Addr {
        self.plan()
            .router(router)
            .expect("router in scenario")
            .public_ip()
    }

    /// `ip:port` of a peer's own address.
    pub fn addr(&self, peer: &str, port: u16) -> String {
        format!("{}:{port}", self.ip(peer))
    }

    /// Runs a probe and returns its JSON, panicking with the probe's error.
    pub fn run_probe(&self, peer: &str, args: &[&str]) -> Value {
        self.probe(peer, args)
            .unwrap_or_else(|e| panic!("probe {args:?} in {peer}: {e}"))
    }

    /// `count` UDP round trips from `peer` to the echo server at `to` (`ip:port`), one every
    /// `interval`: the `rtt` probe's JSON (sent, received, loss, min/median/p90/max in ms).
    pub fn rtt(&self, peer: &str, to: &str, count: u32, interval: &str) -> Value {
        let count = count.to_string();
        self.run_probe(
            peer,
            &["rtt", "--to", to, "--count", &count, "--interval", interval],
        )
    }
}

/// A figure of an `rtt` probe's JSON, in ms (or the loss share).
pub fn rtt_figure(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// One line with an `rtt` probe's figures.
pub fn show_rtt(what: &str, v: &Value) {
    let ms = |key| rtt_figure(v, key);
    println!(
        "{what:<34} sent {} received {} loss {:.3}  rtt min {:.2} median {:.2} p90 {:.2} max {:.2} ms",
        v["sent"], v["received"], ms("loss"), ms("min_ms"), ms("median_ms"), ms("p90_ms"), ms("max_ms")
    );
}

/// Now, as Unix milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// The port of an `ip:port` string.
pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("ip:port")
}

/// The IP of an `ip:port` string.
pub fn ip_of(addr: &str) -> Ipv4Addr {
    addr.split(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("ip:port")
}

/// The directory holding `punchr-lab` and the other Punchr binaries the lab runs.
pub fn bin_dir() -> PathBuf {
    Path::new(LAB_BIN).parent().expect("bin dir").to_owned()
}

/// Builds the Punchr binaries a campaign runs, in the profile of this `punchr-lab`, unless
/// `scripts/test` says it has just built every binary of the workspace
/// (`PUNCHR_TEST_WORKSPACE_BUILT`): `cargo build -p …` resolves features apart from
/// `cargo test --workspace`, so it would rebuild them (minutes of CI) and replace the binaries
/// other tests are running.
pub fn build_punchr_binaries() {
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        if std::env::var_os("PUNCHR_TEST_WORKSPACE_BUILT").is_some() {
            let dir = bin_dir();
            for binary in ["punchr-server", "punchr-client", "punchr-honeypot"] {
                assert!(
                    dir.join(binary).is_file(),
                    "PUNCHR_TEST_WORKSPACE_BUILT is set but {} is missing",
                    dir.join(binary).display()
                );
            }
            return;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        command.args([
            "build",
            "--bins",
            "-p",
            "punchr-server",
            "-p",
            "punchr-client",
        ]);
        command.args(["-p", "punchr-honeypot"]);
        if bin_dir().ends_with("release") {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build");
        assert!(status.success(), "building the Punchr binaries failed");
    });
}

/// Dials `target` through the relay from the namespace of `from` with stock rust-libp2p DCUtR
/// (`punchr-lab remote-peer --dial`) as identity `seed`; returns what the dialer printed.
pub fn stock_dial(lab: &Lab, from: &str, target: &str, seed: &str) -> Value {
    let args = dial_args(lab, target, seed);
    let args: Vec<&str> = std::iter::once("remote-peer")
        .chain(args.iter().map(String::as_str))
        .collect();
    let out = lab
        .exec(from, &args, std::time::Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Like [`stock_dial`], with another implementation's remote program (one `scripts/lab-peers`
/// built, which takes `remote-peer`'s flags and prints the same outcome line).
pub fn foreign_dial(lab: &Lab, program: &Path, from: &str, target: &str, seed: &str) -> Value {
    assert!(
        program.is_file(),
        "{} is missing: build it with scripts/lab-peers",
        program.display()
    );
    let output = std::process::Command::new("timeout")
        .args(["--kill-after=5", "40"])
        .arg(&lab.sys().tools().ip)
        .args([
            "netns",
            "exec",
            lab.ns(from).unwrap_or_else(|e| panic!("{e}")),
        ])
        .arg(program)
        .args(dial_args(lab, target, seed))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    let out = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(out.lines().last().unwrap_or_default()).unwrap_or_else(|e| {
        panic!(
            "{e}: {} printed {out:?}, stderr {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// `--seed SEED --relay RELAY --dial RELAY/p2p-circuit/p2p/TARGET --dial-timeout 15s`.
fn dial_args(lab: &Lab, target: &str, seed: &str) -> Vec<String> {
    let relay_ip = lab.plan().peer("relay").expect("a relay").ip;
    let relay = format!(
        "/ip4/{relay_ip}/tcp/4001/p2p/{}",
        punchr_lab::template::peer_id("relay")
    );
    let circuit = format!(
        "{relay}/p2p-circuit/p2p/{}",
        punchr_lab::template::peer_id(target)
    );
    [
        "--seed",
        seed,
        "--relay",
        &relay,
        "--dial",
        &circuit,
        "--dial-timeout",
        "15s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Where `scripts/lab-peers` puts its builds (the script's default, or PUNCHR_LAB_PEERS_DIR).
pub fn peers_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PUNCHR_LAB_PEERS_DIR") {
        return dir.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
    cache.join("punchr-lab/peers")
}

/// What of a run's WAN guard exists in the machine's own namespace.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WanGuard {
    /// Its blackhole route for 11.0.0.0/8 (the route's JSON).
    pub route: Option<String>,
    /// Its nftables table, with drop rules for the range in output, forward and input.
    pub drops: Vec<String>,
}

impl WanGuard {
    /// Route and all three drop chains present.
    pub fn complete(&self) -> bool {
        self.route.is_some() && self.drops.len() == 3
    }
}

/// Looks up run `id`'s WAN guard without sending anything.
pub fn wan_guard(id: &str) -> WanGuard {
    use std::process::Command;
    let metric = punchr_lab::guard::metric(id).expect("a run id");
    let routes = Command::new("ip")
        .args(["-j", "route", "show", "table", "all", "root", "11.0.0.0/8"])
        .output()
        .expect("ip route show");
    let routes: Vec<Value> = serde_json::from_slice(&routes.stdout).unwrap_or_default();
    let route = routes
        .iter()
        .find(|r| r["type"] == "blackhole" && r["metric"] == metric && r["dst"] == "11.0.0.0/8")
        .map(Value::to_string);
    let table = Command::new("nft")
        .args(["list", "table", "ip", &punchr_lab::guard::table(id)])
        .output()
        .expect("nft list table");
    let text = String::from_utf8_lossy(&table.stdout);
    let mut drops = Vec::new();
    let mut chain = "";
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("chain ") {
            chain = name.trim_end_matches(" {");
        } else if line.contains("11.0.0.0/8")
            && line.ends_with("drop")
            && !drops.iter().any(|d: &String| d.starts_with(chain))
        {
            drops.push(format!("{chain}: {line}"));
        }
    }
    WanGuard { route, drops }
}
