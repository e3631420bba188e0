//! The report as plain text tables, for a terminal.

use std::fmt::Write;

use punchr_store::Outcome;

use super::{counts, wording};
use crate::filter::rfc3339;
use crate::model::{FailureReason, FamilyRow, GroupRow, Report};
use crate::stats::percent;

/// How many clients the text lists; JSON and HTML list all.
const MAX_CLIENT_ROWS: usize = 30;

/// The whole report as text.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    header(&mut out, report);
    rates(&mut out, report);
    outcomes(&mut out, report);
    section(&mut out, "By transport", Some(wording::DIRECT_ATTRIBUTION));
    group_table(&mut out, "transport", &report.by_transport);
    section(
        &mut out,
        "By IP version",
        Some("attributed like the transport split"),
    );
    group_table(&mut out, "IP version", &report.by_ip_version);
    attempts(&mut out, report);
    time_to_direct(&mut out, report);
    section(&mut out, "By remote agent version", None);
    group_table(&mut out, "agent", &report.by_remote_agent);
    section(
        &mut out,
        "By client family",
        Some("the agent the client host registered with"),
    );
    family_table(&mut out, "client family", &report.by_client_family);
    section(
        &mut out,
        "By remote family",
        Some("the remote's agent as the honeypot stored it"),
    );
    family_table(&mut out, "remote family", &report.by_remote_family);
    section(&mut out, "By client (API key name)", None);
    let shown = report.by_client.len().min(MAX_CLIENT_ROWS);
    group_table(&mut out, "client", &report.by_client[..shown]);
    if shown < report.by_client.len() {
        let _ = writeln!(
            out,
            "  … {} more clients (see --format json)",
            report.by_client.len() - shown
        );
    }
    section(
        &mut out,
        "By NAT type pair (client → remote, lab labels)",
        None,
    );
    if report.by_nat_pair.is_empty() {
        out.push_str("  no peers are labelled (lab campaigns label them in lab_labels)\n");
    } else {
        let rows: Vec<GroupRow> = report
            .by_nat_pair
            .iter()
            .map(|pair| pair.row.clone())
            .collect();
        group_table(&mut out, "NAT pair", &rows);
    }
    section(
        &mut out,
        "Why hole punches did not succeed (result errors, normalised)",
        None,
    );
    reasons(&mut out, &report.failure_reasons);
    section(
        &mut out,
        "Why attempts failed (attempt errors, normalised)",
        None,
    );
    reasons(&mut out, &report.attempt_failure_reasons);
    over_time(&mut out, report);
    out
}

fn header(out: &mut String, report: &Report) {
    let scope = &report.scope;
    let _ = writeln!(
        out,
        "Punchr report ({}), generated {}",
        scope.engine, report.generated_at
    );
    let _ = writeln!(
        out,
        "{} results stored {} … {}",
        report.outcomes.total(),
        scope.first_result.as_deref().unwrap_or("–"),
        scope.last_result.as_deref().unwrap_or("–")
    );
    let mut filters = Vec::new();
    if let Some(since) = &scope.since {
        filters.push(format!("since {since}"));
    }
    if let Some(until) = &scope.until {
        filters.push(format!("until {until}"));
    }
    if let Some(name) = &scope.api_key_name {
        filters.push(format!("API key name \"{}\"", printable(name)));
    }
    if !filters.is_empty() {
        let _ = writeln!(out, "filter: {}", filters.join(", "));
    }
}

fn rates(out: &mut String, report: &Report) {
    section(
        out,
        "Success rate (95 % Wilson intervals in brackets)",
        None,
    );
    let _ = writeln!(
        out,
        "  {}: {}",
        wording::PUBLISHED,
        report.published_rate.describe()
    );
    let _ = writeln!(
        out,
        "  {}: {}",
        wording::END_TO_END,
        report.end_to_end_rate.describe()
    );
}

fn outcomes(out: &mut String, report: &Report) {
    section(out, "Outcomes", None);
    let total = report.outcomes.total();
    let mut table = Table::new(&["outcome", "results", "share"]);
    for &outcome in Outcome::ALL.iter().rev() {
        let n = report.outcomes.get(outcome);
        let share = if total == 0 {
            "–".to_owned()
        } else {
            percent(n as f64 / total as f64)
        };
        table.row(vec![outcome.as_str().to_owned(), n.to_string(), share]);
    }
    table.write(out);
}

fn group_table(out: &mut String, what: &str, rows: &[GroupRow]) {
    if rows.is_empty() {
        out.push_str("  no results\n");
        return;
    }
    let mut table = Table::new(&[
        what,
        "results",
        "SUCCESS",
        "FAILED",
        "other",
        "published rate",
        "end-to-end rate",
    ]);
    for row in rows {
        let o = &row.outcomes;
        table.row(vec![
            row.key.clone(),
            o.total().to_string(),
            o.success.to_string(),
            o.failed.to_string(),
            (o.total() - o.success - o.failed).to_string(),
            row.published.describe(),
            row.end_to_end.describe(),
        ]);
    }
    table.write(out);
}

/// A group table with where each family's successes came from.
fn family_table(out: &mut String, what: &str, rows: &[FamilyRow]) {
    if rows.is_empty() {
        out.push_str("  no results\n");
        return;
    }
    let mut table = Table::new(&[
        what,
        "results",
        "SUCCESS",
        "FAILED",
        "published rate",
        "successes by attempt",
        "by transport",
    ]);
    for family in rows {
        let row = &family.row;
        table.row(vec![
            row.key.clone(),
            row.outcomes.total().to_string(),
            row.outcomes.success.to_string(),
            row.outcomes.failed.to_string(),
            row.published.describe(),
            counts(&family.successes_by_attempt),
            counts(&family.successes_by_transport),
        ]);
    }
    table.write(out);
}

