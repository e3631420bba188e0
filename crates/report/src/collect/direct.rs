//! Transport and IP version of the direct connection a hole punch produced or tried.
//!
//! A SUCCESS counts for the transports (and IP versions) of its direct connections: the
//! non-relay FINAL addresses. Any other outcome counts for what it tried: the non-relay addresses
//! of its attempts. One result can count for several groups (a punch that tried TCP and QUIC and
//! failed is a failure for both); results with no such address form the group `none`. The bit
//! sets are derived once per result into `report_facts` ([`super::facts`]).

use std::collections::{BTreeMap, HashMap};

use super::facts::{ip_labels, transport_labels};
use super::groups::largest_groups;
use super::summary::SummaryRow;
use crate::model::{GroupRow, OutcomeCounts, TransportBucket};

/// The group of results without a known direct address.
const NONE: &str = "none";

/// Counts per (group, bucket start in seconds).
#[derive(Debug, Default)]
pub(super) struct DirectCounts {
    transport: BTreeMap<(&'static str, i64), OutcomeCounts>,
    ip_version: BTreeMap<(&'static str, i64), OutcomeCounts>,
}

/// The finished splits.
pub(super) struct DirectSplits {
    pub(super) by_transport: Vec<GroupRow>,
    pub(super) by_ip_version: Vec<GroupRow>,
    pub(super) over_time: Vec<TransportBucket>,
}

pub(super) fn by_direct_connection(summary: &[SummaryRow]) -> DirectCounts {
    let mut counts = DirectCounts::default();
    for row in summary {
        for label in transport_labels(row.transports) {
            counts
                .transport
                .entry((label, row.bucket))
                .or_default()
                .add(row.outcome, row.results);
        }
        for label in ip_labels(row.ip_versions) {
            counts
                .ip_version
                .entry((label, row.bucket))
                .or_default()
                .add(row.outcome, row.results);
        }
    }
    counts
}

impl DirectCounts {
    /// Sums the buckets into totals per group.
    pub(super) fn finish(self) -> DirectSplits {
        let over_time = self
            .transport
            .iter()
            .filter(|((label, _), _)| *label != NONE)
            .map(|((label, start), outcomes)| TransportBucket {
                start: *start,
                transport: (*label).to_owned(),
                outcomes: *outcomes,
                published: outcomes.published_rate(),
            })
            .collect::<Vec<_>>();
        let mut over_time = over_time;
        over_time.sort_by(|a, b| {
            a.start
                .cmp(&b.start)
                .then_with(|| a.transport.cmp(&b.transport))
        });
        DirectSplits {
            by_transport: totals(&self.transport),
            by_ip_version: totals(&self.ip_version),
            over_time,
        }
    }
}

/// Sums buckets per group; `none` last.
fn totals(per_bucket: &BTreeMap<(&'static str, i64), OutcomeCounts>) -> Vec<GroupRow> {
    let mut groups: HashMap<String, OutcomeCounts> = HashMap::new();
    for ((label, _), outcomes) in per_bucket {
        groups
            .entry((*label).to_owned())
            .or_default()
            .add_all(outcomes);
    }
    let none = groups.remove(NONE);
    let mut rows = largest_groups(groups, usize::MAX, "");
    if let Some(none) = none {
        rows.push(GroupRow::new(NONE, none));
    }
    rows
}
