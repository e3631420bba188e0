//! Error texts as failure reasons: grouped by what went wrong rather than by whom. Addresses,
//! peer IDs and numbers differ between otherwise identical errors, so they are replaced by
//! placeholders, and the result is cut to [`MAX_REASON_CHARS`].
//!
//! The store keeps the reason of every result and attempt next to its raw error text (written
//! once, at insert), so that a report groups a few short reasons in SQL instead of loading every
//! distinct error text a client ever sent (`punchr-original.md` stores only the raw text).

use std::sync::OnceLock;

use regex::Regex;

/// The longest reason kept, in characters; longer ones are cut and end with `…`.
pub const MAX_REASON_CHARS: usize = 160;

/// The reason of a missing or blank error text.
pub const NO_ERROR_TEXT: &str = "(no error text)";

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
            // Control characters too: a reason is printed on operators' terminals.
            space: regex(r"[\s\p{Cc}]+"),
        }
    })
}

/// The error text with its variable parts replaced (`<addr>`, `<peer>`, `<ip>`, `<hex>`, `<n>`),
/// whitespace and control characters folded into single spaces, cut to [`MAX_REASON_CHARS`].
pub fn failure_reason(error: Option<&str>) -> String {
    let Some(text) = error.map(str::trim).filter(|t| !t.is_empty()) else {
        return NO_ERROR_TEXT.to_owned();
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
    if text.is_empty() {
        return NO_ERROR_TEXT.to_owned();
    }
    if text.chars().count() > MAX_REASON_CHARS {
        let cut: String = text.chars().take(MAX_REASON_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_peers_become_placeholders() {
        let raw = "failed to dial 12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN: \
                   all dials failed: [/ip4/203.0.113.5/tcp/4001] dial tcp 203.0.113.5:4001: i/o timeout";
        assert_eq!(
            failure_reason(Some(raw)),
            "failed to dial <peer>: all dials failed: [<addr>] dial tcp <ip>: i/o timeout"
        );
    }

    #[test]
    fn durations_and_ipv6_are_generalised() {
        assert_eq!(
            failure_reason(Some(
                "no hole punch event after 30.5s from [2001:db8::1]:4001"
            )),
            "no hole punch event after <n>s from <ip>"
        );
        assert_eq!(
            failure_reason(Some("/libp2p/dcutr stream was not opened after 30s")),
            "/libp2p/dcutr stream was not opened after 30s"
        );
        assert_eq!(failure_reason(None), NO_ERROR_TEXT);
        assert_eq!(failure_reason(Some("  ")), NO_ERROR_TEXT);
    }

    #[test]
    fn reasons_are_short_and_hold_no_control_characters() {
        let long = "x".repeat(4096);
        let reason = failure_reason(Some(&long));
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
        assert!(reason.ends_with('…'));
        assert_eq!(
            failure_reason(Some("dial\u{1b}[2J\u{7}failed\r\nagain")),
            "dial [2J failed again"
        );
        assert_eq!(failure_reason(Some("\u{1b}\u{0}")), NO_ERROR_TEXT);
    }
}
