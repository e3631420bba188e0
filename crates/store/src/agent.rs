//! Which software an identify agent version names: the one place that reads agent strings.
//!
//! Clients announce their agent version in Register (stored on the client host's peer); the
//! honeypot stores each remote's from identify. Three questions depend on it: which quirks of
//! an original Punchr client the server must undo (`punchr-server`'s validation), and how the
//! report splits results by client family and by remote family. Everything here is pure, so
//! the table of agent strings below is the whole specification.
//!
//! Families (with the strings seen in the field and in the lab):
//! - ours: `punchr-rs/client/<version>`;
//! - the original Rust client: `punchr/rust-client/<version>` (libp2p/punchr `rust-client`);
//! - the original Go client: `punchr/go-client/<version>` (`dev` or `0.4.0+abc1234` too);
//! - `kubo/<version>/<commit>`, `go-ipfs/<version>/<commit>`;
//! - `go-libp2p/<version> …` (the lab's go remotes), `github.com/libp2p/go-libp2p@v<version>`;
//! - `rust-libp2p/<version>`, or any agent naming `(rust-libp2p <version>)` (the lab's stock
//!   remote `punchr-lab-remote/<v> (rust-libp2p 0.57.1)`);
//! - `js-libp2p/<version> …`;
//! - anything else is other; a missing or blank agent is unknown.
//!
//! For go-libp2p the version also tells the DCUtR role era ([`DcutrEra`]): go-libp2p before
//! v0.41 swaps the spec's roles, v0.41 to v0.47 can be switched by `legacyBehavior`, and from
//! v0.48 it follows the spec and switches roles on attempt 3.

use std::fmt;

/// A `major.minor.patch` version; missing parts are 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl Version {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// Reads the leading version of `text`: an optional `v`, then up to three dot-separated
    /// numbers; whatever follows the last digit (`-rc1`, `+abc1234`, `-dirty`) is ignored.
    pub fn parse_prefix(text: &str) -> Option<Version> {
        let text = text.trim().strip_prefix('v').unwrap_or(text.trim());
        let mut parts = [0u32; 3];
        let mut found = 0;
        for (slot, part) in parts.iter_mut().zip(text.split('.')) {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            *slot = digits.parse().ok()?;
            found += 1;
            if digits.len() < part.len() {
                break;
            }
        }
        (found > 0).then(|| Version::new(parts[0], parts[1], parts[2]))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The software behind an agent version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AgentFamily {
    /// This repository's client (`punchr-rs/client/`).
    Ours,
    /// The original Rust client (`punchr/rust-client/`).
    OriginalRustClient,
    /// The original Go client (`punchr/go-client/`).
    OriginalGoClient,
    /// Kubo, the Go IPFS node since 0.14.
    Kubo,
    /// go-ipfs, Kubo's name before 0.14.
    GoIpfs,
    /// A go-libp2p program announcing the library itself.
    GoLibp2p,
    /// A rust-libp2p program.
    RustLibp2p,
    /// A js-libp2p program.
    JsLibp2p,
    /// An agent string none of the above matches.
    Other,
    /// No agent version known.
    Unknown,
}

impl AgentFamily {
    /// Every family, in declaration order.
    pub const ALL: [AgentFamily; 10] = [
        AgentFamily::Ours,
        AgentFamily::OriginalRustClient,
        AgentFamily::OriginalGoClient,
        AgentFamily::Kubo,
        AgentFamily::GoIpfs,
        AgentFamily::GoLibp2p,
        AgentFamily::RustLibp2p,
        AgentFamily::JsLibp2p,
        AgentFamily::Other,
        AgentFamily::Unknown,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            AgentFamily::Ours => "punchr-rs client",
            AgentFamily::OriginalRustClient => "original Rust client",
            AgentFamily::OriginalGoClient => "original Go client",
            AgentFamily::Kubo => "kubo",
            AgentFamily::GoIpfs => "go-ipfs",
            AgentFamily::GoLibp2p => "go-libp2p",
            AgentFamily::RustLibp2p => "rust-libp2p",
            AgentFamily::JsLibp2p => "js-libp2p",
            AgentFamily::Other => "other",
            AgentFamily::Unknown => "unknown",
        }
    }

    /// Whether this is one of the original Punchr clients (libp2p/punchr), whose quirks the
    /// server normalises.
    pub fn is_original_client(self) -> bool {
        matches!(
            self,
            AgentFamily::OriginalRustClient | AgentFamily::OriginalGoClient
        )
    }
}

/// How a go-libp2p version assigns the DCUtR roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DcutrEra {
    /// Before v0.41: the roles are swapped against the spec.
    LegacyRoles,
    /// v0.41 to v0.47: the `legacyBehavior` switch, whose default gives the spec's roles (read
    /// in the sources and measured in the lab; see `punchr_dcutr::RoleStrategy`).
    LegacySwitch,
    /// v0.48 and later: the spec's roles, the initiator switching to client on attempt 3.
    SpecRoles,
}

