//! The report as one self-contained HTML page: inline CSS and SVG, no scripts, no external
//! assets, so it can be mailed, archived or opened offline. The dashboard's personal page uses it
//! too.

use std::fmt::Write;

use punchr_store::Outcome;

/// Escapes text for HTML (and SVG).
pub use super::svg::escape;
/// Horizontal bars of rates (0–100 %) with their 95 % intervals as whiskers, as inline SVG.
pub use super::svg::rate_bars;
use super::svg::{self, outcome_colour};
use super::{counts, wording};
use crate::filter::rfc3339;
use crate::model::{FailureReason, FamilyRow, GroupRow, Report};
use crate::stats::percent;

/// Colours of the transport lines.
const SERIES_COLOURS: [&str; 4] = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a"];

/// The page's CSS, shared with the dashboard's personal page.
pub const STYLE: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:24px auto;max-width:1000px;\
color:#1a1a1a;padding:0 16px}h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:8px 0;font-size:.9em}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}\
td:first-child,th:first-child{text-align:left}td.text,th.text{text-align:left}.note{color:#555;font-size:.85em}\
.cards{display:flex;gap:16px;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:12px 16px;min-width:280px}\
.card .big{font-size:2em;font-weight:600}svg .label,svg .value,svg .legend{font-size:11px;fill:#333}svg{max-width:100%;height:auto}";

/// The whole report as an HTML page titled `title`.
pub fn render(report: &Report, title: &str) -> String {
    let mut body = String::new();
    let _ = write!(body, "<h1>{}</h1>", escape(title));
    scope(&mut body, report);
    rates(&mut body, report);
    outcomes(&mut body, report);

    heading(&mut body, "By transport", Some(wording::DIRECT_ATTRIBUTION));
    rate_chart(&mut body, &report.by_transport);
    group_table(&mut body, "transport", &report.by_transport);
    transport_lines(&mut body, report);
    heading(
        &mut body,
        "By IP version",
        Some("attributed like the transport split"),
    );
    rate_chart(&mut body, &report.by_ip_version);
    group_table(&mut body, "IP version", &report.by_ip_version);

    attempts(&mut body, report);
    time_to_direct(&mut body, report);

    heading(&mut body, "By remote agent version", None);
    group_table(&mut body, "agent", &report.by_remote_agent);
    heading(
        &mut body,
        "By client family",
        Some("the agent the client host registered with"),
    );
    family_table(&mut body, "client family", &report.by_client_family);
    heading(
        &mut body,
        "By remote family",
        Some("the remote's agent as the honeypot stored it"),
    );
    family_table(&mut body, "remote family", &report.by_remote_family);
    heading(&mut body, "By client (API key name)", None);
    group_table(&mut body, "client", &report.by_client);
    heading(
        &mut body,
        "By NAT type pair (client → remote)",
        Some("from the lab's labels"),
    );
    if report.by_nat_pair.is_empty() {
        body.push_str(
            "<p class=\"note\">No peers are labelled; lab campaigns label them in lab_labels.</p>",
        );
    } else {
        let rows: Vec<GroupRow> = report.by_nat_pair.iter().map(|p| p.row.clone()).collect();
        rate_chart(&mut body, &rows);
        group_table(&mut body, "NAT pair", &rows);
    }
    heading(
        &mut body,
        "Why hole punches did not succeed",
        Some("result errors, normalised"),
    );
    reasons(&mut body, &report.failure_reasons);
    heading(
        &mut body,
        "Why attempts failed",
        Some("attempt errors, normalised"),
    );
    reasons(&mut body, &report.attempt_failure_reasons);
    page(title, &body)
}

/// An HTML page around `body` with the report's style.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(title)
    )
}

