//! The protocol filter sent with GetAddrInfo answers: which transports the client should prefer
//! for the hole punch (`punchr-original.md` §5). By default the original's draw; a campaign may
//! instead pick uniformly among filters it names (the NAT lab uses TCP and QUIC over IPv4).

use std::str::FromStr;

/// Multiaddr protocol codes of the filters.
const IP4: i32 = 4;
const IP6: i32 = 41;
const TCP: i32 = 6;
/// QUIC (draft-29 code, as the original sent it); clients treat it as any QUIC version.
const QUIC: i32 = 460;

/// One filter: the protocol codes a hole punch address should contain (empty: no preference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolFilter(pub Vec<i32>);

impl FromStr for ProtocolFilter {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let codes = match text.trim() {
            "ip4/tcp" => vec![IP4, TCP],
            "ip4/quic" => vec![IP4, QUIC],
            "ip6/tcp" => vec![IP6, TCP],
            "ip6/quic" => vec![IP6, QUIC],
            "none" => vec![],
            other => {
                return Err(format!(
                    "unknown protocol filter {other:?}; use ip4/tcp, ip4/quic, ip6/tcp, ip6/quic or none"
                ))
            }
        };
        Ok(ProtocolFilter(codes))
    }
}

/// How the server picks the filter for an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterDraw {
    /// The original's draw: 15 % each of ip4/tcp, ip4/quic, ip6/tcp, ip6/quic; 40 % none.
    Original,
    /// Never a filter.
    Off,
    /// Uniformly among these.
    Uniform(Vec<ProtocolFilter>),
}

impl FilterDraw {
    /// The filter for a draw `r` in [0, 1).
    pub fn pick(&self, r: f32) -> Vec<i32> {
        match self {
            FilterDraw::Original => original_draw(r),
            FilterDraw::Off => Vec::new(),
            FilterDraw::Uniform(filters) if filters.is_empty() => Vec::new(),
            FilterDraw::Uniform(filters) => {
                let index = ((r * filters.len() as f32) as usize).min(filters.len() - 1);
                filters[index].0.clone()
            }
        }
    }
}

fn original_draw(r: f32) -> Vec<i32> {
    match r {
        r if r < 0.15 => vec![IP4, TCP],
        r if r < 0.30 => vec![IP4, QUIC],
        r if r < 0.45 => vec![IP6, TCP],
        r if r < 0.60 => vec![IP6, QUIC],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_draw_keeps_its_shares() {
        let draw = FilterDraw::Original;
        assert_eq!(draw.pick(0.0), vec![4, 6]);
        assert_eq!(draw.pick(0.2), vec![4, 460]);
        assert_eq!(draw.pick(0.4), vec![41, 6]);
        assert_eq!(draw.pick(0.5), vec![41, 460]);
        assert!(draw.pick(0.6).is_empty());
        assert!(draw.pick(0.999).is_empty());
    }

    #[test]
    fn named_filters_are_drawn_uniformly() {
        let draw = FilterDraw::Uniform(vec![
            "ip4/tcp".parse().unwrap(),
            "ip4/quic".parse().unwrap(),
        ]);
        assert_eq!(draw.pick(0.0), vec![4, 6]);
        assert_eq!(draw.pick(0.49), vec![4, 6]);
        assert_eq!(draw.pick(0.5), vec![4, 460]);
        assert_eq!(draw.pick(0.9999), vec![4, 460]);
        assert!(FilterDraw::Off.pick(0.1).is_empty());
        assert!("ip5/tcp"
            .parse::<ProtocolFilter>()
            .unwrap_err()
            .contains("unknown protocol filter"));
    }
}
