//! Scenarios as data: a TOML file names the routers (with their NAT type), the peers (with their
//! role, where they sit and the command they run), the links' delay and loss, and the campaign's
//! length. One runner executes any scenario (the habit is iroh's `.github/sims/*.json`).
//!
//! ```toml
//! name = "example"
//! [campaign]
//! duration = "2m"
//! [link]                 # every uplink unless a router or WAN peer says otherwise
//! delay = "10ms"
//! jitter = "0ms"
//! loss = 0.0
//! [[router]]
//! name = "home1"
//! nat = "port-restricted"
//! [[peer]]
//! name = "relay"
//! role = "relay"
//! at = "wan"
//! command = "{bin_dir}/punchr-lab relay --listen-ip {ip}"
//! ready = "tcp:4001"
//! [[peer]]
//! name = "remote1"
//! role = "remote"
//! at = "home1"
//! command = "{bin_dir}/punchr-lab remote-peer --relay {ip:relay}"
//! ```
//!
//! Placeholders in `command` and `env` values are documented in [`crate::template`].

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::implementation::Implementation;
use crate::nat::NatType;
use crate::theory::Transport;

/// The scenario compiled into the binary as the default campaign.
pub const DEFAULT_SCENARIO: &str = include_str!("../scenarios/default.toml");
/// The short scenario CI runs.
pub const CI_SCENARIO: &str = include_str!("../scenarios/ci.toml");
/// The interop campaign: remotes of the field's implementations (`--remote-impls`).
pub const INTEROP_SCENARIO: &str = include_str!("../scenarios/interop.toml");

/// Longest router or peer name: namespace names are `plab-<6 hex>-<name>[-cgn]`.
pub const MAX_NAME_LEN: usize = 20;

/// A validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its name, for reports and logs.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// How long the campaign runs.
    pub campaign: Campaign,
    /// The link settings every router and WAN peer gets unless it overrides them.
    pub default_link: Link,
    /// The NAT routers, in file order.
    pub routers: Vec<Router>,
    /// The peers, in file order.
    pub peers: Vec<Peer>,
    /// Behaviour every router shares.
    pub nat: NatSettings,
}

/// `[nat]`: settings of every router's NAT.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NatSettings {
    /// How long a UDP mapping outlives its last packet (`udp_timeout`); default: the kernel's
    /// (30 s before a reply, 120 s after). A mapping left over from an earlier punch lets the
    /// remote's plain dial in, so a campaign that punches one pair again sooner measures
    /// reversals, not hole punches; consumer routers often keep UDP mappings for only 30 s.
    pub udp_timeout: Option<Duration>,
}

/// Campaign settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// How long the clients run once everything is up.
    pub duration: Duration,
    /// How long to wait after the WAN services and remote peers started before starting the
    /// clients (so remote peers hold relay reservations and have met the honeypot).
    pub settle: Duration,
    /// The transports the server asks clients to punch with (its protocol filters), drawn
    /// uniformly per punch.
    pub transports: Vec<Transport>,
    /// End the campaign once this many results are stored (`duration` stays the upper bound).
    pub punches: Option<u64>,
    /// End the campaign once every cell it covers (client NAT × remote NAT × remote
    /// implementation × transport) holds this many decided punches, SUCCESS or FAILED
    /// (`duration` stays the upper bound).
    pub per_cell: Option<u64>,
    /// Hosts (libp2p identities) each punchr client runs.
    pub hosts_per_client: u32,
    /// Seed of the links' loss and jitter (`seed`); the lab draws one when absent and writes it
    /// into the run directory's `scenario.toml`.
    pub seed: Option<u64>,
}

/// Hosts per client when a scenario does not say: two, so each client punches two remotes at a
/// time without loading a small machine.
pub const DEFAULT_HOSTS_PER_CLIENT: u32 = 2;

/// Parses a transport name as written in scenarios and flags (`tcp`, `quic`).
pub fn parse_transport(text: &str) -> Result<Transport, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "tcp" => Ok(Transport::Tcp),
        "quic" => Ok(Transport::Quic),
        other => Err(format!("unknown transport {other:?} (known: tcp, quic)")),
    }
}

