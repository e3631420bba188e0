//! Turning a [`crate::Report`] into what people read: a text table ([`text`]), a self-contained
//! HTML page with inline SVG charts ([`html`], drawing with [`svg`]; rate matrices with
//! [`matrix`]), or JSON (serde).

pub mod html;
pub mod matrix;
pub(crate) mod svg;
pub mod text;

use std::collections::BTreeMap;

/// `1: 4, 3: 1`, or `–` for nothing.
pub(crate) fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "–".to_owned();
    }
    map.iter()
        .map(|(key, n)| format!("{key}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Wording shared by every output, so that the text, the HTML page and the dashboard explain the
/// numbers the same way.
pub mod wording {
    /// Label of SUCCESS / (SUCCESS + FAILED).
    pub const PUBLISHED: &str =
        "success rate as the original published it, SUCCESS / (SUCCESS + FAILED)";
    /// Label of SUCCESS / all.
    pub const END_TO_END: &str = "end-to-end success rate, SUCCESS / all results";
    /// How the transport and IP version splits attribute results.
    pub const DIRECT_ATTRIBUTION: &str = "a SUCCESS counts for the transports of the direct connections it produced \
        (FINAL addresses), any other outcome for those its attempts tried; one result can count for \
        several groups; \"none\" = no direct address known (e.g. NO_STREAM)";
    /// What the time to direct measures.
    pub const TIME_TO_DIRECT: &str =
        "from the end of the relayed connection (connect_ended_at) to the end of the successful attempt";
}
