//! The campaign report: for each (client NAT, remote NAT, transport) the punches the server
//! stored, their outcomes, the success rate with its 95 % interval, what [`theory`] predicts,
//! and the median time from relayed to direct connection; cells where the measurement
//! contradicts the prediction are flagged. Rendered as a text table and as a self-contained HTML
//! page with an SVG chart.

use std::fmt::Write;
use std::time::Duration;

use punchr_report::nat_labels::{CellTransport, ImplementationRow, NatCell};
use punchr_report::{OutcomeCounts, Rate};
use punchr_store::Outcome;
use serde::Serialize;

use crate::implementation::Implementation;
use crate::nat::NatType;
use crate::theory::{self, Opening, Pair, Prediction, Transport};

/// Below this upper bound of the 95 % interval, a pair theory says succeeds counts as
/// contradicting it: the interval rules out the high success rate an open path should give.
pub const SUCCESS_EXPECTED_UPPER_BOUND: f64 = 0.9;

/// A 95 % interval wider than this gets no verdict: with so few decided punches it cannot tell
/// a working pair from a failing one (5 of 5 spans 57–100 %, 10 of 10 spans 72–100 %).
pub const WIDEST_DECIDING_INTERVAL: f64 = 0.35;

/// How a cell's measurement compares with the prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The measurement is what theory predicts.
    Agrees,
    /// The measurement contradicts theory (flagged).
    Disagrees,
    /// No punch ended in SUCCESS or FAILED, so there is nothing to compare.
    NoData,
    /// Too few decided punches: the interval is wider than [`WIDEST_DECIDING_INTERVAL`] and does
    /// not rule the prediction out either.
    Wide,
    /// Theory has nothing to say (a NAT type or transport the lab did not label).
    NoPrediction,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The client host's NAT type.
    pub client_nat: String,
    /// The remote's NAT type.
    pub remote_nat: String,
    /// The remote's libp2p implementation.
    pub remote_impl: String,
    /// The transport.
    pub transport: CellTransport,
    /// Punches by outcome.
    pub outcomes: OutcomeCounts,
    /// SUCCESS / (SUCCESS + FAILED) with its Wilson 95 % interval.
    pub rate: Rate,
    /// What theory predicts, if it applies.
    pub predicted: Option<Prediction>,
    /// Which directions theory says open, if it knows the NAT types.
    pub opening: Option<Opening>,
    /// Theory expects the remote's plain dial to reach the client before DCUtR
    /// (CONNECTION_REVERSED instead of decided punches).
    pub reversal_expected: bool,
    /// The rule that decided the prediction, named.
    pub reason: String,
    /// Measured against predicted.
    pub verdict: Verdict,
    /// Median time from relayed to direct connection, over the successes.
    #[serde(with = "optional_millis")]
    pub median_time_to_direct: Option<Duration>,
    /// Median relayed RTT the DCUtR initiator measured in the successful attempts.
    #[serde(with = "optional_millis")]
    pub median_relayed_rtt: Option<Duration>,
}

mod optional_millis {
    use std::time::Duration;

    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_f64(d.as_secs_f64() * 1e3),
            None => serializer.serialize_none(),
        }
    }
}

/// Compares a measured rate with a prediction.
pub fn judge(predicted: Option<Prediction>, rate: &Rate) -> Verdict {
    let (Some(predicted), Some([_, upper])) = (predicted, rate.ci95) else {
        return if predicted.is_none() {
            Verdict::NoPrediction
        } else {
            Verdict::NoData
        };
    };
    let contradicts = match predicted {
        // Theory says no packet gets through: a single success contradicts it.
        Prediction::Failure => rate.successes > 0,
        Prediction::Success => upper < SUCCESS_EXPECTED_UPPER_BOUND,
    };
    let [lower, upper] = rate.ci95.unwrap_or([0.0, 1.0]);
    if contradicts {
        Verdict::Disagrees
    } else if upper - lower > WIDEST_DECIDING_INTERVAL {
        Verdict::Wide
    } else {
        Verdict::Agrees
    }
}

/// Puts the prediction next to each measured cell, for clients that chose their handshake roles
/// by `strategy`.
pub fn cells(measured: Vec<NatCell>, strategy: punchr_dcutr::RoleStrategy) -> Vec<Cell> {
    measured.into_iter().map(|m| cell(m, strategy)).collect()
}