/// One direction-symmetric link: every packet crossing it in either direction is delayed by
/// `delay ± jitter` and lost with probability `loss`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// One-way delay.
    pub delay: Duration,
    /// Uniform jitter around the delay (packets may be reordered, as with netem).
    pub jitter: Duration,
    /// Loss probability per packet and direction, 0.0 to 1.0.
    pub loss: f64,
}

impl Link {
    /// A link that adds nothing, so no delayer needs to run for it.
    pub fn is_transparent(&self) -> bool {
        self.delay.is_zero() && self.jitter.is_zero() && self.loss == 0.0
    }
}

/// How a link setting is given: explicitly on the router or peer, or inherited.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkOverride {
    /// One-way delay, if set.
    pub delay: Option<Duration>,
    /// Jitter, if set.
    pub jitter: Option<Duration>,
    /// Loss, if set.
    pub loss: Option<f64>,
}

impl LinkOverride {
    /// The link this override gives on top of `base`.
    pub fn apply(&self, base: Link) -> Link {
        Link {
            delay: self.delay.unwrap_or(base.delay),
            jitter: self.jitter.unwrap_or(base.jitter),
            loss: self.loss.unwrap_or(base.loss),
        }
    }
}

/// A NAT router (or, for [`NatType::Double`], a home router behind a carrier-grade NAT).
#[derive(Debug, Clone, PartialEq)]
pub struct Router {
    /// Its name (unique among routers and peers).
    pub name: String,
    /// Its NAT type; never [`NatType::Public`].
    pub nat: NatType,
    /// Its uplink, relative to the scenario's default.
    pub link: LinkOverride,
}

/// What a peer is for in the campaign; the runner starts roles in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The campaign's PostgreSQL server (`run --db postgres`).
    Database,
    /// A circuit relay v2 server.
    Relay,
    /// A Kademlia DHT server the others bootstrap from.
    Bootstrap,
    /// The punchr honeypot.
    Honeypot,
    /// The punchr gRPC server.
    Server,
    /// A NATed libp2p peer that holds a relay reservation and does DHT lookups.
    Remote,
    /// A punchr client.
    Client,
    /// A bare host: a namespace with an address, for probes and manual experiments.
    Host,
}

impl Role {
    /// The role's name as written in scenarios.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Database => "database",
            Role::Relay => "relay",
            Role::Bootstrap => "bootstrap",
            Role::Honeypot => "honeypot",
            Role::Server => "server",
            Role::Remote => "remote",
            Role::Client => "client",
            Role::Host => "host",
        }
    }
}

/// Where a peer sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    /// Directly on the WAN, with a public address.
    Wan,
    /// Behind the named router.
    Router(String),
}

/// When the runner considers a started peer ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// Once the process listens on this TCP port.
    Tcp(u16),
    /// Once the process has a UDP socket bound to this port.
    Udp(u16),
    /// Once its log contains this text.
    Log(String),
}

