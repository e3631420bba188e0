//! The NFQUEUE delayer's behaviour: delay, jitter and loss across routers and public hosts whose
//! links add them (`links.toml`). The bounds here are the ones a loaded machine cannot break: the
//! delayer never releases a packet early, so each minimum is exact, and loss is a share of the
//! packets, not a time. How close the round trips come to the configured delays (medians, p90,
//! the top) is a figure of the machine, printed by the bench `benches/link_delay.rs`.

mod common;

use common::{build, rtt_figure as ms, show_rtt as show};
use punchr_lab::probe::ECHO_PORT;

#[test]
fn delay_applies_to_both_directions_of_a_link() {
    let lab = build("links.toml");
    lab.echo("echo");
    lab.echo("slow");
    let echo = lab.addr("echo", ECHO_PORT);
    let slow = lab.addr("slow", ECHO_PORT);

    let base = lab.rtt("h-d0", &echo, 30, "10ms");
    show("no delay (router d0)", &base);
    assert_eq!(base["received"], 30, "a link without loss: {base}");

    // 20 ms each way: a delayer that held only one direction would allow 20 ms.
    let d20 = lab.rtt("h-d20", &echo, 30, "10ms");
    show("router d20 (20 ms each way)", &d20);
    assert_eq!(d20["received"], 30);
    assert!(
        ms(&d20, "min_ms") >= 40.0,
        "both directions are delayed: {d20}"
    );

    let host = lab.rtt("h-d0", &slow, 30, "10ms");
    show("public host slow (15 ms each way)", &host);
    assert_eq!(host["received"], 30);
    assert!(ms(&host, "min_ms") >= 30.0, "a host's own link: {host}");

    let both = lab.rtt("h-d20", &slow, 30, "10ms");
    show("router d20 to host slow", &both);
    assert_eq!(both["received"], 30);
    assert!(ms(&both, "min_ms") >= 70.0, "the delays add up: {both}");
}

#[test]
fn jitter_spreads_the_delay_around_its_mean() {
    let lab = build("links.toml");
    lab.echo("echo");
    let echo = lab.addr("echo", ECHO_PORT);
    let v = lab.rtt("h-jit", &echo, 100, "5ms");
    show("router jit (20 ± 5 ms each way)", &v);
    assert_eq!(v["received"], 100);
    // 20 ± 5 ms each way: nothing under 30 ms, and some round trips under the 40 ms a delayer
    // without jitter would hold every one of them. A loaded machine only adds time, so neither
    // bound can fail for it; it could hide missing jitter behind a spread of stalls, which is
    // why the early round trips, not the spread, show the jitter.
    assert!(ms(&v, "min_ms") >= 30.0, "{v}");
    assert!(
        ms(&v, "min_ms") < 39.0,
        "jitter shortens some delays below the mean: {v}"
    );
}

#[test]
fn loss_drops_the_configured_share_in_each_direction() {
    let lab = build("links.toml");
    lab.echo("echo");
    let echo = lab.addr("echo", ECHO_PORT);
    let v = lab.rtt("h-lossy", &echo, 1000, "1ms");
    show("router lossy (20 % each way)", &v);
    // A round trip survives with probability 0.8 × 0.8 = 0.64, so 36 % are lost; with 1000
    // samples the standard deviation is 1.5 points.
    let loss = ms(&v, "loss");
    assert!(
        (0.30..=0.42).contains(&loss),
        "round-trip loss {loss}, expected about 0.36"
    );
}
