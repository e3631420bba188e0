//! A matrix of success rates for HTML pages: one row per value of one axis (a client's NAT type),
//! one column per value of the other (the remote's), each cell coloured by its success rate and
//! showing n, the rate, its 95 % interval and a caller's mark (the lab puts NAT theory's
//! prediction there). Like the published campaign's continent matrix, readable at a glance.
//!
//! It is an HTML table rather than SVG: labels take the room they need and wrap instead of being
//! cut off, whatever their length.

use std::fmt::Write;

use super::html::escape;
use crate::Rate;

/// One cell of a [`matrix`].
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixCell {
    /// The row it belongs to (e.g. the client's NAT type).
    pub row: String,
    /// The column it belongs to (e.g. the remote's NAT type).
    pub column: String,
    /// SUCCESS / (SUCCESS + FAILED) with its interval.
    pub rate: Rate,
    /// All punches of the cell, decided or not.
    pub punches: u64,
    /// A short mark under the numbers (e.g. `theory ✓ ↔`).
    pub mark: String,
    /// A warning shown in bold (e.g. `disagrees`), if any.
    pub flag: Option<String>,
    /// What a tooltip explains (e.g. the rule theory applied).
    pub title: String,
}

/// Rows and columns in the order their first cell appears.
fn axes(cells: &[MatrixCell]) -> (Vec<&str>, Vec<&str>) {
    let mut rows: Vec<&str> = Vec::new();
    let mut columns: Vec<&str> = Vec::new();
    for cell in cells {
        if !rows.contains(&cell.row.as_str()) {
            rows.push(&cell.row);
        }
        if !columns.contains(&cell.column.as_str()) {
            columns.push(&cell.column);
        }
    }
    (rows, columns)
}

/// The background of a cell: red at 0 %, yellow at 50 %, green at 100 %; grey with no decided
/// punch.
pub fn colour(rate: &Rate) -> String {
    match rate.value {
        Some(value) => format!("hsl({:.0},70%,78%)", value * 120.0),
        None => "#eeeeee".to_owned(),
    }
}

/// The matrix as an HTML `<table class="matrix">` with a caption; `row_axis` and `column_axis`
/// name what the rows and columns are.
pub fn matrix(caption: &str, row_axis: &str, column_axis: &str, cells: &[MatrixCell]) -> String {
    let (rows, columns) = axes(cells);
    let mut html = format!(
        "<table class=\"matrix\"><caption>{}</caption><tr><th class=\"corner\">{} ↓ · {} →</th>",
        escape(caption),
        escape(row_axis),
        escape(column_axis)
    );
    for column in &columns {
        let _ = write!(html, "<th scope=\"col\">{}</th>", escape(column));
    }
    html.push_str("</tr>");
    for row in &rows {
        let _ = write!(html, "<tr><th scope=\"row\">{}</th>", escape(row));
        for column in &columns {
            match cells.iter().find(|c| c.row == *row && c.column == *column) {
                Some(cell) => cell_html(&mut html, cell),
                None => html.push_str("<td class=\"empty\">not measured</td>"),
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

fn cell_html(html: &mut String, cell: &MatrixCell) {
    let rate = match cell.rate.value {
        Some(value) => format!("{:.0} %", value * 100.0),
        None => "–".to_owned(),
    };
    let interval = match cell.rate.ci95 {
        Some([low, high]) => format!("[{:.0}–{:.0} %]", low * 100.0, high * 100.0),
        None => "no decided punch".to_owned(),
    };
    let _ = write!(
        html,
        "<td style=\"background:{}\" data-row=\"{}\" data-column=\"{}\" title=\"{}\">\
         <span class=\"rate\">{rate}</span><span class=\"n\">{}/{} decided · n = {}</span>\
         <span class=\"ci\">{interval}</span><span class=\"mark\">{}</span>",
        colour(&cell.rate),
        escape(&cell.row),
        escape(&cell.column),
        escape(&cell.title),
        cell.rate.successes,
        cell.rate.trials,
        cell.punches,
        escape(&cell.mark),
    );
    if let Some(flag) = &cell.flag {
        let _ = write!(html, "<span class=\"flag\">{}</span>", escape(flag));
    }
    html.push_str("</td>");
}

/// The matrix's style, for pages that show one.
pub const MATRIX_STYLE: &str = "table.matrix{border-collapse:collapse;margin:12px 0 24px}\
table.matrix caption{text-align:left;font-weight:600;padding:4px 0}\
table.matrix th,table.matrix td{border:1px solid #999;padding:6px 10px;text-align:center;vertical-align:middle}\
table.matrix th{background:#f5f5f5;white-space:nowrap}\
table.matrix th.corner{font-weight:400;font-size:85%}\
table.matrix td span{display:block;white-space:nowrap}\
table.matrix td .rate{font-size:130%;font-weight:700}\
table.matrix td .n,table.matrix td .ci,table.matrix td .mark{font-size:85%}\
table.matrix td .flag{font-weight:700;color:#b00020}\
table.matrix td.empty{color:#777;font-size:85%}";

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(row: &str, column: &str, successes: u64, trials: u64) -> MatrixCell {
        MatrixCell {
            row: row.into(),
            column: column.into(),
            rate: Rate::new(successes, trials),
            punches: trials + 1,
            mark: "theory ✓ ↔".into(),
            flag: (successes == 0).then(|| "disagrees".to_owned()),
            title: "both directions <open>".into(),
        }
    }

    #[test]
    fn a_cell_per_pair_in_first_seen_order_with_gaps_named() {
        let html = matrix(
            "TCP",
            "client NAT",
            "remote NAT",
            &[
                cell("full-cone", "symmetric", 0, 20),
                cell("symmetric", "full-cone", 19, 20),
                cell("symmetric", "symmetric", 0, 0),
            ],
        );
        let full_cone_row = html.find("<th scope=\"row\">full-cone").unwrap();
        let symmetric_row = html.find("<th scope=\"row\">symmetric").unwrap();
        assert!(full_cone_row < symmetric_row, "{html}");
        assert_eq!(html.matches("<td").count(), 4, "{html}");
        assert!(html.contains("not measured"));
        assert!(html.contains("95 %") && html.contains("19/20 decided · n = 21"));
        assert!(html.contains("[0–16 %]"), "{html}");
        assert!(
            html.contains("both directions &lt;open&gt;"),
            "escaped: {html}"
        );
        assert!(html.contains("hsl(114,70%,78%)") && html.contains("hsl(0,70%,78%)"));
        assert!(html.contains("no decided punch") && html.contains("#eeeeee"));
    }
}
