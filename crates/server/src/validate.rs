//! Turns wire requests into validated store values. Everything is checked before anything is
//! stored; the first problem is reported with the field it concerns, so a client author can fix
//! it. The original accepted some bad requests silently (`punchr-original.md` §14.3); we refuse.
//!
//! The original clients (libp2p/punchr) keep working unchanged: what they are known to send
//! differently ([`Quirks`], chosen by the agent version their host registered with) is
//! normalised here, with the value as sent kept where it matters, instead of being refused.

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use punchr_proto as pb;
use punchr_store::agent::{Agent, AgentFamily};
use punchr_store::{
    AttemptOutcome, HandshakeRole, HolePunchAttemptRecord, HolePunchRecord, LatencyKind,
    LatencyRecord, NatMapping, NetworkInformation, Outcome, PeerInfo, RoleStrategy,
};

/// A request field that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    /// The field's name as in the proto, with an index for repeated fields.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> InvalidField {
    InvalidField {
        field: field.into(),
        reason: reason.into(),
    }
}

type Valid<T> = Result<T, InvalidField>;

/// Bounds on what one request may carry.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Hole punch attempts per result (the protocol makes at most 3).
    pub max_attempts: usize,
    /// Multiaddresses per list.
    pub max_addresses: usize,
    /// Multiaddresses per attempt (what the remote's CONNECT carried).
    pub max_attempt_addresses: usize,
    /// Bytes per multiaddress.
    pub max_address_bytes: usize,
    /// Bytes per error message or agent version.
    pub max_text_bytes: usize,
    /// Bytes of the router login page.
    pub max_html_bytes: usize,
    /// Protocols per peer.
    pub max_protocols: usize,
    /// Bytes per protocol name.
    pub max_protocol_bytes: usize,
    /// Protocols of the peer of a latency measurement.
    pub max_measurement_protocols: usize,
    /// Latency measurements per result.
    pub max_latency_measurements: usize,
    /// Samples per latency measurement (the clients take at most 10).
    pub max_samples: usize,
    /// Bytes per sample error (`rtt_errs`).
    pub max_sample_error_bytes: usize,
    /// NAT mappings per result.
    pub max_nat_mappings: usize,
    /// Bytes of a NAT mapping's address and network (`203.0.113.5`, `ip4`).
    pub max_nat_text_bytes: usize,
    /// Protocol filter codes per result.
    pub max_protocol_filters: usize,
    /// How far a timestamp may lie in the future (clock skew), ns.
    pub max_clock_skew_ns: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attempts: 10,
            max_addresses: 64,
            max_attempt_addresses: 32,
            max_address_bytes: 512,
            max_text_bytes: 4096,
            max_html_bytes: 64 * 1024,
            max_protocols: 256,
            max_protocol_bytes: 256,
            max_measurement_protocols: 64,
            // The original Go client pings the relayed and the direct connection and each relay it
            // was served (a handout has at most a few).
            max_latency_measurements: 16,
            max_samples: 16,
            max_sample_error_bytes: 256,
            max_nat_mappings: 32,
            max_nat_text_bytes: 256,
            max_protocol_filters: 16,
            max_clock_skew_ns: 5 * 60 * 1_000_000_000,
        }
    }
}

/// PostgreSQL text cannot hold NUL characters; a text with one would fail the write (an internal
/// error) instead of being refused as invalid.
const NUL_REASON: &str = "contains a NUL character";

/// 2020-01-01T00:00:00Z: no Punchr result is older.
const EARLIEST_PLAUSIBLE_NS: i64 = 1_577_836_800_000_000_000;

/// What an original client is known to send differently, read from the agent version its host
/// registered with (`punchr-original.md` §7.3, §9.2). Our client and unknown agents have none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// `elapsed_time` is microseconds labelled as seconds: the original Rust client divides
    /// nanoseconds by 1000. The value is checked against the attempt's own timestamps.
    pub elapsed_in_microseconds: bool,
    /// An attempt's own timestamps need not be in order. The original Go client takes
    /// `opened_at` from its clock after the DCUtR stream signal, but `started_at` and `ended_at`
    /// from holepunch tracer events that may have been queued before, and the original server
    /// accepted any order; the Rust client reads a wall clock that may step back. Refusing
    /// would lose the Go client's result and end the Rust client's process.
    pub unordered_attempt_times: bool,
}