fn scope(body: &mut String, report: &Report) {
    let s = &report.scope;
    let _ = write!(
        body,
        "<p class=\"note\">{} results stored {} … {} ({}), generated {}",
        report.outcomes.total(),
        escape(s.first_result.as_deref().unwrap_or("–")),
        escape(s.last_result.as_deref().unwrap_or("–")),
        escape(&s.engine),
        escape(&report.generated_at)
    );
    for (name, value) in [
        ("since", &s.since),
        ("until", &s.until),
        ("API key name", &s.api_key_name),
    ] {
        if let Some(value) = value {
            let _ = write!(body, "; {name} {}", escape(value));
        }
    }
    body.push_str("</p>");
}

fn rates(body: &mut String, report: &Report) {
    body.push_str("<div class=\"cards\">");
    for (id, label, rate) in [
        ("published-rate", wording::PUBLISHED, &report.published_rate),
        (
            "end-to-end-rate",
            wording::END_TO_END,
            &report.end_to_end_rate,
        ),
    ] {
        let big = rate.value.map_or("–".to_owned(), percent);
        let _ = write!(
            body,
            "<div class=\"card\" id=\"{id}\"><div>{}</div><div class=\"big\">{}</div><div class=\"note\">{}</div></div>",
            escape(label),
            escape(&big),
            escape(&rate.describe())
        );
    }
    body.push_str("</div><p class=\"note\">Brackets: Wilson score 95 % intervals.</p>");
}

fn outcomes(body: &mut String, report: &Report) {
    heading(body, "Outcomes", None);
    let total = report.outcomes.total();
    body.push_str("<table><tr><th>outcome</th><th>results</th><th>share</th></tr>");
    for &outcome in Outcome::ALL.iter().rev() {
        let n = report.outcomes.get(outcome);
        let share = if total == 0 {
            "–".to_owned()
        } else {
            percent(n as f64 / total as f64)
        };
        let _ = write!(
            body,
            "<tr><td><span style=\"color:{}\">■</span> {}</td><td>{n}</td><td>{share}</td></tr>",
            outcome_colour(outcome),
            outcome.as_str()
        );
    }
    body.push_str("</table>");
    if !report.over_time.is_empty() {
        let _ = write!(
            body,
            "<p class=\"note\">Over time, {} s buckets, by time stored:</p>",
            report.bucket_seconds
        );
        let buckets: Vec<(String, Vec<(Outcome, u64)>)> = report
            .over_time
            .iter()
            .map(|b| {
                let label = rfc3339(b.start * 1_000_000_000);
                let counts = Outcome::ALL
                    .iter()
                    .rev()
                    .map(|&o| (o, b.outcomes.get(o)))
                    .collect();
                (label, counts)
            })
            .collect();
        body.push_str(&svg::outcomes_over_time(&buckets));
    }
}

fn transport_lines(body: &mut String, report: &Report) {
    let mut names: Vec<&str> = report
        .transport_over_time
        .iter()
        .map(|b| b.transport.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    if report.over_time.len() < 2 || names.is_empty() {
        return;
    }
    let series: Vec<super::svg::RateSeries<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let points = report
                .transport_over_time
                .iter()
                .filter(|b| b.transport == *name)
                .filter_map(|b| b.published.value.map(|v| (b.start, v)))
                .collect();
            (
                (*name).to_owned(),
                SERIES_COLOURS[i % SERIES_COLOURS.len()],
                points,
            )
        })
        .collect();
    let from = report.over_time.first().map_or(0, |b| b.start);
    let to = report.over_time.last().map_or(0, |b| b.start);
    body.push_str("<p class=\"note\">Published success rate over time, by transport:</p>");
    body.push_str(&svg::rate_lines(&series, from, to));
}

fn rate_chart(body: &mut String, rows: &[GroupRow]) {
    if rows.is_empty() {
        return;
    }
    let bars: Vec<_> = rows.iter().map(|r| (r.key.clone(), r.published)).collect();
    body.push_str("<p class=\"note\">Published success rate with 95 % interval:</p>");
    body.push_str(&svg::rate_bars(&bars));
}