impl DcutrEra {
    /// The era of go-libp2p `version`.
    pub fn of_go_libp2p(version: Version) -> DcutrEra {
        if version < Version::new(0, 41, 0) {
            DcutrEra::LegacyRoles
        } else if version < Version::new(0, 48, 0) {
            DcutrEra::LegacySwitch
        } else {
            DcutrEra::SpecRoles
        }
    }

    /// A short description for reports.
    pub fn name(self) -> &'static str {
        match self {
            DcutrEra::LegacyRoles => "legacy DCUtR roles",
            DcutrEra::LegacySwitch => "legacyBehavior switch",
            DcutrEra::SpecRoles => "spec DCUtR roles",
        }
    }
}

/// An agent version, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Agent {
    /// The software.
    pub family: AgentFamily,
    /// Its version, where the string names one.
    pub version: Option<Version>,
}

impl Agent {
    /// Classifies an agent version as stored (`None`: not known).
    pub fn classify(agent: Option<&str>) -> Agent {
        let Some(agent) = agent.map(str::trim).filter(|a| !a.is_empty()) else {
            return Agent {
                family: AgentFamily::Unknown,
                version: None,
            };
        };
        const PREFIXES: [(&str, AgentFamily); 9] = [
            ("punchr-rs/client/", AgentFamily::Ours),
            ("punchr/rust-client/", AgentFamily::OriginalRustClient),
            ("punchr/go-client/", AgentFamily::OriginalGoClient),
            ("kubo/", AgentFamily::Kubo),
            ("go-ipfs/", AgentFamily::GoIpfs),
            ("go-libp2p/", AgentFamily::GoLibp2p),
            ("github.com/libp2p/go-libp2p@", AgentFamily::GoLibp2p),
            ("rust-libp2p/", AgentFamily::RustLibp2p),
            ("js-libp2p/", AgentFamily::JsLibp2p),
        ];
        for (prefix, family) in PREFIXES {
            if let Some(rest) = agent.strip_prefix(prefix) {
                return Agent {
                    family,
                    version: Version::parse_prefix(rest),
                };
            }
        }
        // Programs built on rust-libp2p that say so in parentheses.
        if let Some(at) = agent.find("(rust-libp2p ") {
            return Agent {
                family: AgentFamily::RustLibp2p,
                version: Version::parse_prefix(&agent[at + "(rust-libp2p ".len()..]),
            };
        }
        Agent {
            family: AgentFamily::Other,
            version: None,
        }
    }

    /// The DCUtR role era, for go-libp2p agents with a version.
    pub fn dcutr_era(&self) -> Option<DcutrEra> {
        match (self.family, self.version) {
            (AgentFamily::GoLibp2p, Some(version)) => Some(DcutrEra::of_go_libp2p(version)),
            _ => None,
        }
    }

    /// The group a report puts this agent in: the family with its `major.minor` version, and
    /// for go-libp2p the DCUtR era (`go-libp2p 0.40 (legacy DCUtR roles)`, `kubo 0.43`,
    /// `original Rust client 0.2`, `other`).
    pub fn group(&self) -> String {
        let mut group = self.family.name().to_owned();
        if let Some(v) = self.version {
            group.push_str(&format!(" {}.{}", v.major, v.minor));
        }
        if let Some(era) = self.dcutr_era() {
            group.push_str(&format!(" ({})", era.name()));
        }
        group
    }
}

