//! The interop campaign CI runs (issue 13, point 10): `punchr-client` behind a port-restricted
//! NAT punches remotes of the field's own implementations behind port-restricted NATs — go-libp2p
//! of each DCUtR role era (v0.40: roles swapped against the spec; v0.47: `legacyBehavior`;
//! v0.52: the spec's roles, switching on attempt 3) and a real kubo node — over TCP and over
//! QUIC, through the real server and honeypot, with the remotes found by the honeypot as in the
//! field. NAT theory predicts success for every cell, so each implementation and transport must
//! have enough decided punches, most of them successes, and all cells together nine successes in
//! ten. (Over TCP a punch against go-libp2p fails now and then: 10 of 133 in hand run 06ae57 with
//! three clients on a busy machine, 0 of 45 in run f29e58; each time go's next attempt superseded
//! ours twice and our third dial timed out. A per-cell 90 % on four punches would fail a good
//! share of CI runs for it; the README's runs of 20 or more per cell show each cell's rate.)
//!
//! The remotes are built outside the clone by `scripts/lab-peers`; the campaign fails, naming
//! the command, when one is missing. js-libp2p is left out: it is known to fail hole punching
//! (no `SO_REUSEPORT`), which the README's interop table shows; a CI check of it would only
//! assert that failure.

mod common;

use std::sync::Mutex;

use common::run_campaign;
use punchr_report::nat_labels::CellTransport;

/// Remote implementations of the campaign.
const IMPLEMENTATIONS: [&str; 4] = ["go-v0.40", "go-v0.47", "go-v0.52", "kubo"];

/// Decided punches (SUCCESS or FAILED) each implementation needs per transport.
const MIN_DECIDED: u64 = 3;

/// One campaign at a time: two labs side by side on two cores measure the machine.
static ONE_LAB: Mutex<()> = Mutex::new(());

#[test]
fn punchr_client_punches_every_go_libp2p_era_and_kubo_over_tcp_and_quic() {
    let _one = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
    let impls = IMPLEMENTATIONS.join(",");
    let per_cell = MIN_DECIDED.to_string();
    // Ends once every cell holds MIN_DECIDED decided punches (about 3 minutes with three clients); the duration is
    // only the bound for a broken run.
    let cells = run_campaign(&[
        "--scenario",
        "interop",
        "--remote-impls",
        &impls,
        "--client-nats",
        "port-restricted",
        "--clients",
        "3",
        "--hosts-per-client",
        "3",
        "--per-cell",
        &per_cell,
        "--duration",
        "10m",
    ]);
    let mut problems = Vec::new();
    let (mut successes, mut decided_total) = (0, 0);
    for implementation in IMPLEMENTATIONS {
        for transport in [CellTransport::Tcp, CellTransport::Quic] {
            let Some(cell) = cells.iter().find(|c| {
                c.remote_impl == implementation
                    && c.transport == transport
                    && c.client_nat == "port-restricted"
            }) else {
                problems.push(format!("{implementation} {transport:?}: no punches"));
                continue;
            };
            let decided = cell.outcomes.success + cell.outcomes.failed;
            successes += cell.outcomes.success;
            decided_total += decided;
            if decided < MIN_DECIDED {
                problems.push(format!(
                    "{implementation} {transport:?}: only {decided} decided punches: {cell:?}"
                ));
            } else if cell.outcomes.success == 0 {
                // Each cell must punch at all; its rate is judged over all cells together. On 3
                // punches "more than half" failed go-v0.40 over TCP (83 % in the long runs,
                // README) in about 1 CI run of 13; none of 3 has a chance of 0.5 % at that rate,
                // while a broken implementation or transport still gets nothing through.
                problems.push(format!(
                    "{implementation} {transport:?}: none of {decided} succeeded: {cell:?}"
                ));
            }
        }
    }
    if successes * 10 < decided_total * 9 {
        problems.push(format!(
            "{successes} of {decided_total} decided punches succeeded, under 90 %"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Behind a full-cone router (endpoint-independent filtering) the client's public address takes
/// any sender, and go-libp2p dials a peer's public addresses before it starts DCUtR: its plain
/// dial makes the direct connection before any hole punch, and the real client reports every
/// such punch as CONNECTION_REVERSED, never as a success or failure of DCUtR (issue 13, point
/// 9d, end to end).
#[test]
fn go_libp2p_reaches_a_full_cone_client_by_reversal() {
    let _one = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
    let cells = run_campaign(&[
        "--scenario",
        "interop",
        "--remote-impls",
        "go-v0.52",
        "--client-nats",
        "full-cone",
        // Three remotes: the server hands a pair out again only after 40 s, so with one remote
        // five punches took 208 s of CI, nearly all of it waiting.
        "--remotes",
        "3",
        "--punches",
        "5",
        "--duration",
        "5m",
    ]);
    let full_cone: Vec<_> = cells
        .iter()
        .filter(|c| c.client_nat == "full-cone")
        .collect();
    let reversed: u64 = full_cone
        .iter()
        .map(|c| c.outcomes.connection_reversed)
        .sum();
    let total: u64 = full_cone.iter().map(|c| c.outcomes.total()).sum();
    assert!(
        reversed >= 5 && reversed == total,
        "{reversed} of {total} punches reversed: {full_cone:?}"
    );
}