impl Quirks {
    /// The quirks of the client whose host registered with `agent`.
    pub fn of(agent: &Agent) -> Quirks {
        Quirks {
            elapsed_in_microseconds: agent.family == AgentFamily::OriginalRustClient,
            unordered_attempt_times: agent.family.is_original_client(),
        }
    }
}

/// Whether two durations in seconds agree: within 1 ms plus 1 % (the wire carries `f32`).
fn durations_agree(a: f64, b: f64) -> bool {
    (a - b).abs() <= 0.001 + 0.01 * b.abs()
}

/// The elapsed seconds of an attempt whose client may send microseconds, and the raw value
/// when the seconds are not it. The attempt's timestamps decide: `ended_at - started_at`, if
/// both are known and in order, is what the client measured. A raw value that agrees with them
/// as microseconds is divided; one that agrees as seconds is kept (builds of our client
/// announced the original's agent before they had their own); one that agrees with neither is
/// replaced by the timestamps. Without timestamps it is taken as microseconds.
pub fn microsecond_elapsed(
    field: &str,
    raw: f32,
    started_at: Option<i64>,
    ended_at: i64,
) -> Valid<(f64, Option<f64>)> {
    let from_timestamps = started_at
        .filter(|started| *started <= ended_at)
        .map(|started| (ended_at - started) as f64 / 1e9);
    let sent = f64::from(raw);
    let usable = raw.is_finite() && raw >= 0.0;
    match from_timestamps {
        Some(measured) if usable && durations_agree(sent / 1e6, measured) => {
            Ok((sent / 1e6, Some(sent)))
        }
        Some(measured) if usable && durations_agree(sent, measured) => Ok((sent, None)),
        Some(measured) => Ok((measured, Some(sent).filter(|s| s.is_finite()))),
        None if usable => Ok((seconds(field, (sent / 1e6) as f32)?, Some(sent))),
        None => Err(invalid(
            field,
            format!("{raw} is not a duration and the attempt has no started_at to derive one"),
        )),
    }
}

/// Checks a peer ID given as multihash bytes; returns its base58 form.
pub fn peer_id(field: &str, bytes: &[u8]) -> Valid<String> {
    if bytes.is_empty() {
        return Err(invalid(field, "missing peer ID"));
    }
    PeerId::from_bytes(bytes)
        .map(|id| id.to_base58())
        .map_err(|e| invalid(field, format!("not a peer ID: {e}")))
}

/// Checks a binary multiaddress: its size, its encoding, and that its text form (what the store
/// keeps) reads back.
pub fn multiaddr(field: &str, bytes: &[u8], limits: &Limits) -> Valid<Multiaddr> {
    if bytes.is_empty() {
        return Err(invalid(field, "empty multiaddress"));
    }
    if bytes.len() > limits.max_address_bytes {
        return Err(invalid(
            field,
            format!("longer than {} bytes", limits.max_address_bytes),
        ));
    }
    let address = Multiaddr::try_from(bytes.to_vec())
        .map_err(|e| invalid(field, format!("not a multiaddress: {e}")))?;
    // The store keeps addresses as text and reads them back from it: an address whose text
    // does not read back (a DNS name with a '/', a NUL) would be stored but never served.
    let text = address.to_string();
    if text.contains('\0') {
        return Err(invalid(field, NUL_REASON));
    }
    match text.parse::<Multiaddr>() {
        Ok(reread) if reread == address => Ok(address),
        _ => Err(invalid(
            field,
            format!("{text} does not read back from its text form"),
        )),
    }
}