fn group_table(body: &mut String, what: &str, rows: &[GroupRow]) {
    if rows.is_empty() {
        body.push_str("<p class=\"note\">No results.</p>");
        return;
    }
    let _ = write!(
        body,
        "<table><tr><th>{}</th><th>results</th><th>SUCCESS</th><th>FAILED</th><th>other</th><th>published rate</th><th>end-to-end rate</th></tr>",
        escape(what)
    );
    for row in rows {
        let o = &row.outcomes;
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&row.key),
            o.total(),
            o.success,
            o.failed,
            o.total() - o.success - o.failed,
            escape(&row.published.describe()),
            escape(&row.end_to_end.describe())
        );
    }
    body.push_str("</table>");
}

/// A group table with where each family's successes came from.
fn family_table(body: &mut String, what: &str, rows: &[FamilyRow]) {
    if rows.is_empty() {
        body.push_str("<p class=\"note\">No results.</p>");
        return;
    }
    let _ = write!(
        body,
        "<table><tr><th>{}</th><th>results</th><th>SUCCESS</th><th>FAILED</th><th>published rate</th><th>end-to-end rate</th><th>successes by attempt</th><th>by transport</th></tr>",
        escape(what)
    );
    for family in rows {
        let row = &family.row;
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&row.key),
            row.outcomes.total(),
            row.outcomes.success,
            row.outcomes.failed,
            escape(&row.published.describe()),
            escape(&row.end_to_end.describe()),
            escape(&counts(&family.successes_by_attempt)),
            escape(&counts(&family.successes_by_transport))
        );
    }
    body.push_str("</table>");
}

fn attempts(body: &mut String, report: &Report) {
    heading(
        body,
        "By attempt number",
        Some("on which DCUtR attempt the SUCCESS results succeeded"),
    );
    let split = &report.by_attempt;
    if split.rows.is_empty() {
        body.push_str("<p class=\"note\">No attempts.</p>");
        return;
    }
    let bars: Vec<(String, u64)> = split
        .rows
        .iter()
        .map(|r| (format!("attempt {}", r.attempt_number), r.successful))
        .collect();
    body.push_str(&svg::count_bars(&bars, outcome_colour(Outcome::Success)));
    body.push_str("<table><tr><th>attempt</th><th>attempts made</th><th>successful</th><th>share of successes</th><th>attempt success rate</th></tr>");
    for row in &split.rows {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            row.attempt_number,
            row.attempts,
            row.successful,
            escape(&row.share_of_successes.describe()),
            escape(&row.attempt_success_rate.describe())
        );
    }
    body.push_str("</table>");
}

fn time_to_direct(body: &mut String, report: &Report) {
    heading(
        body,
        "Time from relayed to direct connection",
        Some(wording::TIME_TO_DIRECT),
    );
    let t = &report.time_to_direct;
    let seconds = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.3} s"));
    let _ = write!(
        body,
        "<p>{} results; p50 <b id=\"ttd-p50\">{}</b>, p90 <b id=\"ttd-p90\">{}</b></p>",
        t.count,
        seconds(t.p50_seconds),
        seconds(t.p90_seconds)
    );
    if t.count > 0 {
        let bars: Vec<(String, u64)> = t
            .histogram
            .iter()
            .map(|b| (b.label.clone(), b.count))
            .collect();
        body.push_str(&svg::count_bars(&bars, "#1565c0"));
    }
}

fn reasons(body: &mut String, reasons: &[FailureReason]) {
    if reasons.is_empty() {
        body.push_str("<p class=\"note\">None.</p>");
        return;
    }
    body.push_str("<table><tr><th>outcome</th><th>count</th><th class=\"text\">reason</th></tr>");
    for reason in reasons {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
            escape(&reason.outcome),
            reason.count,
            escape(&reason.reason)
        );
    }
    body.push_str("</table>");
}

fn heading(body: &mut String, title: &str, note: Option<&str>) {
    let _ = write!(body, "<h2>{}</h2>", escape(title));
    if let Some(note) = note {
        let _ = write!(body, "<p class=\"note\">{}</p>", escape(note));
    }
}