fn attempts(out: &mut String, report: &Report) {
    section(
        out,
        "By attempt number",
        Some("on which DCUtR attempt the SUCCESS results succeeded"),
    );
    let split = &report.by_attempt;
    if split.rows.is_empty() {
        out.push_str("  no attempts\n");
        return;
    }
    let mut table = Table::new(&[
        "attempt",
        "attempts made",
        "successful",
        "share of successes",
        "attempt success rate",
    ]);
    for row in &split.rows {
        table.row(vec![
            row.attempt_number.to_string(),
            row.attempts.to_string(),
            row.successful.to_string(),
            row.share_of_successes.describe(),
            row.attempt_success_rate.describe(),
        ]);
    }
    table.write(out);
    if split.successes_without_successful_attempt > 0 {
        let _ = writeln!(
            out,
            "  {} SUCCESS results have no SUCCESS or DIRECT_DIAL attempt",
            split.successes_without_successful_attempt
        );
    }
}

fn time_to_direct(out: &mut String, report: &Report) {
    section(
        out,
        "Time from relayed to direct connection",
        Some(wording::TIME_TO_DIRECT),
    );
    let t = &report.time_to_direct;
    let seconds = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.3} s"));
    let _ = writeln!(
        out,
        "  results: {}   p50: {}   p90: {}",
        t.count,
        seconds(t.p50_seconds),
        seconds(t.p90_seconds)
    );
    let largest = t
        .histogram
        .iter()
        .map(|b| b.count)
        .max()
        .unwrap_or(0)
        .max(1);
    for bin in &t.histogram {
        let bar = "█".repeat(((bin.count * 40).div_ceil(largest)) as usize);
        let _ = writeln!(out, "  {:>10} {:>8} {bar}", bin.label, bin.count);
    }
}

fn reasons(out: &mut String, reasons: &[FailureReason]) {
    if reasons.is_empty() {
        out.push_str("  none\n");
        return;
    }
    let mut table = Table::new(&["outcome", "count", "reason"]).left_align(2);
    for reason in reasons {
        table.row(vec![
            reason.outcome.clone(),
            reason.count.to_string(),
            reason.reason.clone(),
        ]);
    }
    table.write(out);
}

fn over_time(out: &mut String, report: &Report) {
    let title = format!(
        "Outcomes over time ({} s buckets, by time stored)",
        report.bucket_seconds
    );
    section(out, &title, None);
    if report.over_time.is_empty() {
        out.push_str("  no results\n");
        return;
    }
    let mut table = Table::new(&[
        "bucket start",
        "results",
        "SUCCESS",
        "FAILED",
        "other",
        "published rate",
        "end-to-end rate",
    ]);
    for bucket in &report.over_time {
        let o = &bucket.outcomes;
        table.row(vec![
            rfc3339(bucket.start * 1_000_000_000),
            o.total().to_string(),
            o.success.to_string(),
            o.failed.to_string(),
            (o.total() - o.success - o.failed).to_string(),
            bucket.published.describe(),
            bucket.end_to_end.describe(),
        ]);
    }
    table.write(out);
}

/// `text` as it may reach a terminal: control characters (escape sequences, carriage returns,
/// bells) and the Unicode controls that reorder or hide text are written as `\u{…}`.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let reorders = matches!(c, '\u{200e}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || reorders {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

fn section(out: &mut String, title: &str, note: Option<&str>) {
    let _ = writeln!(out, "\n{title}");
    if let Some(note) = note {
        let _ = writeln!(out, "  ({note})");
    }
}

/// Columns padded to their widest cell; text columns left-aligned, numbers right-aligned.
struct Table {
    rows: Vec<Vec<String>>,
    left_aligned: Vec<bool>,
}

impl Table {
    /// A table whose first column is left-aligned.
    fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
            left_aligned: (0..header.len()).map(|c| c == 0).collect(),
        }
    }

    fn left_align(mut self, column: usize) -> Table {
        self.left_aligned[column] = true;
        self
    }

    /// Adds a row. Cells hold what clients and remotes sent (agent versions, key names, error
    /// texts), so they are made [`printable`] first.
    fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.iter().map(|cell| printable(cell)).collect());
    }

    fn write(&self, out: &mut String) {
        let columns = self.rows[0].len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::from(" ");
            for (c, cell) in row.iter().enumerate() {
                let pad = " ".repeat(widths[c] - cell.chars().count());
                line.push(' ');
                if self.left_aligned[c] {
                    line.push_str(cell);
                    line.push_str(&pad);
                } else {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_reach_the_terminal_without_control_characters() {
        assert_eq!(printable("kubo/0.25\u{1b}[2J"), "kubo/0.25\\u{1b}[2J");
        assert_eq!(printable("a\rb\u{7}\u{202e}c"), "a\\u{d}b\\u{7}\\u{202e}c");
        assert_eq!(printable("plain – text"), "plain – text");
        let mut table = Table::new(&["agent"]);
        table.row(vec!["evil\u{1b}]0;title\u{7}".to_owned()]);
        let mut out = String::new();
        table.write(&mut out);
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    }
}
