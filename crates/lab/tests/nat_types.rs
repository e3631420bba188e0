//! The NAT types, checked by behaviour: socket probes inside the namespaces of the
//! `nat-types.toml` lab (a host behind each router type, public hosts e1, e2, e3).

mod common;

use std::time::Duration;

use common::{build, ip_of, port_of, unix_ms, TestLab};
use punchr_lab::probe::ECHO_PORT;
use serde_json::Value;

/// The address an echo server reported, from a mapping probe's output.
fn observed(v: &Value, server: &str) -> Option<String> {
    v["observed"][server].as_str().map(str::to_owned)
}

fn servers(lab: &TestLab) -> (String, String) {
    (lab.addr("e1", ECHO_PORT), lab.addr("e2", ECHO_PORT))
}

#[test]
fn mapping_is_endpoint_independent_except_behind_a_symmetric_nat() {
    let lab = build("nat-types.toml");
    lab.echo("e1");
    lab.echo("e2");
    let (e1, e2) = servers(&lab);
    let both = format!("{e1},{e2}");
    let cases = [
        ("h-fc", "fc", true),
        ("h-pr1", "pr1", true),
        ("h-sym", "sym", false),
        ("h-dbl", "dbl", true),
    ];
    for (host, router, independent) in cases {
        for (n, probe) in ["udp-mapping", "tcp-mapping"].into_iter().enumerate() {
            let local = (40000 + n).to_string();
            let v = lab.run_probe(host, &[probe, "--servers", &both, "--local-port", &local]);
            let a = observed(&v, &e1).unwrap_or_else(|| panic!("{host} {probe}: no answer: {v}"));
            let b = observed(&v, &e2).unwrap_or_else(|| panic!("{host} {probe}: no answer: {v}"));
            println!("{host:<6} {probe:<12} local :{local} → seen by e1 as {a}, by e2 as {b}");
            assert_eq!(
                ip_of(&a),
                lab.public_ip(router),
                "{host}: NATed to its router"
            );
            assert_eq!(ip_of(&b), lab.public_ip(router));
            if independent {
                assert_eq!(a, b, "{host} {probe}: one mapping for both destinations");
                assert_eq!(
                    port_of(&a).to_string(),
                    local,
                    "{host} {probe}: port preserved"
                );
            } else {
                assert_ne!(
                    port_of(&a),
                    port_of(&b),
                    "{host} {probe}: a new port per destination"
                );
            }
        }
    }
}

#[test]
fn udp_blocked_drops_udp_but_passes_tcp() {
    let lab = build("nat-types.toml");
    lab.echo("e1");
    let e1 = lab.addr("e1", ECHO_PORT);
    let udp = lab.run_probe(
        "h-udpb",
        &["udp-mapping", "--servers", &e1, "--timeout", "1500ms"],
    );
    let tcp = lab.run_probe("h-udpb", &["tcp-mapping", "--servers", &e1]);
    println!("udp-blocked: udp {udp}, tcp {tcp}");
    assert_eq!(observed(&udp, &e1), None, "UDP must not pass");
    let seen = observed(&tcp, &e1).expect("TCP passes");
    assert_eq!(ip_of(&seen), lab.public_ip("udpb"));
    // Nor does UDP come in: the router drops it before any NAT rule could forward it.
    let rtt = lab.run_probe(
        "h-udpb",
        &["rtt", "--to", &e1, "--count", "3", "--timeout", "500ms"],
    );
    assert_eq!(rtt["received"], 0);
}