fn multiaddrs(field: &str, list: &[Vec<u8>], limits: &Limits) -> Valid<Vec<Multiaddr>> {
    if list.len() > limits.max_addresses {
        return Err(invalid(
            field,
            format!("more than {} addresses", limits.max_addresses),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, bytes)| multiaddr(&format!("{field}[{i}]"), bytes, limits))
        .collect()
}

/// Checks a text's size; empty texts become `None`.
fn text(field: &str, value: Option<&str>, max_bytes: usize) -> Valid<Option<String>> {
    match value {
        Some(v) if v.len() > max_bytes => {
            Err(invalid(field, format!("longer than {max_bytes} bytes")))
        }
        Some(v) if v.contains('\0') => Err(invalid(field, NUL_REASON)),
        Some(v) if !v.is_empty() => Ok(Some(v.to_owned())),
        _ => Ok(None),
    }
}

/// Checks an agent version and protocol list.
pub fn peer_facts(
    field: &str,
    agent: &str,
    protocols: &[String],
    limits: &Limits,
) -> Valid<(Option<String>, Vec<String>)> {
    peer_facts_within(field, agent, protocols, limits.max_protocols, limits)
}

fn peer_facts_within(
    field: &str,
    agent: &str,
    protocols: &[String],
    max_protocols: usize,
    limits: &Limits,
) -> Valid<(Option<String>, Vec<String>)> {
    let agent = text(
        &format!("{field}agent_version"),
        Some(agent),
        limits.max_text_bytes,
    )?;
    if protocols.len() > max_protocols {
        return Err(invalid(
            format!("{field}protocols"),
            format!("more than {max_protocols} protocols"),
        ));
    }
    for (i, protocol) in protocols.iter().enumerate() {
        if protocol.is_empty() || protocol.len() > limits.max_protocol_bytes {
            return Err(invalid(
                format!("{field}protocols[{i}]"),
                format!("must be 1 to {} bytes", limits.max_protocol_bytes),
            ));
        }
        if protocol.contains('\0') {
            return Err(invalid(format!("{field}protocols[{i}]"), NUL_REASON));
        }
    }
    Ok((agent, protocols.to_vec()))
}

fn timestamp(field: &str, value: u64, now: i64, limits: &Limits) -> Valid<i64> {
    let ns = i64::try_from(value).map_err(|_| invalid(field, "beyond the year 2262"))?;
    if ns < EARLIEST_PLAUSIBLE_NS {
        return Err(invalid(field, "before 2020; times are Unix nanoseconds"));
    }
    if ns > now + limits.max_clock_skew_ns {
        return Err(invalid(field, "in the future; check the client's clock"));
    }
    Ok(ns)
}

fn ordered(earlier: (&str, i64), later: (&str, i64)) -> Valid<()> {
    if earlier.1 > later.1 {
        return Err(invalid(later.0, format!("before {}", earlier.0)));
    }
    Ok(())
}

fn seconds(field: &str, value: f32) -> Valid<f64> {
    if !value.is_finite() || !(0.0..=86_400.0).contains(&value) {
        return Err(invalid(
            field,
            format!("{value} is not a duration in seconds between 0 and 86400"),
        ));
    }
    Ok(f64::from(value))
}

fn outcome(value: i32) -> Valid<Outcome> {
    let outcome = pb::HolePunchOutcome::try_from(value)
        .map_err(|_| invalid("outcome", format!("unknown value {value}")))?;
    Ok(outcome.into())
}

fn attempt_outcome(field: &str, value: i32) -> Valid<AttemptOutcome> {
    let outcome = pb::HolePunchAttemptOutcome::try_from(value)
        .map_err(|_| invalid(field, format!("unknown value {value}")))?;
    Ok(outcome.into())
}

fn handshake_role(field: &str, value: Option<i32>) -> Valid<Option<HandshakeRole>> {
    let Some(value) = value else { return Ok(None) };
    let role = pb::HandshakeRole::try_from(value)
        .map_err(|_| invalid(field, format!("unknown value {value}")))?;
    // The wire's UNKNOWN says nothing, as a missing field does.
    Ok(HandshakeRole::try_from(role).ok())
}

fn role_strategy(value: Option<i32>) -> Valid<Option<RoleStrategy>> {
    let Some(value) = value else { return Ok(None) };
    let strategy = pb::RoleStrategy::try_from(value)
        .map_err(|_| invalid("role_strategy", format!("unknown value {value}")))?;
    Ok(RoleStrategy::try_from(strategy).ok())
}

fn latency_kind(field: &str, value: i32) -> Valid<LatencyKind> {
    let kind = pb::LatencyMeasurementType::try_from(value)
        .map_err(|_| invalid(field, format!("unknown value {value}")))?;
    Ok(kind.into())
}

fn attempt(
    index: usize,
    wire: &pb::HolePunchAttempt,
    now: i64,
    limits: &Limits,
    quirks: Quirks,
) -> Valid<HolePunchAttemptRecord> {
    let field = |name: &str| format!("hole_punch_attempts[{index}].{name}");
    let in_order = |earlier: (&str, i64), later: (&str, i64)| {
        if quirks.unordered_attempt_times {
            Ok(())
        } else {
            ordered(earlier, later)
        }
    };
    let opened_at = timestamp(&field("opened_at"), wire.opened_at, now, limits)?;
    let ended_at = timestamp(&field("ended_at"), wire.ended_at, now, limits)?;
    in_order(
        (&field("opened_at"), opened_at),
        (&field("ended_at"), ended_at),
    )?;
    let started_at = match wire.started_at {
        Some(started) => {
            let started = timestamp(&field("started_at"), started, now, limits)?;
            in_order(
                (&field("opened_at"), opened_at),
                (&field("started_at"), started),
            )?;
            in_order(
                (&field("started_at"), started),
                (&field("ended_at"), ended_at),
            )?;
            Some(started)
        }
        None => None,
    };
    let (elapsed_seconds, elapsed_time_raw) = if quirks.elapsed_in_microseconds {
        microsecond_elapsed(
            &field("elapsed_time"),
            wire.elapsed_time,
            started_at,
            ended_at,
        )?
    } else {
        (seconds(&field("elapsed_time"), wire.elapsed_time)?, None)
    };
    Ok(HolePunchAttemptRecord {
        opened_at,
        started_at,
        ended_at,
        start_rtt_seconds: wire
            .start_rtt
            .map(|rtt| seconds(&field("start_rtt"), rtt))
            .transpose()?,
        elapsed_seconds,
        elapsed_time_raw,
        outcome: attempt_outcome(&field("outcome"), wire.outcome)?,
        error: text(
            &field("error"),
            wire.error.as_deref(),
            limits.max_text_bytes,
        )?,
        direct_dial_error: text(
            &field("direct_dial_error"),
            wire.direct_dial_error.as_deref(),
            limits.max_text_bytes,
        )?,
        addresses: {
            bounded(
                &field("multi_addresses"),
                &wire.multi_addresses,
                limits.max_attempt_addresses,
            )?;
            multiaddrs(&field("multi_addresses"), &wire.multi_addresses, limits)?
        },
        handshake_role: handshake_role(&field("handshake_role"), wire.handshake_role)?,
    })
}

fn latency_measurement(
    index: usize,
    wire: &pb::LatencyMeasurement,
    limits: &Limits,
) -> Valid<LatencyRecord> {
    let field = |name: &str| format!("latency_measurements[{index}].{name}");
    let (agent_version, protocols) = peer_facts_within(
        &field(""),
        &wire.agent_version,
        &wire.protocols,
        limits.max_measurement_protocols,
        limits,
    )?;
    if wire.rtts.len() > limits.max_samples {
        return Err(invalid(
            field("rtts"),
            format!("more than {} samples", limits.max_samples),
        ));
    }
    if !wire.rtt_errs.is_empty() && wire.rtt_errs.len() != wire.rtts.len() {
        return Err(invalid(
            field("rtt_errs"),
            "must be empty or as long as rtts",
        ));
    }
    let rtts = wire
        .rtts
        .iter()
        .enumerate()
        .map(|(i, rtt)| match rtt {
            rtt if *rtt == -1.0 => Ok(-1.0),
            rtt => seconds(&format!("{}[{i}]", field("rtts")), *rtt),
        })
        .collect::<Valid<Vec<f64>>>()?;
    for (i, err) in wire.rtt_errs.iter().enumerate() {
        text(
            &format!("{}[{i}]", field("rtt_errs")),
            Some(err),
            limits.max_sample_error_bytes,
        )?;
    }
    Ok(LatencyRecord {
        peer: PeerInfo {
            peer_id: peer_id(&field("remote_id"), &wire.remote_id)?,
            agent_version,
            protocols,
        },
        address: multiaddr(&field("multi_address"), &wire.multi_address, limits)?,
        kind: latency_kind(&field("mtype"), wire.mtype)?,
        rtts,
        rtt_errors: wire.rtt_errs.clone(),
    })
}

fn nat_mapping(index: usize, wire: &pb::NatMapping, limits: &Limits) -> Valid<NatMapping> {
    let field = |name: &str| format!("nat_mappings[{index}].{name}");
    let port = |name: &str, value: i32| {
        if (0..=65535).contains(&value) {
            Ok(value)
        } else {
            Err(invalid(field(name), format!("{value} is not a port")))
        }
    };
    if !matches!(wire.protocol.as_str(), "tcp" | "udp" | "TCP" | "UDP") {
        return Err(invalid(field("protocol"), "must be tcp or udp"));
    }
    let required = |name: &str, value: &str| {
        text(&field(name), Some(value), limits.max_nat_text_bytes)?
            .ok_or_else(|| invalid(field(name), "missing"))
    };
    Ok(NatMapping {
        internal_port: port("internal_port", wire.internal_port)?,
        external_port: port("external_port", wire.external_port)?,
        protocol: wire.protocol.to_lowercase(),
        addr: required("addr", &wire.addr)?,
        addr_network: required("addr_network", &wire.addr_network)?,
    })
}

fn network_information(
    wire: &pb::NetworkInformation,
    limits: &Limits,
) -> Valid<NetworkInformation> {
    Ok(NetworkInformation {
        supports_ipv6: wire.supports_ipv6,
        supports_ipv6_error: text(
            "network_information.supports_ipv6_error",
            wire.supports_ipv6_error.as_deref(),
            limits.max_text_bytes,
        )?,
        router_login_html: text(
            "network_information.router_login_html",
            wire.router_login_html.as_deref(),
            limits.max_html_bytes,
        )?,
        router_login_html_error: text(
            "network_information.router_login_html_error",
            wire.router_login_html_error.as_deref(),
            limits.max_text_bytes,
        )?,
    })
}

fn bounded<T>(field: &str, list: &[T], max: usize) -> Valid<()> {
    if list.len() > max {
        return Err(invalid(field, format!("more than {max} entries")));
    }
    Ok(())
}

/// Validates a whole TrackHolePunch request; `now` is Unix ns. The API key id is filled in by
/// the caller after authentication; `quirks` are those of the client that sent it.
pub fn hole_punch_result(
    wire: &pb::TrackHolePunchRequest,
    api_key_id: i64,
    now: i64,
    limits: &Limits,
    quirks: Quirks,
) -> Valid<HolePunchRecord> {
    // First, as the service reads it first (to find the client's quirks by its host).
    let client_peer_id = peer_id("client_id", &wire.client_id)?;
    let connect_started_at = timestamp("connect_started_at", wire.connect_started_at, now, limits)?;
    let connect_ended_at = timestamp("connect_ended_at", wire.connect_ended_at, now, limits)?;
    let ended_at = timestamp("ended_at", wire.ended_at, now, limits)?;
    ordered(
        ("connect_started_at", connect_started_at),
        ("connect_ended_at", connect_ended_at),
    )?;
    ordered(
        ("connect_ended_at", connect_ended_at),
        ("ended_at", ended_at),
    )?;
    bounded(
        "hole_punch_attempts",
        &wire.hole_punch_attempts,
        limits.max_attempts,
    )?;
    bounded(
        "latency_measurements",
        &wire.latency_measurements,
        limits.max_latency_measurements,
    )?;
    bounded("nat_mappings", &wire.nat_mappings, limits.max_nat_mappings)?;
    bounded("protocols", &wire.protocols, limits.max_protocol_filters)?;
    let attempts = wire
        .hole_punch_attempts
        .iter()
        .enumerate()
        .map(|(i, a)| attempt(i, a, now, limits, quirks))
        .collect::<Valid<Vec<_>>>()?;
    for (i, a) in attempts.iter().enumerate() {
        ordered(
            ("connect_started_at", connect_started_at),
            (&format!("hole_punch_attempts[{i}].opened_at"), a.opened_at),
        )?;
        // An attempt runs over the relayed connection, so it ends after that connection was up;
        // otherwise the time to a direct connection (ended_at - connect_ended_at) is negative.
        // The original clients' timestamps are known to be out of order (Quirks) and their
        // results were always accepted; refusing them would lose results or end the process.
        if !quirks.unordered_attempt_times {
            ordered(
                ("connect_ended_at", connect_ended_at),
                (&format!("hole_punch_attempts[{i}].ended_at"), a.ended_at),
            )?;
        }
    }
    if let Some(id) = &wire.report_id {
        if id.is_empty() || id.len() > 64 {
            return Err(invalid("report_id", "must be 1 to 64 bytes"));
        }
    }
    Ok(HolePunchRecord {
        api_key_id,
        report_id: wire.report_id.clone(),
        client_peer_id,
        remote_peer_id: peer_id("remote_id", &wire.remote_id)?,
        remote_addresses: multiaddrs(
            "remote_multi_addresses",
            &wire.remote_multi_addresses,
            limits,
        )?,
        open_addresses: multiaddrs("open_multi_addresses", &wire.open_multi_addresses, limits)?,
        listen_addresses: multiaddrs(
            "listen_multi_addresses",
            &wire.listen_multi_addresses,
            limits,
        )?,
        connect_started_at,
        connect_ended_at,
        ended_at,
        has_direct_conns: wire.has_direct_conns,
        outcome: outcome(wire.outcome)?,
        error: text("error", wire.error.as_deref(), limits.max_text_bytes)?,
        protocol_filters: wire.protocols.clone(),
        attempts,
        latency_measurements: wire
            .latency_measurements
            .iter()
            .enumerate()
            .map(|(i, m)| latency_measurement(i, m, limits))
            .collect::<Valid<Vec<_>>>()?,
        network_information: wire
            .network_information
            .as_ref()
            .map(|n| network_information(n, limits))
            .transpose()?,
        nat_mappings: wire
            .nat_mappings
            .iter()
            .enumerate()
            .map(|(i, m)| nat_mapping(i, m, limits))
            .collect::<Valid<Vec<_>>>()?,
        role_strategy: role_strategy(wire.role_strategy)?,
    })
}

/// The longest API key accepted (UUIDs are 36 bytes; anything much longer is not a key).
pub const MAX_API_KEY_BYTES: usize = 128;

/// The longest peer ID accepted: a multihash of at most 64 digest bytes, code and length
/// varints included.
const MAX_PEER_ID_BYTES: usize = 64 + 2 + 1;

/// An upper bound of the encoded size of any TrackHolePunchRequest these limits accept: every
/// list at its longest, every text at its largest, every number at its widest varint. The
/// server's default `--max-request-bytes` is this, so that no valid result is refused for its
/// size and no body larger than a valid one is buffered.
pub fn max_track_hole_punch_request_bytes(limits: &Limits) -> usize {
    use prost::encoding::encoded_len_varint;
    // A length-delimited field: tag (at most 2 bytes for field numbers below 2048), length.
    let field = |len: usize| 2 + encoded_len_varint(len as u64) + len;
    let number = 2 + 10;
    let float = 2 + 4;
    let repeated = |count: usize, each: usize| count * field(each);
    let addresses = |count: usize| repeated(count, limits.max_address_bytes);
    let attempt = 3 * number
        + 2 * float
        + 2 * number
        + 2 * field(limits.max_text_bytes)
        + addresses(limits.max_attempt_addresses);
    let measurement = field(MAX_PEER_ID_BYTES)
        + field(limits.max_text_bytes)
        + repeated(limits.max_measurement_protocols, limits.max_protocol_bytes)
        + field(limits.max_address_bytes)
        + limits.max_samples * float
        + repeated(limits.max_samples, limits.max_sample_error_bytes)
        + number;
    let network = field(limits.max_html_bytes) + 2 * field(limits.max_text_bytes) + number;
    let mapping = 3 * number + field(3) + 2 * field(limits.max_nat_text_bytes);
    2 * field(MAX_PEER_ID_BYTES)
        + 3 * addresses(limits.max_addresses)
        + 4 * number
        + repeated(limits.max_attempts, attempt)
        + field(limits.max_text_bytes)
        + number
        + field(MAX_API_KEY_BYTES)
        + limits.max_protocol_filters * number
        + repeated(limits.max_latency_measurements, measurement)
        + field(network)
        + repeated(limits.max_nat_mappings, mapping)
        + field(64)
        + number
}

/// Validates a Register request: the host to bind to the API key.
pub fn register(wire: &pb::RegisterRequest, limits: &Limits) -> Valid<PeerInfo> {
    let peer_id = peer_id("client_id", &wire.client_id)?;
    let (agent_version, protocols) = peer_facts("", &wire.agent_version, &wire.protocols, limits)?;
    Ok(PeerInfo {
        peer_id,
        agent_version,
        protocols,
    })
}

/// The hosts a GetAddrInfo request names, as base58 peer IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskingHosts {
    /// The host that asks.
    pub asking: String,
    /// It and every other host of the client (at most [`Limits::max_addresses`] of them are
    /// looked at), sorted, without duplicates.
    pub all: Vec<String>,
}

