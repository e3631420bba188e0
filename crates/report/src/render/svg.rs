//! Small inline SVG charts for the HTML report: no scripts, no external assets. The live
//! dashboard draws the same kinds of chart in JavaScript (`dashboard/assets/dashboard.js`).

use std::fmt::Write;

use punchr_store::Outcome;

use crate::stats::Rate;

const WIDTH: f64 = 720.0;
const LEFT: f64 = 170.0;
const RIGHT: f64 = 150.0;
const ROW: f64 = 26.0;

/// The colour of an outcome, the same in the HTML report and the dashboard.
pub(crate) fn outcome_colour(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "#2e7d32",
        Outcome::Failed => "#c62828",
        Outcome::NoStream => "#ef6c00",
        Outcome::NoConnection => "#616161",
        Outcome::ConnectionReversed => "#6a1b9a",
        Outcome::Cancelled => "#9e9e9e",
        Outcome::Unknown => "#bdbdbd",
    }
}

/// Escapes text for SVG and HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Horizontal bars of rates (0–100 %) with their 95 % intervals as whiskers.
pub fn rate_bars(rows: &[(String, Rate)]) -> String {
    let height = ROW * rows.len() as f64 + 30.0;
    let plot = WIDTH - LEFT - RIGHT;
    let mut svg = open(height);
    axis_percent(&mut svg, plot, height - 20.0);
    for (index, (label, rate)) in rows.iter().enumerate() {
        let y = 6.0 + ROW * index as f64;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" class="label">{}</text>"#,
            LEFT - 8.0,
            y + 14.0,
            escape(label)
        );
        if let (Some(value), Some([low, high])) = (rate.value, rate.ci95) {
            let _ = write!(
                svg,
                r##"<rect x="{LEFT}" y="{y}" width="{:.1}" height="18" fill="#1565c0"><title>{}</title></rect>"##,
                value * plot,
                escape(&rate.describe())
            );
            let (x1, x2) = (LEFT + low * plot, LEFT + high * plot);
            let _ = write!(
                svg,
                r##"<path d="M{x1:.1} {a:.1}V{b:.1}M{x1:.1} {m:.1}H{x2:.1}M{x2:.1} {a:.1}V{b:.1}" stroke="#111" fill="none"/>"##,
                a = y + 4.0,
                b = y + 14.0,
                m = y + 9.0
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" class="value">{}</text>"#,
            WIDTH - RIGHT + 8.0,
            y + 14.0,
            escape(&short_rate(rate))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Vertical bars of counts, labelled below.
pub(crate) fn count_bars(bars: &[(String, u64)], colour: &str) -> String {
    let height = 220.0;
    let (left, bottom) = (50.0, 40.0);
    let plot_w = WIDTH - left - 20.0;
    let plot_h = height - bottom - 20.0;
    let largest = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let slot = plot_w / bars.len().max(1) as f64;
    let mut svg = open(height);
    let _ = write!(
        svg,
        r##"<path d="M{left} {0}H{1}" stroke="#999"/>"##,
        20.0 + plot_h,
        WIDTH - 20.0
    );
    for (index, (label, count)) in bars.iter().enumerate() {
        let h = *count as f64 / largest * plot_h;
        let x = left + slot * index as f64 + slot * 0.15;
        let y = 20.0 + plot_h - h;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{colour}"><title>{}: {count}</title></rect>"#,
            slot * 0.7,
            escape(label)
        );
        let centre = x + slot * 0.35;
        let _ = write!(
            svg,
            r#"<text x="{centre:.1}" y="{:.1}" text-anchor="middle" class="value">{count}</text>"#,
            y - 4.0
        );
        let _ = write!(
            svg,
            r#"<text x="{centre:.1}" y="{:.1}" text-anchor="middle" class="label">{}</text>"#,
            height - bottom + 16.0,
            escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Stacked bars of outcomes per time bucket, with a legend.
pub(crate) fn outcomes_over_time(buckets: &[(String, Vec<(Outcome, u64)>)]) -> String {
    let height = 260.0;
    let (left, bottom, top) = (50.0, 50.0, 30.0);
    let plot_w = WIDTH - left - 20.0;
    let plot_h = height - bottom - top;
    let largest = buckets
        .iter()
        .map(|(_, counts)| counts.iter().map(|c| c.1).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = plot_w / buckets.len().max(1) as f64;
    let mut svg = open(height);
    legend(&mut svg, left);
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="end" class="label">{}</text>"#,
        left - 6.0,
        top + 10.0,
        largest as u64
    );
    for (index, (label, counts)) in buckets.iter().enumerate() {
        let x = left + slot * index as f64;
        let mut y = top + plot_h;
        for &(outcome, count) in counts {
            let h = count as f64 / largest * plot_h;
            y -= h;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{} {}: {count}</title></rect>"#,
                (slot * 0.85).max(1.0),
                outcome_colour(outcome),
                escape(label),
                outcome.as_str()
            );
        }
        let every = (buckets.len() / 6).max(1);
        if index % every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{x:.1}" y="{:.1}" class="label">{}</text>"#,
                height - bottom + 16.0,
                escape(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Lines of rates (0–100 %) over time, one per series.
/// One line of a rate chart: its name, its colour and its (time, rate) points.
pub(crate) type RateSeries<'a> = (String, &'a str, Vec<(i64, f64)>);

pub(crate) fn rate_lines(series: &[RateSeries<'_>], from: i64, to: i64) -> String {
    let height = 240.0;
    let (left, bottom, top) = (50.0, 40.0, 30.0);
    let plot_w = WIDTH - left - 20.0;
    let plot_h = height - bottom - top;
    let span = (to - from).max(1) as f64;
    let mut svg = open(height);
    for tick in [0.0, 0.5, 1.0] {
        let y = top + plot_h * (1.0 - tick);
        let _ = write!(
            svg,
            r##"<path d="M{left} {y:.1}H{}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" class="label">{:.0} %</text>"##,
            WIDTH - 20.0,
            left - 6.0,
            y + 4.0,
            tick * 100.0
        );
    }
    for (index, (name, colour, points)) in series.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="8" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="18" class="label">{}</text>"#,
            left + 110.0 * index as f64,
            left + 16.0 + 110.0 * index as f64,
            escape(name)
        );
        let mut path = String::new();
        for (i, (t, value)) in points.iter().enumerate() {
            let x = left + (t - from) as f64 / span * plot_w;
            let y = top + plot_h * (1.0 - value);
            let _ = write!(path, "{}{x:.1} {y:.1}", if i == 0 { "M" } else { "L" });
            let _ = write!(
                svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{colour}"/>"#
            );
        }
        let _ = write!(
            svg,
            r#"<path d="{path}" stroke="{colour}" stroke-width="2" fill="none"/>"#
        );
    }
    svg.push_str("</svg>");
    svg
}

fn open(height: f64) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img">"#
    )
}

fn axis_percent(svg: &mut String, plot: f64, y: f64) {
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let x = LEFT + tick * plot;
        let _ = write!(
            svg,
            r##"<path d="M{x:.1} 2V{y:.1}" stroke="#e0e0e0"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="label">{:.0} %</text>"##,
            y + 14.0,
            tick * 100.0
        );
    }
}

fn legend(svg: &mut String, left: f64) {
    let mut x = left;
    for &outcome in Outcome::ALL.iter().rev() {
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="6" width="10" height="10" fill="{}"/><text x="{:.1}" y="15" class="legend">{}</text>"#,
            outcome_colour(outcome),
            x + 13.0,
            outcome.as_str()
        );
        x += 22.0 + 6.5 * outcome.as_str().len() as f64;
    }
}

fn short_rate(rate: &Rate) -> String {
    match rate.value {
        Some(value) => format!(
            "{:.1} % ({}/{})",
            value * 100.0,
            rate.successes,
            rate.trials
        ),
        None => "–".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_escaped_labels() {
        let svg = rate_bars(&[("<TCP>".to_owned(), Rate::new(3, 4))]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("&lt;TCP&gt;"));
        assert!(svg.contains("75.0 % (3/4)"));
        let bars = count_bars(&[("1".to_owned(), 5)], "#000");
        assert!(bars.contains(">5</text>"));
    }
}