/// Punches toward e1 from `host`; once the mapping exists (the listener says so), e3 (a
/// stranger) and e1 from another port send to the port that was asked for, and then e1 from the
/// punched echo port sends to the mapping, which every NAT type lets through: the listener ends
/// on that datagram, so the strangers' datagrams were sent while it listened and after the
/// mapping existed. Returns who got through.
fn strangers_reaching(lab: &TestLab, host: &str, router: &str, port: u16) -> Value {
    let e1 = lab.addr("e1", ECHO_PORT);
    let asked = format!("{}:{port}", lab.public_ip(router));
    let dir = tempfile::tempdir().expect("a directory for the ready file");
    let ready = dir.path().join("mapped");
    let ready_arg = ready.display().to_string();
    std::thread::scope(|s| {
        let listener = s.spawn(|| {
            lab.run_probe(
                host,
                &[
                    "udp-listen",
                    "--local-port",
                    &port.to_string(),
                    "--punch",
                    &e1,
                    "--ready-file",
                    &ready_arg,
                    "--until",
                    "last",
                    // A guard against a hang; the listen ends on the last datagram.
                    "--wait",
                    "60s",
                ],
            )
        });
        let mapped = wait_for_file(&ready, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{host}: the punch toward e1 was never answered"));
        for (from, local) in [("e3", "5555"), ("e1", "5556")] {
            lab.run_probe(
                from,
                &[
                    "udp-send",
                    "--to",
                    &asked,
                    "--local-port",
                    local,
                    "--count",
                    "3",
                    "--interval",
                    "50ms",
                ],
            );
        }
        lab.run_probe(
            "e1",
            &[
                "udp-send",
                "--to",
                &mapped,
                "--local-port",
                &ECHO_PORT.to_string(),
                "--message",
                "last",
            ],
        );
        let v = listener.join().expect("listener probe");
        assert_eq!(
            v["until_seen"], true,
            "{host}: the last datagram, from the punched echo port, did not come through: {v}"
        );
        v
    })
}

/// The address written into `path` once it is there whole, or `None` after `timeout`.
fn wait_for_file(path: &std::path::Path, timeout: Duration) -> Option<String> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        match std::fs::read_to_string(path) {
            Ok(text) if text.parse::<std::net::SocketAddrV4>().is_ok() => return Some(text),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    None
}

#[test]
fn full_cone_lets_strangers_in_and_restricted_types_do_not() {
    let lab = build("nat-types.toml");
    lab.echo("e1");
    let e3 = lab.addr("e3", 5555);
    let e1_other_port = lab.addr("e1", 5556);
    let e1 = lab.addr("e1", ECHO_PORT);
    for (host, router, open) in [
        ("h-fc", "fc", true),
        ("h-pr1", "pr1", false),
        ("h-dbl", "dbl", false),
    ] {
        let v = strangers_reaching(&lab, host, router, 40010);
        println!(
            "{host:<6} punched toward e1; got datagrams from {}",
            v["received_from"]
        );
        assert!(
            v["received_from"][&e1].as_u64().is_some(),
            "{host}: the echo answer comes back"
        );
        assert_eq!(v["mapped"].as_str().map(port_of), Some(40010));
        let got = |who: &str| v["received_from"][who].as_u64().unwrap_or(0);
        if open {
            assert_eq!(
                got(&e3),
                3,
                "{host}: endpoint-independent filtering lets a stranger in"
            );
            assert_eq!(got(&e1_other_port), 3);
        } else {
            assert_eq!(got(&e3), 0, "{host}: a stranger is filtered");
            assert_eq!(
                got(&e1_other_port),
                0,
                "{host}: another port of the same host is filtered"
            );
        }
    }
    // Behind a symmetric NAT the mapping toward e1 is not the local port, and strangers sending
    // to the port that was asked for get nowhere either.
    let v = strangers_reaching(&lab, "h-sym", "sym", 40011);
    println!(
        "h-sym  punched toward e1 (mapped {}); got datagrams from {}",
        v["mapped"], v["received_from"]
    );
    assert_ne!(v["mapped"].as_str().map(port_of), Some(40011));
    assert_eq!(v["received_from"].as_object().map(|o| o.len()), Some(1));
}

#[test]
fn unsolicited_inbound_is_dropped_silently_never_refused() {
    let lab = build("nat-types.toml");
    let routers = ["fc", "pr1", "sym", "udpb", "dbl"];
    std::thread::scope(|s| {
        let probes: Vec<_> = routers
            .iter()
            .map(|router| {
                let to = format!("{}:40020", lab.public_ip(router));
                let lab = &lab;
                s.spawn(move || {
                    let tcp =
                        lab.run_probe("e3", &["tcp-connect", "--to", &to, "--timeout", "1500ms"]);
                    let udp = lab.run_probe("e3", &["udp-send", "--to", &to, "--wait", "1500ms"]);
                    (router, tcp, udp)
                })
            })
            .collect();
        for probe in probes {
            let (router, tcp, udp) = probe.join().expect("probe thread");
            println!(
                "unsolicited to {router:<5}: tcp {}, udp {}",
                tcp["result"], udp["result"]
            );
            assert_eq!(
                tcp["result"], "timeout",
                "{router}: a SYN gets no RST: {tcp}"
            );
            assert_eq!(
                udp["result"], "timeout",
                "{router}: a datagram gets no ICMP error: {udp}"
            );
        }
    });
    // The same probes do see refusals where they exist: a public host answers a SYN to a closed
    // port with RST and a datagram with ICMP port unreachable.
    let closed = lab.addr("e1", 40020);
    let tcp = lab.run_probe(
        "e3",
        &["tcp-connect", "--to", &closed, "--timeout", "1500ms"],
    );
    let udp = lab.run_probe("e3", &["udp-send", "--to", &closed, "--wait", "1500ms"]);
    assert_eq!(tcp["result"], "refused", "{tcp}");
    assert_eq!(udp["result"], "refused", "{udp}");
}

/// Both hosts connect to each other's mapped address from a fixed port at the same moment (plus
/// `skew` for the second); returns both results.
fn simultaneous_open(
    lab: &TestLab,
    a: (&str, &str),
    b: (&str, &str),
    port: u16,
    skew: u64,
) -> (Value, Value) {
    let at = unix_ms() + 1000;
    let port_s = port.to_string();
    let to_b = format!("{}:{port}", lab.public_ip(b.1));
    let to_a = format!("{}:{port}", lab.public_ip(a.1));
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            lab.run_probe(
                a.0,
                &[
                    "tcp-connect",
                    "--local-port",
                    &port_s,
                    "--to",
                    &to_b,
                    "--at",
                    &at.to_string(),
                    "--timeout",
                    "3s",
                    "--say",
                    a.0,
                ],
            )
        });
        let second = s.spawn(|| {
            let at = (at + skew).to_string();
            lab.run_probe(
                b.0,
                &[
                    "tcp-connect",
                    "--local-port",
                    &port_s,
                    "--to",
                    &to_a,
                    "--at",
                    &at,
                    "--timeout",
                    "3s",
                    "--say",
                    b.0,
                ],
            )
        });
        (first.join().expect("probe"), second.join().expect("probe"))
    })
}