/// Validates a GetAddrInfo request.
pub fn get_addr_info(wire: &pb::GetAddrInfoRequest, limits: &Limits) -> Valid<AskingHosts> {
    let asking = peer_id("host_id", &wire.host_id)?;
    let mut all = vec![asking.clone()];
    for (i, bytes) in wire
        .all_host_ids
        .iter()
        .take(limits.max_addresses)
        .enumerate()
    {
        all.push(peer_id(&format!("all_host_ids[{i}]"), bytes)?);
    }
    all.sort();
    all.dedup();
    Ok(AskingHosts { asking, all })
}

/// The server's RPCs, for checking a request body as it comes off the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// `/PunchrService/Register`.
    Register,
    /// `/PunchrService/GetAddrInfo`.
    GetAddrInfo,
    /// `/PunchrService/TrackHolePunch`.
    TrackHolePunch,
}

impl Rpc {
    /// Every RPC.
    pub const ALL: [Rpc; 3] = [Rpc::Register, Rpc::GetAddrInfo, Rpc::TrackHolePunch];

    /// The gRPC method path.
    pub fn path(self) -> &'static str {
        match self {
            Rpc::Register => pb::paths::REGISTER,
            Rpc::GetAddrInfo => pb::paths::GET_ADDR_INFO,
            Rpc::TrackHolePunch => pb::paths::TRACK_HOLE_PUNCH,
        }
    }

    /// Splits a request body tagged with its RPC in the first byte (modulo 3, in the order of
    /// [`Rpc::ALL`]), the format of the `grpc_request` fuzz corpus. An empty input is an empty
    /// Register body.
    pub fn split_tagged(data: &[u8]) -> (Rpc, &[u8]) {
        match data.split_first() {
            Some((tag, body)) => (Rpc::ALL[usize::from(*tag) % Rpc::ALL.len()], body),
            None => (Rpc::Register, data),
        }
    }

    /// The number of the request's `api_key` field.
    pub fn api_key_field(self) -> u32 {
        match self {
            Rpc::Register => 4,
            Rpc::GetAddrInfo => 3,
            Rpc::TrackHolePunch => 13,
        }
    }
}