fn cell(measured: NatCell, strategy: punchr_dcutr::RoleStrategy) -> Cell {
    let transport = match measured.transport {
        CellTransport::Tcp => Some(Transport::Tcp),
        CellTransport::Quic => Some(Transport::Quic),
        CellTransport::Unknown => None,
    };
    let client: Option<NatType> = measured.client_nat.parse().ok();
    let remote: Option<NatType> = measured.remote_nat.parse().ok();
    let remote_impl: Option<Implementation> = measured.remote_impl.parse().ok();
    let theory = match (client, remote, transport, remote_impl) {
        (Some(client), Some(remote), Some(transport), Some(remote_impl)) => {
            Some(theory::predict(Pair {
                client,
                remote,
                transport,
                remote_impl,
                strategy,
            }))
        }
        _ => None,
    };
    let predicted = theory.as_ref().and_then(|t| t.prediction);
    let rate = measured.success_rate();
    let nanos = |n: Option<i64>| n.map(|n| Duration::from_nanos(n.max(0) as u64));
    Cell {
        verdict: judge(predicted, &rate),
        client_nat: measured.client_nat,
        remote_nat: measured.remote_nat,
        remote_impl: measured.remote_impl,
        transport: measured.transport,
        outcomes: measured.outcomes,
        rate,
        predicted,
        opening: theory.as_ref().map(|t| t.opening),
        reversal_expected: theory.as_ref().is_some_and(|t| t.reversal),
        reason: theory.map_or_else(
            || "NAT type, transport or implementation unknown".to_owned(),
            |t| t.rule,
        ),
        median_time_to_direct: nanos(measured.median_time_to_direct_ns),
        median_relayed_rtt: nanos(measured.median_relayed_rtt_ns),
    }
}

fn millis(d: Option<Duration>) -> String {
    d.map_or("–".to_owned(), |d| {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    })
}

/// The other outcomes of a cell, e.g. `NO_STREAM 2, CANCELLED 1`.
fn other_outcomes(outcomes: &OutcomeCounts) -> String {
    let parts: Vec<String> = Outcome::ALL
        .iter()
        .filter(|o| !matches!(o, Outcome::Success | Outcome::Failed))
        .filter(|&&o| outcomes.get(o) > 0)
        .map(|&o| format!("{} {}", o.as_str(), outcomes.get(o)))
        .collect();
    if parts.is_empty() {
        "–".to_owned()
    } else {
        parts.join(", ")
    }
}

fn verdict_mark(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Agrees => "ok",
        Verdict::Disagrees => "DISAGREES",
        Verdict::NoData => "no data",
        Verdict::Wide => "too few",
        Verdict::NoPrediction => "–",
    }
}

fn predicted_text(p: Option<Prediction>) -> String {
    p.map_or("–".to_owned(), |p| p.to_string())
}