#[test]
fn tcp_simultaneous_open_crosses_two_port_restricted_nats() {
    let lab = build("nat-types.toml");
    for (port, skew) in [(41000, 0), (41001, 300)] {
        let (a, b) = simultaneous_open(&lab, ("h-pr1", "pr1"), ("h-pr2", "pr2"), port, skew);
        println!(
            "pr ↔ pr, second SYN {skew} ms late: {} after {:.1} ms / {} after {:.1} ms",
            a["result"],
            a["elapsed_ms"].as_f64().unwrap_or(0.0),
            b["result"],
            b["elapsed_ms"].as_f64().unwrap_or(0.0)
        );
        assert_eq!(a["result"], "connected", "{a}");
        assert_eq!(b["result"], "connected", "{b}");
        assert_eq!(a["peer_said"], "h-pr2");
        assert_eq!(b["peer_said"], "h-pr1");
    }
    // Theory says a symmetric NAT defeats this: its SYN leaves from a port the other side does
    // not expect, and the SYN toward it hits a port it never mapped.
    let (a, b) = simultaneous_open(&lab, ("h-sym", "sym"), ("h-pr2", "pr2"), 41002, 0);
    println!("sym ↔ pr: {} / {}", a["result"], b["result"]);
    assert_eq!(a["result"], "timeout", "{a}");
    assert_eq!(b["result"], "timeout", "{b}");
}

/// The `counter packets N` of the masquerade rule in a namespace.
fn masquerade_count(lab: &TestLab, ns: &str) -> u64 {
    let rules = lab.sys().nft_list(ns).unwrap_or_else(|e| panic!("{e}"));
    rules
        .lines()
        .find(|l| l.contains("masquerade"))
        .and_then(|l| {
            l.split("counter packets ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no masquerade counter in {ns}:\n{rules}"))
}

#[test]
fn double_nat_translates_twice() {
    let lab = build("nat-types.toml");
    lab.echo("e1");
    let e1 = lab.addr("e1", ECHO_PORT);
    let router = lab.plan().router("dbl").expect("dbl").clone();
    let (cgn, home) = (&router.stages[0], &router.stages[1]);
    assert_eq!(masquerade_count(&lab, &cgn.ns), 0);
    let v = lab.run_probe(
        "h-dbl",
        &["udp-mapping", "--servers", &e1, "--local-port", "40030"],
    );
    let seen = observed(&v, &e1).expect("an answer through both NATs");
    println!(
        "double: {} → home router {} (wan {}) → carrier-grade NAT (wan {}) → e1 saw {seen}",
        lab.ip("h-dbl"),
        home.ns,
        home.wan_ip,
        cgn.wan_ip
    );
    assert_eq!(ip_of(&seen), cgn.wan_ip, "the WAN sees the outer NAT");
    assert_ne!(ip_of(&seen), home.wan_ip);
    assert_eq!(port_of(&seen), 40030, "both NATs preserve the port");
    assert_eq!(
        masquerade_count(&lab, &home.ns),
        1,
        "the home router translated the flow"
    );
    assert_eq!(
        masquerade_count(&lab, &cgn.ns),
        1,
        "and so did the carrier-grade NAT"
    );
}
