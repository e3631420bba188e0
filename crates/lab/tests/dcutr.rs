//! Stock rust-libp2p on both sides of a real hole punch through the lab's NAT routers: the
//! relay, bootstrap server and remote peers of `dcutr.toml` run as scenario commands, and the
//! test dials the remotes through the relay from behind a port-restricted NAT (DCUtR side A).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{build, LAB_BIN};
use punchr_lab::campaign::{start_role, template_context, START_ORDER};
use punchr_lab::template::peer_id;
use serde_json::Value;

fn punch(lab: &common::TestLab, target: &str) -> Value {
    common::stock_dial(lab, "dialer", target, &format!("dialer-{target}"))
}

#[test]
fn stock_dcutr_punches_port_restricted_but_not_symmetric() {
    let lab = build("dcutr.toml");
    let bin_dir = Path::new(LAB_BIN).parent().expect("bin dir").to_owned();
    let context = template_context(&lab, bin_dir).unwrap_or_else(|e| panic!("{e}"));
    for role in START_ORDER {
        start_role(&lab, &context, role, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    }
    let pr = punch(&lab, "remote-pr");
    println!("port-restricted ↔ port-restricted over TCP: {pr}");
    assert_eq!(pr["result"], "direct", "{pr}");
    let public = lab.public_ip("rem-pr").to_string();
    assert!(
        pr["direct_address"]
            .as_str()
            .is_some_and(|a| a.contains(&public)),
        "{pr}"
    );

    let sym = punch(&lab, "remote-sym");
    println!("port-restricted ↔ symmetric over TCP: {sym}");
    assert_eq!(
        sym["result"], "relayed-only",
        "theory: no punch through a symmetric NAT: {sym}"
    );

    // The remote peers act as DHT clients: their lookups reach the bootstrap server.
    let log = std::fs::read_to_string(lab.log_dir().join("remote-pr.log")).expect("log");
    assert!(log.contains(&peer_id("boot1")), "remote-pr met boot1");
}
