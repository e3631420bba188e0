//! The labels of `report_facts`' bit sets. The table and the rules that fill it belong to the
//! store (`punchr_store::facts`); reports read it, after asking the store to derive the facts of
//! results it has not seen ([`refresh`]).

use punchr_store::facts::{IP_BITS, TRANSPORT_BITS};
use punchr_store::Store;

use crate::ReportError;
use punchr_types::log_target::REPORT;

/// Has the store derive the facts of every result stored without them; returns how many.
pub(crate) async fn refresh(store: &Store) -> Result<u64, ReportError> {
    let added = store.backfill_report_facts().await?;
    if added > 0 {
        tracing::debug!(target: REPORT, event = "facts_derived", added, "derived report facts");
    }
    Ok(added)
}

/// The transport labels of a `report_facts.transports` bit set.
pub(super) fn transport_labels(mask: i64) -> Vec<&'static str> {
    labels(
        mask,
        TRANSPORT_BITS.iter().map(|(bit, label, _)| (*bit, *label)),
    )
}

/// The IP version labels of a `report_facts.ip_versions` bit set.
pub(super) fn ip_labels(mask: i64) -> Vec<&'static str> {
    labels(mask, IP_BITS.iter().map(|(bit, label, _)| (*bit, *label)))
}

/// The labels of the bits set in `mask`, or `none` for an empty set.
fn labels(mask: i64, bits: impl Iterator<Item = (i64, &'static str)>) -> Vec<&'static str> {
    let labels: Vec<&'static str> = bits
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, label)| label)
        .collect();
    if labels.is_empty() {
        vec!["none"]
    } else {
        labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_name_their_groups() {
        assert_eq!(transport_labels(3), ["TCP", "QUIC"]);
        assert_eq!(transport_labels(0), ["none"]);
        assert_eq!(ip_labels(6), ["IPv6", "other"]);
    }
}