/// A peer: one namespace, one address, optionally one process.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    /// Its name (unique among routers and peers).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Where it sits.
    pub at: Attachment,
    /// The command template it runs, if any (see [`crate::template`]).
    pub command: Option<String>,
    /// Extra environment variables (values are templates too).
    pub env: BTreeMap<String, String>,
    /// When it counts as started.
    pub ready: Option<Ready>,
    /// Its uplink, for peers on the WAN (peers behind a router share the router's uplink).
    pub link: LinkOverride,
    /// The libp2p implementation a remote runs (`impl`; `{remote}` in its command).
    pub implementation: Implementation,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    campaign: RawCampaign,
    #[serde(default)]
    link: RawLink,
    #[serde(default, rename = "router")]
    routers: Vec<RawRouter>,
    #[serde(default, rename = "peer")]
    peers: Vec<RawPeer>,
    #[serde(default)]
    nat: RawNat,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawNat {
    #[serde(skip_serializing_if = "Option::is_none")]
    udp_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawCampaign {
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transports: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    punches: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_cell: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hosts_per_client: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    #[serde(skip_serializing_if = "Option::is_none")]
    delay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jitter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<f64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawRouter {
    name: String,
    nat: String,
    #[serde(flatten)]
    link: RawLink,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    name: String,
    role: Role,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ready: Option<String>,
    #[serde(rename = "impl", skip_serializing_if = "Option::is_none")]
    implementation: Option<String>,
    #[serde(flatten)]
    link: RawLink,
}

/// The default link when a scenario gives none: 10 ms one way, no jitter, no loss.
pub const DEFAULT_LINK: Link = Link {
    delay: Duration::from_millis(10),
    jitter: Duration::ZERO,
    loss: 0.0,
};

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| LabError::ReadScenario {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses and validates scenario text; `origin` names it in error messages.
    pub fn parse(origin: &str, text: &str) -> Result<Self> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| LabError::ParseScenario {
            name: origin.to_owned(),
            source: Box::new(e),
        })?;
        raw.validate()
    }

    /// The scenario as a scenario file: what [`Scenario::parse`] reads back into an equal
    /// scenario. A run writes it, flags applied and seed fixed, so that
    /// `punchr-lab run --scenario <run dir>/scenario.toml` repeats the campaign.
    pub fn to_toml(&self) -> String {
        let raw = RawScenario {
            name: self.name.clone(),
            description: self.description.clone(),
            campaign: RawCampaign {
                duration: Some(format_duration(self.campaign.duration)),
                settle: Some(format_duration(self.campaign.settle)),
                transports: Some(
                    self.campaign
                        .transports
                        .iter()
                        .map(|t| t.as_str().to_owned())
                        .collect(),
                ),
                punches: self.campaign.punches,
                per_cell: self.campaign.per_cell,
                hosts_per_client: Some(self.campaign.hosts_per_client),
                seed: self.campaign.seed,
            },
            link: RawLink::of(&LinkOverride {
                delay: Some(self.default_link.delay),
                jitter: Some(self.default_link.jitter),
                loss: Some(self.default_link.loss),
            }),
            routers: self
                .routers
                .iter()
                .map(|r| RawRouter {
                    name: r.name.clone(),
                    nat: r.nat.as_str().to_owned(),
                    link: RawLink::of(&r.link),
                })
                .collect(),
            peers: self.peers.iter().map(RawPeer::of).collect(),
            nat: RawNat {
                udp_timeout: self.nat.udp_timeout.map(format_duration),
            },
        };
        toml::to_string(&raw).expect("a scenario serialises as TOML")
    }

    /// Replaces the default link's settings with the given ones (the `run` flags).
    pub fn override_default_link(&mut self, with: LinkOverride) {
        self.default_link = with.apply(self.default_link);
    }

    /// The libp2p implementations its remote peers run, each once, in table order.
    pub fn remote_implementations(&self) -> Vec<Implementation> {
        let mut used: Vec<Implementation> = self
            .peers
            .iter()
            .filter(|p| p.role == Role::Remote)
            .map(|p| p.implementation)
            .collect();
        used.sort();
        used.dedup();
        used
    }

    /// The router with this name.
    pub fn router(&self, name: &str) -> Option<&Router> {
        self.routers.iter().find(|r| r.name == name)
    }

    /// The peer with this name.
    pub fn peer(&self, name: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.name == name)
    }
}

impl Campaign {
    /// Checks the settings that flags can also change.
    pub fn check(&self) -> Result<()> {
        if self.transports.is_empty() {
            return Err(invalid(
                "campaign.transports: name at least one of tcp, quic",
            ));
        }
        if self.punches == Some(0) {
            return Err(invalid("campaign.punches: must be at least 1"));
        }
        if self.per_cell == Some(0) {
            return Err(invalid("campaign.per_cell: must be at least 1"));
        }
        if !(1..=64).contains(&self.hosts_per_client) {
            return Err(invalid(format!(
                "campaign.hosts_per_client: must be 1 to 64, got {}",
                self.hosts_per_client
            )));
        }
        Ok(())
    }
}

fn invalid(message: impl Into<String>) -> LabError {
    LabError::InvalidScenario(message.into())
}

impl RawLink {
    fn parse(&self, whose: &str) -> Result<LinkOverride> {
        let duration = |v: &Option<String>, what: &str| -> Result<Option<Duration>> {
            v.as_deref()
                .map(|s| parse_duration(s).map_err(|e| invalid(format!("{whose}: {what}: {e}"))))
                .transpose()
        };
        let link = LinkOverride {
            delay: duration(&self.delay, "delay")?,
            jitter: duration(&self.jitter, "jitter")?,
            loss: self.loss,
        };
        if let Some(loss) = link.loss {
            if !(0.0..=1.0).contains(&loss) {
                return Err(invalid(format!(
                    "{whose}: loss must be between 0.0 and 1.0, got {loss}"
                )));
            }
        }
        if link.delay.is_some_and(|d| d > Duration::from_secs(10)) {
            return Err(invalid(format!("{whose}: delay above 10 s")));
        }
        Ok(link)
    }
}