/// The agent version without the build suffix that splits one release into many groups:
/// `kubo/0.25.0/413a52d` and `kubo/0.25.0/` both become `kubo/0.25.0`; a missing or blank agent
/// is `(unknown)`.
pub fn release(agent: Option<&str>) -> String {
    let Some(agent) = agent.map(str::trim).filter(|a| !a.is_empty()) else {
        return "(unknown)".to_owned();
    };
    let mut parts: Vec<&str> = agent.split('/').collect();
    while parts.len() > 1 {
        let last = parts[parts.len() - 1];
        let is_commit = last.len() >= 7 && last.chars().all(|c| c.is_ascii_hexdigit());
        if last.is_empty() || is_commit {
            parts.pop();
        } else {
            break;
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_strings_classify() {
        use AgentFamily::*;
        let v = |a, b, c| Some(Version::new(a, b, c));
        let table: &[(Option<&str>, AgentFamily, Option<Version>, &str)] = &[
            (
                Some("punchr-rs/client/0.1.0"),
                Ours,
                v(0, 1, 0),
                "punchr-rs client 0.1",
            ),
            (
                Some("punchr/rust-client/0.2.1"),
                OriginalRustClient,
                v(0, 2, 1),
                "original Rust client 0.2",
            ),
            (
                Some("punchr/go-client/0.8.0"),
                OriginalGoClient,
                v(0, 8, 0),
                "original Go client 0.8",
            ),
            (
                Some("punchr/go-client/0.4.0+c476515"),
                OriginalGoClient,
                v(0, 4, 0),
                "original Go client 0.4",
            ),
            (
                Some("punchr/go-client/dev"),
                OriginalGoClient,
                None,
                "original Go client",
            ),
            (Some("kubo/0.43.1/3e9c6a4"), Kubo, v(0, 43, 1), "kubo 0.43"),
            (Some("kubo/0.25.0/"), Kubo, v(0, 25, 0), "kubo 0.25"),
            (
                Some("go-ipfs/0.12.0/06191df"),
                GoIpfs,
                v(0, 12, 0),
                "go-ipfs 0.12",
            ),
            (
                Some("go-libp2p/0.40.0 (punchr-lab remote)"),
                GoLibp2p,
                v(0, 40, 0),
                "go-libp2p 0.40 (legacy DCUtR roles)",
            ),
            (
                Some("go-libp2p/0.44.0"),
                GoLibp2p,
                v(0, 44, 0),
                "go-libp2p 0.44 (legacyBehavior switch)",
            ),
            (
                Some("github.com/libp2p/go-libp2p@v0.48.0"),
                GoLibp2p,
                v(0, 48, 0),
                "go-libp2p 0.48 (spec DCUtR roles)",
            ),
            (
                Some("rust-libp2p/0.45.0"),
                RustLibp2p,
                v(0, 45, 0),
                "rust-libp2p 0.45",
            ),
            (
                Some("punchr-lab-remote/0.1.0 (rust-libp2p 0.57.1)"),
                RustLibp2p,
                v(0, 57, 1),
                "rust-libp2p 0.57",
            ),
            (
                Some("js-libp2p/3.3.11 UserAgent=v22.12.0"),
                JsLibp2p,
                v(3, 3, 11),
                "js-libp2p 3.3",
            ),
            (Some("storm"), Other, None, "other"),
            // The original's prefix without its slash is not the original.
            (Some("punchr/rust-clientx/1.0.0"), Other, None, "other"),
            (Some("  "), Unknown, None, "unknown"),
            (None, Unknown, None, "unknown"),
        ];
        for (agent, family, version, group) in table {
            let classified = Agent::classify(*agent);
            assert_eq!(classified.family, *family, "{agent:?}");
            assert_eq!(classified.version, *version, "{agent:?}");
            assert_eq!(classified.group(), *group, "{agent:?}");
        }
    }

    #[test]
    fn go_libp2p_eras_change_at_041_and_048() {
        let era = |a, b, c| DcutrEra::of_go_libp2p(Version::new(a, b, c));
        assert_eq!(era(0, 23, 4), DcutrEra::LegacyRoles);
        assert_eq!(era(0, 40, 9), DcutrEra::LegacyRoles);
        assert_eq!(era(0, 41, 0), DcutrEra::LegacySwitch);
        assert_eq!(era(0, 47, 3), DcutrEra::LegacySwitch);
        assert_eq!(era(0, 48, 0), DcutrEra::SpecRoles);
        assert_eq!(era(1, 0, 0), DcutrEra::SpecRoles);
        // Only go-libp2p agents have an era: kubo's string does not name its go-libp2p.
        assert_eq!(Agent::classify(Some("kubo/0.43.1/x")).dcutr_era(), None);
    }

    #[test]
    fn versions_read_their_leading_numbers() {
        assert_eq!(
            Version::parse_prefix("v0.48.0"),
            Some(Version::new(0, 48, 0))
        );
        assert_eq!(
            Version::parse_prefix("0.18.1-rc1/x"),
            Some(Version::new(0, 18, 1))
        );
        assert_eq!(Version::parse_prefix("2"), Some(Version::new(2, 0, 0)));
        assert_eq!(
            Version::parse_prefix("1.2 (x)"),
            Some(Version::new(1, 2, 0))
        );
        assert_eq!(Version::parse_prefix("dev"), None);
        assert_eq!(Version::parse_prefix(""), None);
        assert_eq!(Version::parse_prefix("99999999999.1"), None);
    }

    #[test]
    fn only_the_original_clients_are_original() {
        let originals: Vec<AgentFamily> = AgentFamily::ALL
            .into_iter()
            .filter(|f| f.is_original_client())
            .collect();
        assert_eq!(
            originals,
            [
                AgentFamily::OriginalRustClient,
                AgentFamily::OriginalGoClient
            ]
        );
    }

    #[test]
    fn releases_drop_build_suffixes() {
        assert_eq!(release(Some("kubo/0.25.0/413a52d")), "kubo/0.25.0");
        assert_eq!(release(Some("kubo/0.25.0/")), "kubo/0.25.0");
        assert_eq!(
            release(Some("go-ipfs/0.18.1/675f8bd-dirty")),
            "go-ipfs/0.18.1/675f8bd-dirty"
        );
        assert_eq!(release(Some("rust-libp2p/0.45.0")), "rust-libp2p/0.45.0");
        assert_eq!(release(None), "(unknown)");
        assert_eq!(release(Some(" ")), "(unknown)");
    }
}