/// The report as a text table, one line per cell, followed by a legend.
pub fn render_text(cells: &[Cell]) -> String {
    let mut out = String::new();
    if cells.is_empty() {
        out.push_str("no labelled punches were stored: no client got a peer to hole punch\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<16} {:<16} {:<8} {:<5} {:>7} {:>7} {:>6}  {:<28} {:<8} {:<10} {:>9}  other outcomes",
        "client NAT",
        "remote NAT",
        "impl",
        "trans",
        "punches",
        "success",
        "failed",
        "success rate [95 % CI]",
        "theory",
        "verdict",
        "t→direct"
    );
    for c in cells {
        let _ = writeln!(
            out,
            "{:<16} {:<16} {:<8} {:<5} {:>7} {:>7} {:>6}  {:<28} {:<8} {:<10} {:>9}  {}",
            c.client_nat,
            c.remote_nat,
            c.remote_impl,
            c.transport.as_str(),
            c.outcomes.total(),
            c.outcomes.success,
            c.outcomes.failed,
            c.rate.describe(),
            predicted_text(c.predicted),
            verdict_mark(c.verdict),
            millis(c.median_time_to_direct),
            other_outcomes(&c.outcomes),
        );
    }
    let flagged = cells
        .iter()
        .filter(|c| c.verdict == Verdict::Disagrees)
        .count();
    let _ = writeln!(
        out,
        "\nsuccess rate = SUCCESS / (SUCCESS + FAILED), Wilson 95 % interval; t→direct = median \
         time from the relayed connection to the direct one.\nDISAGREES: theory predicts failure \
         and a punch succeeded, or predicts success and the interval stays below {:.0} %. \
         {flagged} of {} cells disagree.",
        SUCCESS_EXPECTED_UPPER_BOUND * 100.0,
        cells.len()
    );
    out
}

/// Successes by attempt number, e.g. `1:18 2:1 3:0`.
fn by_attempt(row: &ImplementationRow) -> String {
    let [a1, a2, a3, later] = row.successes_by_attempt;
    let mut text = format!("1:{a1} 2:{a2} 3:{a3}");
    if later > 0 {
        text.push_str(&format!(" ?:{later}"));
    }
    text
}

/// The punches per remote implementation, role strategy and transport, as a text table.
pub fn render_implementations_text(rows: &[ImplementationRow]) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nby remote implementation\n{:<8} {:<8} {:<5} {:>7}  {:<28} {:<16} {:<14} {:<14} other outcomes",
        "impl", "roles", "trans", "punches", "success rate [95 % CI]", "successes by try", "direct via", "our role"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<8} {:<8} {:<5} {:>7}  {:<28} {:<16} {:<14} {:<14} {}",
            r.implementation,
            r.role_strategy,
            r.transport.as_str(),
            r.outcomes.total(),
            r.outcomes.published_rate().describe(),
            by_attempt(r),
            format!("TCP {} QUIC {}", r.direct_tcp, r.direct_quic),
            format!("cli {} srv {}", r.success_as_client, r.success_as_server),
            other_outcomes(&r.outcomes),
        );
    }
    let _ = writeln!(
        out,
        "roles = the clients' role strategy; successes by try = the attempt that made the direct \
         connection; direct via = its transport; our role = the handshake side our dial took."
    );
    out
}

/// The report as a self-contained HTML page: the table and a chart of the rates.
pub fn render_html(
    title: &str,
    summary: &str,
    cells: &[Cell],
    implementations: &[ImplementationRow],
) -> String {
    let esc = punchr_report::render::html::escape;
    let mut body = format!(
        "<style>tr.flagged td{{background:#fdecea}}{}</style><h1>{}</h1><p>{}</p>",
        punchr_report::render::matrix::MATRIX_STYLE,
        esc(title),
        esc(summary)
    );
    body.push_str(&matrices_html(cells));
    body.push_str(
        "<h2>Success rate per NAT pair and transport</h2>\
         <p class=\"note\">SUCCESS / (SUCCESS + FAILED); whiskers: Wilson 95 % interval. \
         Rows theory disagrees with are marked ⚠.</p>",
    );
    let bars: Vec<(String, Rate)> = cells
        .iter()
        .map(|c| {
            let mark = if c.verdict == Verdict::Disagrees {
                "⚠ "
            } else {
                ""
            };
            (
                format!(
                    "{mark}{} → {} {}",
                    c.client_nat,
                    c.remote_nat,
                    c.transport.as_str()
                ),
                c.rate,
            )
        })
        .collect();
    body.push_str(&punchr_report::render::html::rate_bars(&bars));
    body.push_str(
        "<h2>Measured and predicted</h2><table><tr><th>client NAT</th><th>remote NAT</th>\
         <th>remote implementation</th><th>transport</th><th>punches</th><th>SUCCESS</th><th>FAILED</th>\
         <th>success rate [95 % CI]</th><th>theory</th><th>why</th><th>verdict</th>\
         <th>time to direct (median)</th><th>relayed RTT (median)</th><th>other outcomes</th></tr>",
    );
    for c in cells {
        let class = if c.verdict == Verdict::Disagrees {
            " class=\"flagged\""
        } else {
            ""
        };
        let _ = write!(
            body,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.client_nat),
            esc(&c.remote_nat),
            esc(&c.remote_impl),
            c.transport.as_str(),
            c.outcomes.total(),
            c.outcomes.success,
            c.outcomes.failed,
            esc(&c.rate.describe()),
            predicted_text(c.predicted),
            esc(&c.reason),
            verdict_mark(c.verdict),
            millis(c.median_time_to_direct),
            millis(c.median_relayed_rtt),
            esc(&other_outcomes(&c.outcomes)),
        );
    }
    body.push_str("</table>");
    body.push_str(&implementations_html(implementations));
    punchr_report::render::html::page(title, &body)
}