impl RawLink {
    fn of(link: &LinkOverride) -> RawLink {
        RawLink {
            delay: link.delay.map(format_duration),
            jitter: link.jitter.map(format_duration),
            loss: link.loss,
        }
    }
}

impl RawPeer {
    fn of(peer: &Peer) -> RawPeer {
        RawPeer {
            name: peer.name.clone(),
            role: peer.role,
            at: match &peer.at {
                Attachment::Wan => "wan".to_owned(),
                Attachment::Router(router) => router.clone(),
            },
            command: peer.command.clone(),
            env: peer.env.clone(),
            ready: peer.ready.as_ref().map(|ready| match ready {
                Ready::Tcp(port) => format!("tcp:{port}"),
                Ready::Udp(port) => format!("udp:{port}"),
                Ready::Log(text) => format!("log:{text}"),
            }),
            implementation: (peer.role == Role::Remote)
                .then(|| peer.implementation.name().to_owned()),
            link: RawLink::of(&peer.link),
        }
    }
}

/// A duration in the grammar [`parse_duration`] reads, exactly: whole seconds as `s`, else
/// milliseconds or microseconds.
pub fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}us", duration.as_micros())
    }
}

fn check_name(name: &str, taken: &mut HashSet<String>) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(invalid(format!(
            "name {name:?}: use 1 to {MAX_NAME_LEN} characters a-z, 0-9 and inner '-'"
        )));
    }
    if name == "wan" || !taken.insert(name.to_owned()) {
        return Err(invalid(format!(
            "name {name:?} is used twice (or is the reserved name \"wan\")"
        )));
    }
    Ok(())
}

fn parse_ready(peer: &str, text: &str) -> Result<Ready> {
    let bad = || {
        invalid(format!(
            "peer {peer}: ready must be \"tcp:PORT\", \"udp:PORT\" or \"log:TEXT\", got {text:?}"
        ))
    };
    let (kind, value) = text.split_once(':').ok_or_else(bad)?;
    match kind {
        "tcp" => value.parse().map(Ready::Tcp).map_err(|_| bad()),
        "udp" => value.parse().map(Ready::Udp).map_err(|_| bad()),
        "log" if !value.is_empty() => Ok(Ready::Log(value.to_owned())),
        _ => Err(bad()),
    }
}

