//! Error texts grouped by what went wrong rather than by whom: addresses, peer IDs and numbers
//! differ between otherwise identical errors, so they are replaced by placeholders before
//! grouping. SQL groups the raw texts (few distinct ones per million results); this module
//! merges the groups that normalise to the same text.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;

use crate::model::FailureReason;

/// The longest normalised reason kept; longer ones are cut.
const MAX_REASON_CHARS: usize = 160;

/// How many reasons a report lists per table; the rest are summed as `(other reasons)`.
pub(crate) const MAX_REASONS: usize = 20;

struct Patterns {
    multiaddr: Regex,
    peer_id: Regex,
    ipv4: Regex,
    ipv6: Regex,
    hex: Regex,
    decimal: Regex,
    space: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let regex = |pattern: &str| Regex::new(pattern).expect("valid pattern");
        Patterns {
            multiaddr: regex(
                r"/(?:ip4|ip6|dns|dns4|dns6|dnsaddr|p2p|p2p-circuit)(?:/[^\s,;\]\)\}]*)?",
            ),
            peer_id: regex(r"\b(?:12D3KooW|16Uiu2HA|Qm)[1-9A-HJ-NP-Za-km-z]{30,}\b"),
            ipv4: regex(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"),
            ipv6: regex(r"\[[0-9A-Fa-f:.]+\](?::\d+)?"),
            hex: regex(r"\b(?:0x)?[0-9A-Fa-f]{16,}\b"),
            decimal: regex(r"\b\d+\.\d+"),
            space: regex(r"\s+"),
        }
    })
}

/// The error text with its variable parts replaced: `<addr>`, `<peer>`, `<ip>`, `<hex>`, `<n>`.
pub(crate) fn normalise(error: Option<&str>) -> String {
    let Some(text) = error.map(str::trim).filter(|t| !t.is_empty()) else {
        return "(no error text)".to_owned();
    };
    let p = patterns();
    let text = p.multiaddr.replace_all(text, "<addr>");
    let text = p.peer_id.replace_all(&text, "<peer>");
    let text = p.ipv6.replace_all(&text, "<ip>");
    let text = p.ipv4.replace_all(&text, "<ip>");
    let text = p.hex.replace_all(&text, "<hex>");
    let text = p.decimal.replace_all(&text, "<n>");
    let text = p.space.replace_all(&text, " ");
    let text = text.trim();
    if text.chars().count() > MAX_REASON_CHARS {
        let cut: String = text.chars().take(MAX_REASON_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    }
}

/// Merges raw `(outcome, error, count)` groups by normalised text; the `MAX_REASONS` most frequent
/// first, the rest summed per outcome as `(other reasons)`.
pub(crate) fn group_reasons(raw: Vec<(String, Option<String>, u64)>) -> Vec<FailureReason> {
    let mut merged: HashMap<(String, String), u64> = HashMap::new();
    for (outcome, error, count) in raw {
        *merged
            .entry((outcome, normalise(error.as_deref())))
            .or_default() += count;
    }
    let mut reasons: Vec<FailureReason> = merged
        .into_iter()
        .map(|((outcome, reason), count)| FailureReason {
            outcome,
            reason,
            count,
        })
        .collect();
    reasons.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.outcome.cmp(&b.outcome))
            .then_with(|| a.reason.cmp(&b.reason))
    });
    if reasons.len() <= MAX_REASONS {
        return reasons;
    }
    let rest = reasons.split_off(MAX_REASONS);
    let mut other: HashMap<String, u64> = HashMap::new();
    for reason in rest {
        *other.entry(reason.outcome).or_default() += reason.count;
    }
    let mut other: Vec<FailureReason> = other
        .into_iter()
        .map(|(outcome, count)| FailureReason {
            outcome,
            reason: "(other reasons)".to_owned(),
            count,
        })
        .collect();
    other.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.outcome.cmp(&b.outcome))
    });
    reasons.extend(other);
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_peers_become_placeholders() {
        let raw = "failed to dial 12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN: \
                   all dials failed: [/ip4/203.0.113.5/tcp/4001] dial tcp 203.0.113.5:4001: i/o timeout";
        assert_eq!(
            normalise(Some(raw)),
            "failed to dial <peer>: all dials failed: [<addr>] dial tcp <ip>: i/o timeout"
        );
    }

    #[test]
    fn durations_and_ipv6_are_generalised() {
        assert_eq!(
            normalise(Some(
                "no hole punch event after 30.5s from [2001:db8::1]:4001"
            )),
            "no hole punch event after <n>s from <ip>"
        );
        assert_eq!(
            normalise(Some("/libp2p/dcutr stream was not opened after 30s")),
            "/libp2p/dcutr stream was not opened after 30s"
        );
        assert_eq!(normalise(None), "(no error text)");
        assert_eq!(normalise(Some("  ")), "(no error text)");
    }

    #[test]
    fn equal_reasons_merge_and_the_tail_is_summed() {
        let mut raw = vec![
            (
                "FAILED".to_owned(),
                Some("dial 1.2.3.4:5 refused".to_owned()),
                3,
            ),
            (
                "FAILED".to_owned(),
                Some("dial 5.6.7.8:9 refused".to_owned()),
                4,
            ),
        ];
        for i in 0..30 {
            raw.push(("NO_STREAM".to_owned(), Some(format!("reason {i}")), 1));
        }
        let grouped = group_reasons(raw);
        assert_eq!(grouped[0].reason, "dial <ip> refused");
        assert_eq!(grouped[0].count, 7);
        assert_eq!(grouped.len(), MAX_REASONS + 1);
        let other = grouped.last().unwrap();
        assert_eq!(
            (other.reason.as_str(), other.count),
            ("(other reasons)", 11)
        );
    }
}