/// One client NAT × remote NAT matrix per transport and remote implementation.
fn matrices_html(cells: &[Cell]) -> String {
    use punchr_report::render::matrix::{matrix, MatrixCell};
    let mut groups: Vec<(CellTransport, &str)> = cells
        .iter()
        .map(|c| (c.transport, c.remote_impl.as_str()))
        .collect();
    groups.sort();
    groups.dedup();
    let mut html = String::from(
        "<h2>Client NAT × remote NAT</h2><p class=\"note\">Colour: success rate, SUCCESS / \
         (SUCCESS + FAILED), red 0 % to green 100 %; n counts every punch, decided or not. \
         Theory: ✓ success or ✗ failure predicted, with the direction that opens (→ client to \
         remote, ← remote to client, ↔ both, × neither); ↺: the remote's plain dial is expected to \
         reach the client first (CONNECTION_REVERSED). Hover a cell for the rule.</p>",
    );
    for (transport, remote_impl) in groups {
        let mut in_group: Vec<&Cell> = cells
            .iter()
            .filter(|c| c.transport == transport && c.remote_impl == remote_impl)
            .collect();
        in_group.sort_by_key(|c| (nat_order(&c.client_nat), nat_order(&c.remote_nat)));
        let matrix_cells: Vec<MatrixCell> = in_group
            .iter()
            .map(|c| MatrixCell {
                row: c.client_nat.clone(),
                column: c.remote_nat.clone(),
                rate: c.rate,
                punches: c.outcomes.total(),
                mark: theory_mark(c),
                flag: verdict_flag(c.verdict),
                title: c.reason.clone(),
            })
            .collect();
        let caption = format!("{} · remote {}", transport.as_str(), remote_impl);
        html.push_str(&matrix(&caption, "client NAT", "remote NAT", &matrix_cells));
    }
    html
}

/// Table order of a NAT type's name; unknown names last.
fn nat_order(name: &str) -> usize {
    name.parse::<NatType>()
        .ok()
        .and_then(|nat| NatType::ALL.iter().position(|n| *n == nat))
        .unwrap_or(NatType::ALL.len())
}

/// `theory ✓ ↔`, `theory ✗ ×`, `theory ✓ ← ↺` or `no theory`.
fn theory_mark(cell: &Cell) -> String {
    let Some(predicted) = cell.predicted else {
        return "no theory".to_owned();
    };
    let sign = match predicted {
        Prediction::Success => "✓",
        Prediction::Failure => "✗",
    };
    let arrow = cell.opening.map_or("", Opening::arrow);
    let reversal = if cell.reversal_expected { " ↺" } else { "" };
    format!("theory {sign} {arrow}{reversal}")
}

fn verdict_flag(verdict: Verdict) -> Option<String> {
    match verdict {
        Verdict::Disagrees => Some("⚠ disagrees".to_owned()),
        Verdict::Wide => Some("too few for a verdict".to_owned()),
        Verdict::NoData => Some("no decided punch".to_owned()),
        Verdict::Agrees | Verdict::NoPrediction => None,
    }
}