impl RawScenario {
    fn validate(self) -> Result<Scenario> {
        let default_link = self.link.parse("[link]")?.apply(DEFAULT_LINK);
        let duration = |v: &Option<String>, what: &str, default: Duration| -> Result<Duration> {
            match v {
                Some(s) => parse_duration(s).map_err(|e| invalid(format!("campaign.{what}: {e}"))),
                None => Ok(default),
            }
        };
        let campaign = Campaign {
            duration: duration(
                &self.campaign.duration,
                "duration",
                Duration::from_secs(120),
            )?,
            settle: duration(&self.campaign.settle, "settle", Duration::from_secs(15))?,
            transports: match &self.campaign.transports {
                Some(names) => names
                    .iter()
                    .map(|t| {
                        parse_transport(t).map_err(|e| invalid(format!("campaign.transports: {e}")))
                    })
                    .collect::<Result<Vec<_>>>()?,
                None => vec![Transport::Tcp, Transport::Quic],
            },
            punches: self.campaign.punches,
            per_cell: self.campaign.per_cell,
            hosts_per_client: self
                .campaign
                .hosts_per_client
                .unwrap_or(DEFAULT_HOSTS_PER_CLIENT),
            seed: self.campaign.seed,
        };
        campaign.check()?;
        let mut taken = HashSet::new();
        let mut routers = Vec::new();
        for raw in &self.routers {
            check_name(&raw.name, &mut taken)?;
            let nat: NatType = raw
                .nat
                .parse()
                .map_err(|e| invalid(format!("router {}: {e}", raw.name)))?;
            if nat == NatType::Public {
                return Err(invalid(format!(
                    "router {}: a public host needs no router; put the peer at \"wan\"",
                    raw.name
                )));
            }
            routers.push(Router {
                name: raw.name.clone(),
                nat,
                link: raw.link.parse(&format!("router {}", raw.name))?,
            });
        }
        if routers.len() > 200 {
            return Err(invalid("at most 200 routers"));
        }
        for router in &routers {
            let cgn = format!("{}-cgn", router.name);
            if router.nat == NatType::Double && taken.contains(&cgn) {
                return Err(invalid(format!(
                    "name {cgn:?} is taken by the carrier-grade NAT of router {}",
                    router.name
                )));
            }
        }
        let mut peers = Vec::new();
        for raw in self.peers {
            check_name(&raw.name, &mut taken)?;
            let at = if raw.at == "wan" {
                Attachment::Wan
            } else if routers.iter().any(|r| r.name == raw.at) {
                Attachment::Router(raw.at.clone())
            } else {
                return Err(invalid(format!(
                    "peer {}: at = {:?} is neither \"wan\" nor a router",
                    raw.name, raw.at
                )));
            };
            let link = raw.link.parse(&format!("peer {}", raw.name))?;
            if at != Attachment::Wan && link != LinkOverride::default() {
                return Err(invalid(format!(
                    "peer {}: only peers on the WAN have their own link; set delay and loss on router {}",
                    raw.name, raw.at
                )));
            }
            let ready = raw
                .ready
                .as_deref()
                .map(|r| parse_ready(&raw.name, r))
                .transpose()?;
            if ready.is_some() && raw.command.is_none() {
                return Err(invalid(format!("peer {}: ready needs a command", raw.name)));
            }
            for key in raw.env.keys() {
                if key.is_empty() || key.contains('=') {
                    return Err(invalid(format!(
                        "peer {}: bad environment variable name {key:?}",
                        raw.name
                    )));
                }
            }
            let implementation = match raw.implementation.as_deref() {
                None => Implementation::default(),
                Some(_) if raw.role != Role::Remote => {
                    return Err(invalid(format!(
                        "peer {}: impl is for remote peers only",
                        raw.name
                    )))
                }
                Some(text) => text
                    .parse()
                    .map_err(|e: String| invalid(format!("peer {}: {e}", raw.name)))?,
            };
            peers.push(Peer {
                name: raw.name,
                role: raw.role,
                at,
                command: raw.command,
                env: raw.env,
                ready,
                link,
                implementation,
            });
        }
        if peers.iter().filter(|p| p.at == Attachment::Wan).count() > 240 {
            return Err(invalid("at most 240 peers on the WAN"));
        }
        for router in &routers {
            if peers
                .iter()
                .filter(|p| p.at == Attachment::Router(router.name.clone()))
                .count()
                > 200
            {
                return Err(invalid(format!(
                    "router {}: at most 200 peers",
                    router.name
                )));
            }
        }
        let udp_timeout = match &self.nat.udp_timeout {
            Some(text) => {
                let timeout =
                    parse_duration(text).map_err(|e| invalid(format!("nat.udp_timeout: {e}")))?;
                if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&timeout) {
                    return Err(invalid(format!(
                        "nat.udp_timeout: must be 1s to 1h, got {text}"
                    )));
                }
                Some(timeout)
            }
            None => None,
        };
        Ok(Scenario {
            name: self.name,
            description: self.description,
            campaign,
            default_link,
            routers,
            peers,
            nat: NatSettings { udp_timeout },
        })
    }
}