/// Why a request body was refused before the store was asked anything.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body is not an encoding of the request message (gRPC answers INTERNAL, as tonic
    /// does for every undecodable message).
    #[error("cannot decode the {rpc:?} request: {source}")]
    Decode {
        /// The RPC.
        rpc: Rpc,
        /// What prost found.
        #[source]
        source: prost::DecodeError,
    },
    /// A field is not acceptable (gRPC answers INVALID_ARGUMENT).
    #[error(transparent)]
    Invalid(#[from] InvalidField),
}

/// Decodes a request body of `rpc` the way the gRPC codec does and validates it the way the
/// service does; `now` is Unix ns. The API key is not looked at: that needs the store.
pub fn request(rpc: Rpc, body: &[u8], now: i64, limits: &Limits) -> Result<(), RequestError> {
    use prost::Message;
    let decode_error = |source| RequestError::Decode { rpc, source };
    match rpc {
        Rpc::Register => {
            register(
                &pb::RegisterRequest::decode(body).map_err(decode_error)?,
                limits,
            )?;
        }
        Rpc::GetAddrInfo => {
            get_addr_info(
                &pb::GetAddrInfoRequest::decode(body).map_err(decode_error)?,
                limits,
            )?;
        }
        Rpc::TrackHolePunch => {
            let wire = pb::TrackHolePunchRequest::decode(body).map_err(decode_error)?;
            hole_punch_result(&wire, 0, now, limits, Quirks::default())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use multiaddr::Protocol;

    #[test]
    fn texts_with_a_nul_are_refused() {
        // PostgreSQL refuses NUL in text columns: the write failed as an internal error.
        let limits = Limits::default();
        let err = peer_facts("", "kubo\0", &[], &limits).unwrap_err();
        assert_eq!(err.to_string(), "agent_version: contains a NUL character");
        let err = peer_facts("", "kubo", &["/ipfs/id\0".into()], &limits).unwrap_err();
        assert_eq!(err.field, "protocols[0]");
    }

    #[test]
    fn addresses_that_do_not_read_back_are_refused() {
        // The store keeps the text form: "/dns/a/b/tcp/1" does not parse back.
        let limits = Limits::default();
        let slash = Multiaddr::empty()
            .with(Protocol::Dns("a/b".into()))
            .with(Protocol::Tcp(1));
        let err = multiaddr("a", &slash.to_vec(), &limits).unwrap_err();
        assert!(err.reason.contains("does not read back"), "{err}");
        let nul = Multiaddr::empty().with(Protocol::Dns("a\0b".into()));
        let err = multiaddr("a", &nul.to_vec(), &limits).unwrap_err();
        assert_eq!(err.reason, NUL_REASON);
        let good: Multiaddr = "/dns4/relay.example.org/tcp/443/wss".parse().unwrap();
        assert_eq!(multiaddr("a", &good.to_vec(), &limits), Ok(good));
    }

    #[test]
    fn tagged_bodies_name_their_rpc() {
        assert_eq!(Rpc::split_tagged(&[]), (Rpc::Register, &[][..]));
        assert_eq!(Rpc::split_tagged(&[1, 9]), (Rpc::GetAddrInfo, &[9][..]));
        assert_eq!(Rpc::split_tagged(&[5]), (Rpc::TrackHolePunch, &[][..]));
        let err = request(Rpc::Register, &[0xff], 0, &Limits::default()).unwrap_err();
        assert!(matches!(err, RequestError::Decode { .. }), "{err}");
    }

    #[test]
    fn microsecond_elapsed_times_follow_the_attempts_timestamps() {
        const START: i64 = 1_700_000_000_000_000_000;
        let ms = |n: i64| START + n * 1_000_000;
        let f = "e";
        // The original Rust client's 87 ms attempt: 87000 "seconds" are 87 ms.
        assert_eq!(
            microsecond_elapsed(f, 87_000.0, Some(START), ms(87)),
            Ok((0.087, Some(87_000.0)))
        );
        // 25 minutes: beyond the 86,400 bound as microseconds read as seconds.
        let (secs, raw) = microsecond_elapsed(f, 1.5e9, Some(START), ms(1_500_000)).unwrap();
        assert!((secs - 1500.0).abs() < 1e-9 && raw == Some(1.5e9), "{secs}");
        // Seconds under the original's agent (our client before it had its own) stay.
        assert_eq!(
            microsecond_elapsed(f, 0.5, Some(START), ms(500)),
            Ok((0.5, None))
        );
        // Neither reading agrees: the timestamps win, the raw value is kept.
        assert_eq!(
            microsecond_elapsed(f, 3.0e7, Some(START), ms(2_000)),
            Ok((2.0, Some(3.0e7)))
        );
        // No started_at: microseconds, bounded like any duration.
        assert_eq!(
            microsecond_elapsed(f, 250_000.0, None, ms(0)),
            Ok((0.25, Some(250_000.0)))
        );
        assert!(microsecond_elapsed(f, 1e12, None, ms(0)).is_err());
        assert!(microsecond_elapsed(f, f32::NAN, None, ms(0)).is_err());
        assert_eq!(
            microsecond_elapsed(f, f32::NAN, Some(START), ms(40)),
            Ok((0.04, None))
        );
    }

    #[test]
    fn quirks_follow_the_registered_agent() {
        let quirks = |agent: &str| Quirks::of(&Agent::classify(Some(agent)));
        let rust = quirks("punchr/rust-client/0.2.1");
        assert!(rust.elapsed_in_microseconds && rust.unordered_attempt_times);
        let go = quirks("punchr/go-client/0.8.0");
        assert!(!go.elapsed_in_microseconds && go.unordered_attempt_times);
        assert_eq!(quirks("punchr-rs/client/0.1.0"), Quirks::default());
        assert_eq!(quirks("kubo/0.43.1/x"), Quirks::default());
    }
}
