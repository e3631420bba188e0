//! Short campaigns through real NATs with the real `punchr-server`, `punchr-honeypot` and
//! `punchr-client`, checking outcomes that follow from how the NATs behave, not from tuning:
//! port-restricted ↔ port-restricted over TCP and over QUIC succeeds; symmetric ↔ symmetric never does; a
//! client whose router drops UDP never succeeds over QUIC. Each campaign is configured with the
//! same flags a user passes to `punchr-lab run`; peers find each other only through the
//! honeypot, as in the field. One campaign stores into a PostgreSQL server inside the lab, the
//! others into SQLite.

mod common;

use common::run_campaign as campaign;
use punchr_lab::measured::{Cell, Verdict};
use punchr_report::nat_labels::CellTransport;

/// FAILED results a campaign that expects "never" must have before its zero successes count:
/// 3 of the 4 punches it asks for (one may end undecided on a busy machine).
const MIN_FAILED: u64 = 3;

fn cells_of<'a>(cells: &'a [Cell], client: &str, remote: Option<&str>) -> Vec<&'a Cell> {
    cells
        .iter()
        .filter(|c| c.client_nat == client && remote.is_none_or(|r| c.remote_nat == r))
        .collect()
}

/// On the lab's own PostgreSQL server (`--db postgres`); the other campaigns use SQLite.
#[test]
fn port_restricted_pairs_punch_over_tcp() {
    port_restricted_pairs_punch(CellTransport::Tcp, &["--db", "postgres"]);
}

/// Each host must be observed over QUIC as well as TCP to offer a QUIC address in its CONNECT;
/// a client bootstrapped over TCP alone failed every QUIC punch here (0 of 8).
#[test]
fn port_restricted_pairs_punch_over_quic() {
    port_restricted_pairs_punch(CellTransport::Quic, &[]);
}

/// Port-restricted ↔ port-restricted over `transport` succeeds in at least 90 % of 20 or more
/// decided punches, as NAT theory predicts.
fn port_restricted_pairs_punch(transport: CellTransport, extra: &[&str]) {
    let name = match transport {
        CellTransport::Tcp => "tcp",
        CellTransport::Quic => "quic",
        other => panic!("no campaign over {other:?}"),
    };
    let mut args = vec![
        "--scenario",
        "ci",
        "--client-nats",
        "port-restricted",
        "--clients",
        "2",
        "--remote-nats",
        "port-restricted",
        "--transports",
        name,
        "--punches",
        "22",
        "--duration",
        "150s",
    ];
    args.extend_from_slice(extra);
    let cells = campaign(&args);
    let pair = cells_of(&cells, "port-restricted", Some("port-restricted"));
    let cell = pair
        .iter()
        .find(|c| c.transport == transport)
        .unwrap_or_else(|| panic!("no port-restricted {name} punches: {cells:?}"));
    let decided = cell.outcomes.success + cell.outcomes.failed;
    assert!(decided >= 20, "only {decided} decided punches: {cell:?}");
    assert!(
        cell.outcomes.success * 10 >= decided * 9,
        "port-restricted ↔ port-restricted over {name} succeeded in only {} of {decided}: {cell:?}",
        cell.outcomes.success
    );
    assert_eq!(cell.verdict, Verdict::Agrees, "{cell:?}");
    assert!(cell.median_time_to_direct.is_some() && cell.median_relayed_rtt.is_some());
}

#[test]
fn symmetric_pairs_never_punch() {
    let cells = campaign(&[
        "--scenario",
        "ci",
        "--client-nats",
        "symmetric",
        "--clients",
        "2",
        "--remote-nats",
        "symmetric",
        "--transports",
        "tcp,quic",
        "--punches",
        "4",
        "--duration",
        "150s",
    ]);
    let pair = cells_of(&cells, "symmetric", Some("symmetric"));
    let punches: u64 = pair.iter().map(|c| c.outcomes.total()).sum();
    assert!(punches >= 4, "only {punches} symmetric punches: {cells:?}");
    // "Never" means something only of punches that were tried and failed: a broken lab whose
    // punches all end as NO_CONNECTION or NO_STREAM succeeds never too.
    let failed: u64 = pair.iter().map(|c| c.outcomes.failed).sum();
    assert!(
        failed >= MIN_FAILED,
        "only {failed} of {punches} symmetric punches were decided as FAILED: {pair:?}"
    );
    for cell in pair {
        assert_eq!(
            cell.outcomes.success, 0,
            "a symmetric pair punched: {cell:?}"
        );
        assert_ne!(cell.verdict, Verdict::Disagrees, "{cell:?}");
    }
}

#[test]
fn udp_blocked_clients_never_punch_over_quic() {
    let cells = campaign(&[
        "--scenario",
        "ci",
        "--client-nats",
        "udp-blocked",
        "--clients",
        "2",
        "--remote-nats",
        "port-restricted",
        "--transports",
        "quic",
        "--punches",
        "4",
        "--duration",
        "150s",
    ]);
    // Every punch was asked for over QUIC. A client may fall back to TCP when QUIC cannot work
    // (the server's filter is a preference), and then a punch may succeed over TCP; what must
    // never happen is a direct QUIC connection. Successes count for the transport of their
    // direct connection, so the QUIC cells must hold no success.
    let udp_blocked = cells_of(&cells, "udp-blocked", None);
    let punches: u64 = udp_blocked.iter().map(|c| c.outcomes.total()).sum();
    assert!(punches >= 4, "only {punches} punches: {cells:?}");
    // Punches that were tried over QUIC and failed there (a broken lab's NO_CONNECTION or
    // NO_STREAM would never succeed either).
    let failed_over_quic: u64 = udp_blocked
        .iter()
        .filter(|c| c.transport == CellTransport::Quic)
        .map(|c| c.outcomes.failed)
        .sum();
    assert!(
        failed_over_quic >= MIN_FAILED,
        "only {failed_over_quic} of {punches} punches failed over QUIC: {udp_blocked:?}"
    );
    for cell in udp_blocked {
        if cell.transport == CellTransport::Quic {
            assert_eq!(
                cell.outcomes.success, 0,
                "a direct QUIC connection through a UDP-blocking router: {cell:?}"
            );
        }
        assert_ne!(cell.verdict, Verdict::Disagrees, "{cell:?}");
    }
}
