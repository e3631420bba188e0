//! The NFQUEUE delayer, measured: round-trip times and loss across routers and public hosts
//! whose links add delay, jitter and loss (`links.toml`).

mod common;

use common::build;
use punchr_lab::probe::ECHO_PORT;
use serde_json::Value;

fn ms(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

fn show(what: &str, v: &Value) {
    println!(
        "{what:<34} sent {} received {} loss {:.3}  rtt min {:.2} median {:.2} p90 {:.2} max {:.2} ms",
        v["sent"], v["received"], ms(v, "loss"), ms(v, "min_ms"), ms(v, "median_ms"), ms(v, "p90_ms"), ms(v, "max_ms")
    );
}

#[test]
fn delay_applies_to_both_directions_of_a_link() {
    let lab = build("links.toml");
    lab.echo("echo");
    lab.echo("slow");
    let echo = lab.addr("echo", ECHO_PORT);
    let slow = lab.addr("slow", ECHO_PORT);
    let rtt = |from: &str, to: &str| {
        lab.run_probe(
            from,
            &["rtt", "--to", to, "--count", "30", "--interval", "10ms"],
        )
    };

    let base = rtt("h-d0", &echo);
    show("no delay (router d0)", &base);
    // Upper bounds are generous: a loaded 2-core machine delays any process; they only catch a
    // delayer that is grossly wrong. Lower bounds are exact: nothing is released early.
    assert!(ms(&base, "median_ms") < 20.0, "{base}");

    let d20 = rtt("h-d20", &echo);
    show("router d20 (20 ms each way)", &d20);
    assert_eq!(d20["received"], 30);
    assert!(
        ms(&d20, "min_ms") >= 40.0,
        "both directions are delayed: {d20}"
    );
    assert!(ms(&d20, "median_ms") < 80.0, "and not much more: {d20}");

    let host = rtt("h-d0", &slow);
    show("public host slow (15 ms each way)", &host);
    assert!(ms(&host, "min_ms") >= 30.0, "{host}");
    assert!(ms(&host, "median_ms") < 60.0, "{host}");

    let both = rtt("h-d20", &slow);
    show("router d20 to host slow", &both);
    assert!(ms(&both, "min_ms") >= 70.0, "{both}");
    assert!(ms(&both, "median_ms") < 140.0, "{both}");
}

#[test]
fn jitter_spreads_the_delay_around_its_mean() {
    let lab = build("links.toml");
    lab.echo("echo");
    let echo = lab.addr("echo", ECHO_PORT);
    let v = lab.run_probe(
        "h-jit",
        &["rtt", "--to", &echo, "--count", "100", "--interval", "5ms"],
    );
    show("router jit (20 ± 5 ms each way)", &v);
    assert_eq!(v["received"], 100);
    // The delayer never releases a packet early, so the minimum is a hard bound; the top is
    // judged by the 90th percentile, since a loaded 2-core machine can stall any process.
    assert!(ms(&v, "min_ms") >= 30.0, "{v}");
    assert!(ms(&v, "p90_ms") <= 100.0, "{v}");
    assert!(
        ms(&v, "p90_ms") - ms(&v, "min_ms") >= 5.0,
        "delays vary: {v}"
    );
    assert!(
        (36.0..80.0).contains(&ms(&v, "median_ms")),
        "centred near 40 ms: {v}"
    );
}

#[test]
fn loss_drops_the_configured_share_in_each_direction() {
    let lab = build("links.toml");
    lab.echo("echo");
    let echo = lab.addr("echo", ECHO_PORT);
    let v = lab.run_probe(
        "h-lossy",
        &["rtt", "--to", &echo, "--count", "1000", "--interval", "1ms"],
    );
    show("router lossy (20 % each way)", &v);
    // A round trip survives with probability 0.8 × 0.8 = 0.64, so 36 % are lost; with 1000
    // samples the standard deviation is 1.5 points.
    let loss = ms(&v, "loss");
    assert!(
        (0.30..=0.42).contains(&loss),
        "round-trip loss {loss}, expected about 0.36"
    );
}