fn implementations_html(rows: &[ImplementationRow]) -> String {
    let esc = punchr_report::render::html::escape;
    if rows.is_empty() {
        return String::new();
    }
    let mut body = String::from(
        "<h2>By remote implementation</h2><table><tr><th>implementation</th>\
         <th>client role strategy</th><th>transport</th><th>punches</th>\
         <th>success rate [95 % CI]</th><th>successes by attempt</th><th>direct connection</th>\
         <th>our handshake role</th><th>other outcomes</th></tr>",
    );
    for r in rows {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>TCP {} · QUIC {}</td><td>client {} · server {}</td><td>{}</td></tr>",
            esc(&r.implementation),
            esc(&r.role_strategy),
            r.transport.as_str(),
            r.outcomes.total(),
            esc(&r.outcomes.published_rate().describe()),
            esc(&by_attempt(r)),
            r.direct_tcp,
            r.direct_quic,
            r.success_as_client,
            r.success_as_server,
            esc(&other_outcomes(&r.outcomes)),
        );
    }
    body.push_str("</table>");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nat_cell(client: &str, remote: &str, t: CellTransport, ok: u64, failed: u64) -> NatCell {
        let mut outcomes = OutcomeCounts::default();
        outcomes.add(Outcome::Success, ok);
        outcomes.add(Outcome::Failed, failed);
        outcomes.add(Outcome::NoStream, 1);
        NatCell {
            client_nat: client.into(),
            remote_nat: remote.into(),
            remote_impl: "rust".into(),
            transport: t,
            outcomes,
            median_time_to_direct_ns: (ok > 0).then_some(250_000_000),
            median_relayed_rtt_ns: (ok > 0).then_some(80_000_000),
        }
    }

    #[test]
    fn verdicts_follow_the_rules() {
        use Prediction::*;
        assert_eq!(judge(Some(Failure), &Rate::new(0, 20)), Verdict::Agrees);
        assert_eq!(judge(Some(Failure), &Rate::new(1, 20)), Verdict::Disagrees);
        assert_eq!(judge(Some(Success), &Rate::new(20, 20)), Verdict::Agrees);
        // 15/20: the interval reaches 89.8 %, under 90 %.
        assert_eq!(judge(Some(Success), &Rate::new(15, 20)), Verdict::Disagrees);
        // 2/3: few punches, the interval still reaches high rates but spans 21–94 %.
        assert_eq!(judge(Some(Success), &Rate::new(2, 3)), Verdict::Wide);
        assert_eq!(judge(Some(Failure), &Rate::new(0, 4)), Verdict::Wide);
        assert_eq!(judge(Some(Failure), &Rate::new(0, 12)), Verdict::Agrees);
        assert_eq!(judge(Some(Success), &Rate::new(0, 0)), Verdict::NoData);
        assert_eq!(judge(None, &Rate::new(3, 3)), Verdict::NoPrediction);
    }

    #[test]
    fn cells_carry_theory_and_flags() {
        let cells = cells(
            vec![
                nat_cell(
                    "port-restricted",
                    "port-restricted",
                    CellTransport::Tcp,
                    20,
                    0,
                ),
                nat_cell("symmetric", "symmetric", CellTransport::Quic, 1, 9),
                nat_cell("symmetric", "?", CellTransport::Tcp, 0, 3),
                nat_cell("udp-blocked", "full-cone", CellTransport::Unknown, 0, 0),
            ],
            punchr_dcutr::RoleStrategy::Adaptive,
        );
        assert_eq!(cells[0].predicted, Some(Prediction::Success));
        assert_eq!(cells[0].verdict, Verdict::Agrees);
        assert_eq!(
            cells[0].median_time_to_direct,
            Some(Duration::from_millis(250))
        );
        assert_eq!(cells[1].verdict, Verdict::Disagrees);
        assert_eq!(cells[2].verdict, Verdict::NoPrediction);
        assert_eq!(cells[3].verdict, Verdict::NoPrediction);

        let text = render_text(&cells);
        assert!(text.contains("DISAGREES"), "{text}");
        assert!(text.contains("100.0 %"), "{text}");
        assert!(text.contains("NO_STREAM 1"), "{text}");
        assert!(text.contains("1 of 4 cells disagree"), "{text}");

        let row = ImplementationRow {
            implementation: "go-v0.40".into(),
            role_strategy: "adaptive".into(),
            transport: CellTransport::Tcp,
            successes_by_attempt: [0, 0, 2, 0],
            direct_tcp: 2,
            success_as_server: 2,
            ..ImplementationRow::default()
        };
        let table = render_implementations_text(std::slice::from_ref(&row));
        assert!(
            table.contains("go-v0.40") && table.contains("1:0 2:0 3:2"),
            "{table}"
        );
        assert!(table.contains("cli 0 srv 2"), "{table}");
        let html = render_html("lab", "a test", &cells, &[row]);
        assert!(html.contains("By remote implementation"));
        assert!(html.contains("<table class=\"matrix\">") && html.contains("TCP · remote rust"));
        assert!(html.contains("theory ✓ ↔"), "{html}");
        assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..40]);
        assert!(html.contains("<svg") && html.contains("class=\"flagged\""));
        assert!(
            !html.contains("src=") && !html.contains("href="),
            "no external assets"
        );
    }

    #[test]
    fn no_cells_say_why() {
        assert!(render_text(&[]).contains("no labelled punches"));
    }
}