/// Parses a duration such as `10ms`, `1.5s`, `2m`, `1h`, `250us` or `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} has no unit (use us, ms, s, m or h)"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let seconds = match unit {
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use us, ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10ms").unwrap(), Duration::from_millis(10));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    /// A run's `scenario.toml` repeats it: writing a scenario and reading it back gives the same
    /// scenario, for every shipped one and for links, readiness and seeds of every kind.
    #[test]
    fn scenarios_read_back_what_they_write() {
        let mut own = Scenario::parse(
            "own",
            r#"
            name = "own"
            [campaign]
            duration = "90s"
            settle = "1500ms"
            transports = ["quic"]
            per_cell = 20
            seed = 42
            [link]
            delay = "250us"
            loss = 0.01
            [nat]
            udp_timeout = "30s"
            [[router]]
            name = "r"
            nat = "double"
            jitter = "2ms"
            [[peer]]
            name = "w"
            role = "relay"
            at = "wan"
            delay = "5ms"
            command = "relay {ip}"
            ready = "log:listening on x"
            [[peer]]
            name = "p"
            role = "remote"
            at = "r"
            impl = "go-v0.52"
            command = "{remote}"
            env = { A = "b c" }
            ready = "udp:4001"
            "#,
        )
        .unwrap();
        own.campaign.punches = Some(7);
        for scenario in [
            Scenario::parse("default", DEFAULT_SCENARIO).unwrap(),
            Scenario::parse("ci", CI_SCENARIO).unwrap(),
            Scenario::parse("interop", INTEROP_SCENARIO).unwrap(),
            own,
        ] {
            let written = scenario.to_toml();
            let read =
                Scenario::parse("written", &written).unwrap_or_else(|e| panic!("{e}\n{written}"));
            assert_eq!(read, scenario, "{written}");
        }
    }

    #[test]
    fn shipped_scenarios_are_valid() {
        let default = Scenario::parse("default.toml", DEFAULT_SCENARIO).unwrap();
        assert!(default.routers.len() >= 6);
        let ci = Scenario::parse("ci.toml", CI_SCENARIO).unwrap();
        assert!(ci.campaign.duration <= Duration::from_secs(60));
        let interop = Scenario::parse("interop.toml", INTEROP_SCENARIO).unwrap();
        let remote = interop
            .peers
            .iter()
            .find(|p| p.role == Role::Remote)
            .unwrap();
        assert!(remote.command.as_deref().unwrap().starts_with("{remote} "));
    }

    #[test]
    fn a_remote_names_its_implementation_and_others_may_not() {
        let scenario = |role: &str, implementation: &str| {
            Scenario::parse(
                "t",
                &format!(
                    "name = \"t\"\n[[peer]]\nname = \"p\"\nrole = \"{role}\"\nat = \"wan\"\nimpl = \"{implementation}\"\n"
                ),
            )
        };
        assert_eq!(
            scenario("remote", "go-v0.40").unwrap().peers[0].implementation,
            Implementation::GoV040
        );
        let unknown = scenario("remote", "go-v0.41").unwrap_err().to_string();
        assert!(unknown.contains("known: rust, go-v0.40"), "{unknown}");
        assert!(scenario("client", "kubo")
            .unwrap_err()
            .to_string()
            .contains("remote peers only"));
    }

    #[test]
    fn links_inherit_and_override() {
        let s = Scenario::parse(
            "t",
            r#"
            name = "t"
            [link]
            delay = "5ms"
            [[router]]
            name = "r1"
            nat = "symmetric"
            loss = 0.1
            [[peer]]
            name = "a"
            role = "host"
            at = "r1"
            "#,
        )
        .unwrap();
        let link = s.routers[0].link.apply(s.default_link);
        assert_eq!(link.delay, Duration::from_millis(5));
        assert_eq!(link.loss, 0.1);
        assert_eq!(s.peers[0].at, Attachment::Router("r1".into()));
    }

    #[test]
    fn rejects_mistakes_with_a_reason() {
        let cases = [
            (
                "name = \"t\"\n[[peer]]\nname = \"a\"\nrole = \"host\"\nat = \"nowhere\"",
                "neither",
            ),
            (
                "name = \"t\"\n[[router]]\nname = \"r\"\nnat = \"cone\"",
                "unknown NAT type",
            ),
            (
                "name = \"t\"\n[[router]]\nname = \"r\"\nnat = \"full-cone\"\n[[router]]\nname = \"r\"\nnat = \"symmetric\"",
                "used twice",
            ),
            ("name = \"t\"\n[link]\nloss = 2.0", "between 0.0 and 1.0"),
            (
                "name = \"t\"\n[[peer]]\nname = \"Bad_Name\"\nrole = \"host\"\nat = \"wan\"",
                "a-z",
            ),
            (
                "name = \"t\"\n[[peer]]\nname = \"a\"\nrole = \"relay\"\nat = \"wan\"\nready = \"tcp:x\"",
                "ready must be",
            ),
        ];
        for (text, expected) in cases {
            let err = Scenario::parse("t", text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }
}
