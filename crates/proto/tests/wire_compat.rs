//! Wire compatibility with the original Go punchr API (the final `punchr.proto` of libp2p/punchr).
//!
//! Go clients and servers built from the original proto must keep talking to ours, so these tests
//! check our generated types against the original wire format *independently of our generated
//! code*: the reference side is a tiny hand-written protobuf encoder and decoder that knows only
//! the original field numbers, wire types and enum values, written down here from the original
//! proto. Each message is checked both ways: hand-encoded bytes decode into the expected value of
//! our type, and our encoding parses into exactly the original's fields (numbers, wire types,
//! values, order). The enums, the gRPC method paths and the service name are checked against the
//! original too, and fields numbered 100 and up (our extensions) must be skipped by the decoder.

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use prost::Message;
use punchr_proto::punchr_service_client::PunchrServiceClient;
use punchr_proto::punchr_service_server::{self, PunchrService, PunchrServiceServer};
use punchr_proto::{
    paths, GetAddrInfoRequest, GetAddrInfoResponse, HolePunchAttempt, HolePunchAttemptOutcome,
    HolePunchOutcome, LatencyMeasurement, LatencyMeasurementType, NatMapping, NetworkInformation,
    RegisterRequest, RegisterResponse, TrackHolePunchRequest, TrackHolePunchResponse,
};
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

// ---------------------------------------------------------------------------------------------
// The reference codec: protobuf's wire format, by hand.
// ---------------------------------------------------------------------------------------------

/// A field's value as it is on the wire; the variant is the wire type.
#[derive(Debug, Clone, PartialEq)]
enum Wire {
    /// Wire type 0: int32, int64, uint64, bool, enum.
    Varint(u64),
    /// Wire type 1 (no punchr field uses it; only seen in unknown fields).
    Fixed64(u64),
    /// Wire type 2: bytes, string, embedded message, packed repeated scalars.
    Len(Vec<u8>),
    /// Wire type 5: float (its IEEE 754 bits).
    Fixed32(u32),
}

/// One field record: field number and value.
type Field = (u32, Wire);

fn varint(number: u32, value: u64) -> Field {
    (number, Wire::Varint(value))
}

/// Like Go, a negative int32 is sign-extended to 64 bits (a ten-byte varint).
fn int32(number: u32, value: i32) -> Field {
    varint(number, i64::from(value) as u64)
}

fn boolean(number: u32, value: bool) -> Field {
    varint(number, u64::from(value))
}

fn bytes(number: u32, value: &[u8]) -> Field {
    (number, Wire::Len(value.to_vec()))
}

fn string(number: u32, value: &str) -> Field {
    bytes(number, value.as_bytes())
}

fn float(number: u32, value: f32) -> Field {
    (number, Wire::Fixed32(value.to_bits()))
}

/// An embedded message: its encoding, length-delimited.
fn message(number: u32, fields: &[Field]) -> Field {
    bytes(number, &encode(fields))
}

/// Repeated varints the packed way: one length-delimited record (proto2 does not pack by default).
fn packed_varints(number: u32, values: &[u64]) -> Field {
    let mut buf = Vec::new();
    values.iter().for_each(|&value| put_varint(&mut buf, value));
    (number, Wire::Len(buf))
}

fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn wire_type(value: &Wire) -> u64 {
    match value {
        Wire::Varint(_) => 0,
        Wire::Fixed64(_) => 1,
        Wire::Len(_) => 2,
        Wire::Fixed32(_) => 5,
    }
}

/// Encodes the records in the given order, each as tag (`number << 3 | wire type`) and value.
fn encode(fields: &[Field]) -> Vec<u8> {
    let mut buf = Vec::new();
    for (number, value) in fields {
        put_varint(&mut buf, (u64::from(*number) << 3) | wire_type(value));
        match value {
            Wire::Varint(v) => put_varint(&mut buf, *v),
            Wire::Fixed64(v) => buf.extend(v.to_le_bytes()),
            Wire::Len(b) => {
                put_varint(&mut buf, b.len() as u64);
                buf.extend(b);
            }
            Wire::Fixed32(v) => buf.extend(v.to_le_bytes()),
        }
    }
    buf
}

fn take<'a>(buf: &mut &'a [u8], len: usize) -> &'a [u8] {
    assert!(
        buf.len() >= len,
        "truncated: need {len} bytes, have {}",
        buf.len()
    );
    let (head, tail) = buf.split_at(len);
    *buf = tail;
    head
}

fn take_varint(buf: &mut &[u8]) -> u64 {
    let mut value = 0;
    for shift in (0..64).step_by(7) {
        let byte = take(buf, 1)[0];
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return value;
        }
    }
    panic!("varint longer than ten bytes")
}

/// Splits an encoded message into its field records, in wire order.
fn parse(mut buf: &[u8]) -> Vec<Field> {
    let mut fields = Vec::new();
    while !buf.is_empty() {
        let tag = take_varint(&mut buf);
        let number = u32::try_from(tag >> 3).expect("field number fits u32");
        let value = match tag & 7 {
            0 => Wire::Varint(take_varint(&mut buf)),
            1 => Wire::Fixed64(u64::from_le_bytes(take(&mut buf, 8).try_into().unwrap())),
            2 => {
                let len = take_varint(&mut buf) as usize;
                Wire::Len(take(&mut buf, len).to_vec())
            }
            5 => Wire::Fixed32(u32::from_le_bytes(take(&mut buf, 4).try_into().unwrap())),
            other => panic!("field {number}: unexpected wire type {other}"),
        };
        fields.push((number, value));
    }
    fields
}

/// Direction 1: the original's encoding decodes into exactly `expected`.
fn assert_decodes<M: Message + Default + PartialEq + Debug>(original: &[Field], expected: &M) {
    let decoded = M::decode(encode(original).as_slice()).expect("our types decode the original");
    assert_eq!(&decoded, expected);
}

/// Direction 2: our encoding is exactly the original's field records, in field number order.
fn assert_encodes<M: Message>(ours: &M, original: &[Field]) {
    assert_eq!(parse(&ours.encode_to_vec()), original);
}

fn assert_wire_compatible<M: Message + Default + PartialEq + Debug>(ours: &M, original: &[Field]) {
    assert_decodes(original, ours);
    assert_encodes(ours, original);
}

#[test]
fn reference_codec_matches_protobuf_spec_examples() {
    // The examples of https://protobuf.dev/programming-guides/encoding/.
    assert_eq!(encode(&[varint(1, 150)]), [0x08, 0x96, 0x01]);
    assert_eq!(
        encode(&[string(2, "testing")]),
        [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
    );
    assert_eq!(encode(&[int32(1, -2)]).len(), 11);
    assert_eq!(encode(&[float(1, 1.0)]), [0x0d, 0x00, 0x00, 0x80, 0x3f]);
    assert_eq!(
        encode(&[packed_varints(4, &[3, 270])]),
        [0x22, 0x03, 0x03, 0x8e, 0x02]
    );
    let fields = vec![
        varint(100, 7),
        (101, Wire::Fixed64(9)),
        float(3, 0.5),
        message(4, &[string(1, "x")]),
    ];
    assert_eq!(parse(&encode(&fields)), fields);
}

// ---------------------------------------------------------------------------------------------
// Realistic values: peer IDs are ed25519 identity multihashes, addresses binary multiaddrs, times
// Unix nanoseconds.
// ---------------------------------------------------------------------------------------------

const API_KEY: &str = "5e0c7d4a-8b21-4f6e-9c3d-1a2b3c4d5e6f";
const CLIENT_AGENT: &str = "punchr/go-client/0.10.0";
const REMOTE_AGENT: &str = "kubo/0.18.1/";
const REMOTE_IP: [u8; 4] = [203, 0, 113, 7];
const RELAY_IP: [u8; 4] = [198, 51, 100, 23];
const START: u64 = 1_672_531_200_000_000_000;
const ATTEMPT_ERROR: &str = "all retries for hole punch with peer failed";
const DIAL_ERROR: &str = "failed to dial: no good addresses";
const REQUEST_ERROR: &str = "attempt 1: all retries for hole punch with peer failed";

/// `ms` milliseconds after the start of the hole punch, in Unix nanoseconds.
fn at(ms: u64) -> u64 {
    START + ms * 1_000_000
}

/// An ed25519 peer ID: identity multihash of the protobuf-encoded public key.
fn peer_id(seed: u8) -> Vec<u8> {
    let key = (0..32u8).map(|i| seed.wrapping_mul(37).wrapping_add(i));
    [0x00, 0x24, 0x08, 0x01, 0x12, 0x20]
        .into_iter()
        .chain(key)
        .collect()
}

/// `/ip4/<ip>/tcp/<port>`
fn ip4_tcp(ip: [u8; 4], port: u16) -> Vec<u8> {
    [&[0x04][..], &ip, &[0x06], &port.to_be_bytes()].concat()
}

/// `/ip4/<ip>/udp/<port>/quic-v1`
fn ip4_quic(ip: [u8; 4], port: u16) -> Vec<u8> {
    [
        &[0x04][..],
        &ip,
        &[0x91, 0x02],
        &port.to_be_bytes(),
        &[0xcc, 0x03],
    ]
    .concat()
}

/// `<relay>/p2p/<relay id>/p2p-circuit`
fn circuit(relay: Vec<u8>, relay_id: &[u8]) -> Vec<u8> {
    let id_len = u8::try_from(relay_id.len()).unwrap();
    [
        relay,
        vec![0xa5, 0x03, id_len],
        relay_id.to_vec(),
        vec![0xa2, 0x02],
    ]
    .concat()
}

fn relay_addrs() -> Vec<Vec<u8>> {
    vec![
        circuit(ip4_tcp(RELAY_IP, 4001), &peer_id(9)),
        circuit(ip4_quic(RELAY_IP, 4001), &peer_id(9)),
    ]
}

fn repeated_bytes(number: u32, values: &[Vec<u8>]) -> Vec<Field> {
    values.iter().map(|value| bytes(number, value)).collect()
}

fn repeated_strings(number: u32, values: &[&str]) -> Vec<Field> {
    values.iter().map(|value| string(number, value)).collect()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|&value| value.to_owned()).collect()
}

const CLIENT_PROTOCOLS: [&str; 3] = ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/libp2p/dcutr"];
const REMOTE_PROTOCOLS: [&str; 2] = ["/ipfs/kad/1.0.0", "/libp2p/circuit/relay/0.2.0/stop"];

// ---------------------------------------------------------------------------------------------
// Each message with every field set: our value and the original's wire records.
// ---------------------------------------------------------------------------------------------

fn register_request() -> RegisterRequest {
    RegisterRequest {
        client_id: peer_id(1),
        agent_version: CLIENT_AGENT.into(),
        protocols: strings(&CLIENT_PROTOCOLS),
        api_key: API_KEY.into(),
    }
}

fn register_request_wire() -> Vec<Field> {
    [
        vec![bytes(1, &peer_id(1)), string(2, CLIENT_AGENT)],
        repeated_strings(3, &CLIENT_PROTOCOLS),
        vec![string(4, API_KEY)],
    ]
    .concat()
}

fn register_response() -> RegisterResponse {
    RegisterResponse {
        db_peer_id: 5_000_000_017,
    }
}

fn register_response_wire() -> Vec<Field> {
    vec![varint(1, 5_000_000_017)]
}

fn get_addr_info_request() -> GetAddrInfoRequest {
    GetAddrInfoRequest {
        host_id: peer_id(1),
        all_host_ids: vec![peer_id(1), peer_id(2)],
        api_key: API_KEY.into(),
    }
}

fn get_addr_info_request_wire() -> Vec<Field> {
    vec![
        bytes(1, &peer_id(1)),
        bytes(2, &peer_id(1)),
        bytes(2, &peer_id(2)),
        string(3, API_KEY),
    ]
}

fn get_addr_info_response() -> GetAddrInfoResponse {
    GetAddrInfoResponse {
        remote_id: peer_id(5),
        multi_addresses: relay_addrs(),
        protocols: vec![4, 6, 460],
    }
}

fn get_addr_info_response_wire() -> Vec<Field> {
    [
        vec![bytes(1, &peer_id(5))],
        repeated_bytes(2, &relay_addrs()),
        // Unpacked, as proto2 sends repeated scalars: ip4, tcp, quic-v1.
        vec![int32(3, 4), int32(3, 6), int32(3, 460)],
    ]
    .concat()
}

fn failed_attempt() -> HolePunchAttempt {
    HolePunchAttempt {
        opened_at: at(1_200),
        started_at: Some(at(1_250)),
        ended_at: at(6_250),
        start_rtt: Some(0.125),
        elapsed_time: 5.0,
        outcome: HolePunchAttemptOutcome::Failed.into(),
        error: Some(ATTEMPT_ERROR.into()),
        direct_dial_error: Some(DIAL_ERROR.into()),
        multi_addresses: vec![ip4_tcp(REMOTE_IP, 4001), ip4_quic(REMOTE_IP, 4001)],
        handshake_role: None,
    }
}

fn failed_attempt_wire() -> Vec<Field> {
    vec![
        varint(1, at(1_200)),
        varint(2, at(1_250)),
        varint(3, at(6_250)),
        float(4, 0.125),
        float(5, 5.0),
        varint(6, 5), // HOLE_PUNCH_ATTEMPT_OUTCOME_FAILED
        string(7, ATTEMPT_ERROR),
        string(8, DIAL_ERROR),
        bytes(9, &ip4_tcp(REMOTE_IP, 4001)),
        bytes(9, &ip4_quic(REMOTE_IP, 4001)),
    ]
}

fn successful_attempt() -> HolePunchAttempt {
    HolePunchAttempt {
        opened_at: at(6_400),
        started_at: Some(at(6_450)),
        ended_at: at(6_700),
        start_rtt: Some(0.0625),
        elapsed_time: 0.25,
        outcome: HolePunchAttemptOutcome::Success.into(),
        error: None,
        direct_dial_error: None,
        multi_addresses: vec![ip4_quic(REMOTE_IP, 4001)],
        handshake_role: None,
    }
}

fn successful_attempt_wire() -> Vec<Field> {
    vec![
        varint(1, at(6_400)),
        varint(2, at(6_450)),
        varint(3, at(6_700)),
        float(4, 0.0625),
        float(5, 0.25),
        varint(6, 6), // HOLE_PUNCH_ATTEMPT_OUTCOME_SUCCESS
        bytes(9, &ip4_quic(REMOTE_IP, 4001)),
    ]
}

fn latency_to_remote() -> LatencyMeasurement {
    LatencyMeasurement {
        remote_id: peer_id(5),
        agent_version: REMOTE_AGENT.into(),
        protocols: strings(&REMOTE_PROTOCOLS),
        multi_address: ip4_quic(REMOTE_IP, 4001),
        rtts: vec![0.046875, -1.0, 0.0390625],
        rtt_errs: strings(&["", "context deadline exceeded", ""]),
        mtype: LatencyMeasurementType::ToRemoteAfterHolePunch.into(),
    }
}

fn latency_to_remote_wire() -> Vec<Field> {
    [
        vec![bytes(1, &peer_id(5)), string(2, REMOTE_AGENT)],
        repeated_strings(3, &REMOTE_PROTOCOLS),
        vec![bytes(4, &ip4_quic(REMOTE_IP, 4001))],
        vec![float(5, 0.046875), float(5, -1.0), float(5, 0.0390625)],
        repeated_strings(6, &["", "context deadline exceeded", ""]),
        vec![varint(7, 2)], // TO_REMOTE_AFTER_HOLE_PUNCH
    ]
    .concat()
}

fn latency_to_relay() -> LatencyMeasurement {
    LatencyMeasurement {
        remote_id: peer_id(9),
        agent_version: "go-libp2p/0.24.2".into(),
        protocols: strings(&["/libp2p/circuit/relay/0.2.0/hop"]),
        multi_address: ip4_tcp(RELAY_IP, 4001),
        rtts: vec![0.015625],
        rtt_errs: strings(&[""]),
        mtype: LatencyMeasurementType::ToRelay.into(),
    }
}

fn latency_to_relay_wire() -> Vec<Field> {
    vec![
        bytes(1, &peer_id(9)),
        string(2, "go-libp2p/0.24.2"),
        string(3, "/libp2p/circuit/relay/0.2.0/hop"),
        bytes(4, &ip4_tcp(RELAY_IP, 4001)),
        float(5, 0.015625),
        string(6, ""),
        varint(7, 0), // TO_RELAY: required, so sent although it is the default
    ]
}

fn network_information() -> NetworkInformation {
    NetworkInformation {
        router_login_html: Some("<html><title>FRITZ!Box</title></html>".into()),
        router_login_html_error: Some("unexpected status code 401".into()),
        supports_ipv6: Some(true),
        supports_ipv6_error: Some("dial udp6: network is unreachable".into()),
    }
}

fn network_information_wire() -> Vec<Field> {
    vec![
        string(1, "<html><title>FRITZ!Box</title></html>"),
        string(2, "unexpected status code 401"),
        boolean(3, true),
        string(4, "dial udp6: network is unreachable"),
    ]
}

fn nat_mapping(protocol: &str, internal_port: i32, external_port: i32) -> NatMapping {
    NatMapping {
        internal_port,
        external_port,
        protocol: protocol.into(),
        addr: "192.0.2.44".into(),
        addr_network: "ip4".into(),
    }
}

fn nat_mapping_wire(protocol: &str, internal_port: i32, external_port: i32) -> Vec<Field> {
    vec![
        int32(1, internal_port),
        int32(2, external_port),
        string(3, protocol),
        string(4, "192.0.2.44"),
        string(5, "ip4"),
    ]
}

fn track_hole_punch_request() -> TrackHolePunchRequest {
    TrackHolePunchRequest {
        client_id: peer_id(1),
        remote_id: peer_id(5),
        remote_multi_addresses: relay_addrs(),
        connect_started_at: at(0),
        connect_ended_at: at(1_100),
        hole_punch_attempts: vec![failed_attempt(), successful_attempt()],
        open_multi_addresses: vec![ip4_quic(REMOTE_IP, 4001), relay_addrs()[1].clone()],
        has_direct_conns: true,
        error: Some(REQUEST_ERROR.into()),
        outcome: HolePunchOutcome::Success.into(),
        ended_at: at(6_800),
        listen_multi_addresses: vec![ip4_tcp([192, 168, 178, 21], 4001), ip4_quic([0; 4], 4001)],
        api_key: API_KEY.into(),
        protocols: vec![4, 460],
        latency_measurements: vec![latency_to_relay(), latency_to_remote()],
        network_information: Some(network_information()),
        nat_mappings: vec![
            nat_mapping("TCP", 4001, 4001),
            nat_mapping("UDP", 4001, 51_820),
        ],
        // Ours (field 100); original clients never send it.
        report_id: None,
        role_strategy: None,
    }
}

fn track_hole_punch_request_wire() -> Vec<Field> {
    [
        vec![bytes(1, &peer_id(1)), bytes(2, &peer_id(5))],
        repeated_bytes(3, &relay_addrs()),
        vec![varint(4, at(0)), varint(5, at(1_100))],
        vec![
            message(6, &failed_attempt_wire()),
            message(6, &successful_attempt_wire()),
        ],
        vec![
            bytes(7, &ip4_quic(REMOTE_IP, 4001)),
            bytes(7, &relay_addrs()[1]),
        ],
        vec![boolean(8, true), string(9, REQUEST_ERROR)],
        vec![varint(10, 6), varint(11, at(6_800))], // HOLE_PUNCH_OUTCOME_SUCCESS
        vec![
            bytes(12, &ip4_tcp([192, 168, 178, 21], 4001)),
            bytes(12, &ip4_quic([0; 4], 4001)),
        ],
        vec![string(13, API_KEY)],
        vec![int32(14, 4), int32(14, 460)], // unpacked
        vec![
            message(15, &latency_to_relay_wire()),
            message(15, &latency_to_remote_wire()),
        ],
        vec![message(16, &network_information_wire())],
        vec![
            message(17, &nat_mapping_wire("TCP", 4001, 4001)),
            message(17, &nat_mapping_wire("UDP", 4001, 51_820)),
        ],
    ]
    .concat()
}

// ---------------------------------------------------------------------------------------------
// Messages, both directions.
// ---------------------------------------------------------------------------------------------

#[test]
fn register_request_is_wire_compatible() {
    assert_wire_compatible(&register_request(), &register_request_wire());
}

#[test]
fn register_response_is_wire_compatible() {
    assert_wire_compatible(&register_response(), &register_response_wire());
}

#[test]
fn get_addr_info_request_is_wire_compatible() {
    assert_wire_compatible(&get_addr_info_request(), &get_addr_info_request_wire());
}

#[test]
fn get_addr_info_response_is_wire_compatible() {
    assert_wire_compatible(&get_addr_info_response(), &get_addr_info_response_wire());
}

#[test]
fn hole_punch_attempt_is_wire_compatible() {
    assert_wire_compatible(&failed_attempt(), &failed_attempt_wire());
    assert_wire_compatible(&successful_attempt(), &successful_attempt_wire());
}

#[test]
fn latency_measurement_is_wire_compatible() {
    assert_wire_compatible(&latency_to_remote(), &latency_to_remote_wire());
    assert_wire_compatible(&latency_to_relay(), &latency_to_relay_wire());
}

#[test]
fn network_information_is_wire_compatible() {
    assert_wire_compatible(&network_information(), &network_information_wire());
}

#[test]
fn nat_mapping_is_wire_compatible() {
    assert_wire_compatible(
        &nat_mapping("UDP", 4001, 51_820),
        &nat_mapping_wire("UDP", 4001, 51_820),
    );
}

#[test]
fn track_hole_punch_request_is_wire_compatible() {
    assert_wire_compatible(
        &track_hole_punch_request(),
        &track_hole_punch_request_wire(),
    );
}

#[test]
fn track_hole_punch_request_spot_checks() {
    let fields = parse(&track_hole_punch_request().encode_to_vec());
    let at_number = |number| -> Vec<&Wire> {
        let values = fields.iter().filter(move |(n, _)| *n == number);
        values.map(|(_, value)| value).collect()
    };
    assert_eq!(at_number(10), [&Wire::Varint(6)], "outcome SUCCESS");
    assert_eq!(at_number(8), [&Wire::Varint(1)], "has_direct_conns");
    assert_eq!(at_number(14), [&Wire::Varint(4), &Wire::Varint(460)]);
    let attempt = match at_number(6)[0] {
        Wire::Len(encoded) => parse(encoded),
        other => panic!("hole_punch_attempts is not length-delimited: {other:?}"),
    };
    assert!(attempt.contains(&(4, Wire::Fixed32(0.125f32.to_bits()))));
    assert!(attempt.contains(&(5, Wire::Fixed32(5.0f32.to_bits()))));
    assert!(attempt.contains(&(6, Wire::Varint(5))));
}

#[test]
fn packed_repeated_scalars_decode() {
    // Proto2 parsers must accept the packed form of repeated scalars too.
    let mut wire = track_hole_punch_request_wire();
    wire.retain(|(number, _)| *number != 14);
    wire.push(packed_varints(14, &[4, 460]));
    assert_decodes(&wire, &track_hole_punch_request());

    let mut wire = get_addr_info_response_wire();
    wire.retain(|(number, _)| *number != 3);
    wire.push(packed_varints(3, &[4, 6, 460]));
    assert_decodes(&wire, &get_addr_info_response());

    let mut wire = latency_to_remote_wire();
    let rtts: Vec<u8> = [0.046875f32, -1.0, 0.0390625]
        .iter()
        .flat_map(|rtt| rtt.to_le_bytes())
        .collect();
    wire.retain(|(number, _)| *number != 5);
    wire.insert(4, bytes(5, &rtts));
    assert_decodes(&wire, &latency_to_remote());
}

#[test]
fn required_fields_are_always_sent() {
    // The Go side rejects a message that lacks a required field, even one at its zero value.
    let empty = Vec::new();
    assert_encodes(
        &TrackHolePunchRequest::default(),
        &[
            bytes(1, &empty),
            bytes(2, &empty),
            varint(4, 0),
            varint(5, 0),
            boolean(8, false),
            varint(10, 0),
            varint(11, 0),
            string(13, ""),
        ],
    );
    assert_encodes(
        &HolePunchAttempt::default(),
        &[varint(1, 0), varint(3, 0), float(5, 0.0), varint(6, 0)],
    );
    assert_encodes(
        &LatencyMeasurement::default(),
        &[
            bytes(1, &empty),
            string(2, ""),
            bytes(4, &empty),
            varint(7, 0),
        ],
    );
    assert_encodes(
        &NatMapping::default(),
        &[
            int32(1, 0),
            int32(2, 0),
            string(3, ""),
            string(4, ""),
            string(5, ""),
        ],
    );
    assert_encodes(
        &RegisterRequest::default(),
        &[bytes(1, &empty), string(2, ""), string(4, "")],
    );
    assert_encodes(&RegisterResponse::default(), &[varint(1, 0)]);
    assert_encodes(
        &GetAddrInfoRequest::default(),
        &[bytes(1, &empty), string(3, "")],
    );
    assert_encodes(&GetAddrInfoResponse::default(), &[bytes(1, &empty)]);
    assert_encodes(&NetworkInformation::default(), &[]);
    assert_encodes(&TrackHolePunchResponse::default(), &[]);
    assert_decodes(&[], &TrackHolePunchResponse::default());
}

#[test]
fn optional_fields_keep_presence() {
    // Set optionals are sent even at their zero value; unset ones are not.
    let attempt = HolePunchAttempt {
        started_at: Some(0),
        start_rtt: Some(0.0),
        error: Some(String::new()),
        ..HolePunchAttempt::default()
    };
    let wire = [
        varint(1, 0),
        varint(2, 0),
        varint(3, 0),
        float(4, 0.0),
        float(5, 0.0),
        varint(6, 0),
        string(7, ""),
    ];
    assert_wire_compatible(&attempt, &wire);

    let info = NetworkInformation {
        supports_ipv6: Some(false),
        ..NetworkInformation::default()
    };
    assert_wire_compatible(&info, &[boolean(3, false)]);
}

#[test]
fn negative_int32_is_sign_extended_like_go() {
    let response = GetAddrInfoResponse {
        protocols: vec![-1],
        ..GetAddrInfoResponse::default()
    };
    let wire = [bytes(1, &[]), varint(3, u64::MAX)];
    assert_eq!(response.encode_to_vec().len(), 2 + 11);
    assert_wire_compatible(&response, &wire);
}

#[test]
fn report_id_is_our_field_100() {
    let mut request = track_hole_punch_request();
    request.report_id = Some(b"0123456789abcdef".to_vec());
    let mut wire = track_hole_punch_request_wire();
    wire.push(bytes(100, b"0123456789abcdef"));
    assert_wire_compatible(&request, &wire);
}

#[test]
fn unknown_extension_fields_are_skipped() {
    // Fields numbered 100 and up are ours; a decoder must skip those it does not know (from a
    // newer version), whatever their wire type and wherever they are, also inside embedded
    // messages. Field 100 of TrackHolePunchRequest is report_id; 200 and up are unassigned.
    let mut attempt = failed_attempt_wire();
    attempt.push(string(200, "attempt extension"));
    let mut wire = track_hole_punch_request_wire();
    let first_attempt = wire.iter().position(|(number, _)| *number == 6).unwrap();
    wire[first_attempt] = message(6, &attempt);
    wire.insert(first_attempt, bytes(201, b"\x0a\x03abc"));
    wire.insert(0, varint(200, 42));
    wire.push(float(202, 1.5));
    wire.push((203, Wire::Fixed64(u64::MAX)));
    wire.push(varint(536_870_911, 1)); // the largest field number
    assert_decodes(&wire, &track_hole_punch_request());
}

// ---------------------------------------------------------------------------------------------
// Enums.
// ---------------------------------------------------------------------------------------------

/// `original` lists every value of the original enum: our variant, its number, its proto name.
fn assert_enum_matches<E>(original: &[(E, i32, &str)], proto_name: fn(&E) -> &'static str)
where
    E: Copy + Debug + PartialEq + Into<i32> + TryFrom<i32>,
{
    for &(variant, number, name) in original {
        let ours: i32 = variant.into();
        assert_eq!(ours, number, "{variant:?}");
        assert_eq!(E::try_from(number).ok(), Some(variant), "{number}");
        assert_eq!(proto_name(&variant), name);
    }
    let past_end = i32::try_from(original.len()).unwrap();
    assert!(
        E::try_from(past_end).is_err(),
        "value {past_end} is not in the original"
    );
    assert!(E::try_from(-1).is_err());
}

#[test]
fn hole_punch_outcome_matches_original() {
    use HolePunchOutcome as O;
    assert_enum_matches(
        &[
            (O::Unknown, 0, "HOLE_PUNCH_OUTCOME_UNKNOWN"),
            (O::NoConnection, 1, "HOLE_PUNCH_OUTCOME_NO_CONNECTION"),
            (O::NoStream, 2, "HOLE_PUNCH_OUTCOME_NO_STREAM"),
            (
                O::ConnectionReversed,
                3,
                "HOLE_PUNCH_OUTCOME_CONNECTION_REVERSED",
            ),
            (O::Cancelled, 4, "HOLE_PUNCH_OUTCOME_CANCELLED"),
            (O::Failed, 5, "HOLE_PUNCH_OUTCOME_FAILED"),
            (O::Success, 6, "HOLE_PUNCH_OUTCOME_SUCCESS"),
        ],
        O::as_str_name,
    );
}

#[test]
fn hole_punch_attempt_outcome_matches_original() {
    use HolePunchAttemptOutcome as O;
    assert_enum_matches(
        &[
            (O::Unknown, 0, "HOLE_PUNCH_ATTEMPT_OUTCOME_UNKNOWN"),
            (O::DirectDial, 1, "HOLE_PUNCH_ATTEMPT_OUTCOME_DIRECT_DIAL"),
            (
                O::ProtocolError,
                2,
                "HOLE_PUNCH_ATTEMPT_OUTCOME_PROTOCOL_ERROR",
            ),
            (O::Cancelled, 3, "HOLE_PUNCH_ATTEMPT_OUTCOME_CANCELLED"),
            (O::Timeout, 4, "HOLE_PUNCH_ATTEMPT_OUTCOME_TIMEOUT"),
            (O::Failed, 5, "HOLE_PUNCH_ATTEMPT_OUTCOME_FAILED"),
            (O::Success, 6, "HOLE_PUNCH_ATTEMPT_OUTCOME_SUCCESS"),
        ],
        O::as_str_name,
    );
}

#[test]
fn latency_measurement_type_matches_original() {
    use LatencyMeasurementType as T;
    assert_enum_matches(
        &[
            (T::ToRelay, 0, "TO_RELAY"),
            (T::ToRemoteThroughRelay, 1, "TO_REMOTE_THROUGH_RELAY"),
            (T::ToRemoteAfterHolePunch, 2, "TO_REMOTE_AFTER_HOLE_PUNCH"),
        ],
        T::as_str_name,
    );
}

// ---------------------------------------------------------------------------------------------
// gRPC service name and method paths (the original proto has no package).
// ---------------------------------------------------------------------------------------------

#[test]
fn service_name_and_paths_match_original() {
    assert_eq!(punchr_service_server::SERVICE_NAME, "PunchrService");
    assert_eq!(
        <PunchrServiceServer<Fixtures> as NamedService>::NAME,
        "PunchrService"
    );
    assert_eq!(paths::REGISTER, "/PunchrService/Register");
    assert_eq!(paths::GET_ADDR_INFO, "/PunchrService/GetAddrInfo");
    assert_eq!(paths::TRACK_HOLE_PUNCH, "/PunchrService/TrackHolePunch");
}

/// A server that expects the fixture requests and answers with the fixture responses.
struct Fixtures;

#[tonic::async_trait]
impl PunchrService for Fixtures {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        assert_eq!(request.into_inner(), register_request());
        Ok(Response::new(register_response()))
    }

    async fn get_addr_info(
        &self,
        request: Request<GetAddrInfoRequest>,
    ) -> Result<Response<GetAddrInfoResponse>, Status> {
        assert_eq!(request.into_inner(), get_addr_info_request());
        Ok(Response::new(get_addr_info_response()))
    }

    async fn track_hole_punch(
        &self,
        request: Request<TrackHolePunchRequest>,
    ) -> Result<Response<TrackHolePunchResponse>, Status> {
        assert_eq!(request.into_inner(), track_hole_punch_request());
        Ok(Response::new(TrackHolePunchResponse {}))
    }
}

/// The generated server, in memory, noting the path of every request it gets.
struct RecordPaths {
    server: PunchrServiceServer<Fixtures>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Service<http::Request<Body>> for RecordPaths {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<http::Request<Body>>::poll_ready(&mut self.server, cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        self.seen.lock().unwrap().push(path);
        self.server.call(request)
    }
}

/// Runs an in-memory future (no I/O, nothing to wait for) to completion.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("the in-memory call did not complete")
}

#[test]
fn generated_client_and_server_use_original_paths() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = PunchrServiceServer::new(Fixtures);
    let mut client = PunchrServiceClient::new(RecordPaths {
        server,
        seen: Arc::clone(&seen),
    });

    let registered = block_on(client.register(register_request())).expect("Register");
    assert_eq!(registered.into_inner(), register_response());
    let addr_info = block_on(client.get_addr_info(get_addr_info_request())).expect("GetAddrInfo");
    assert_eq!(addr_info.into_inner(), get_addr_info_response());
    let tracked = block_on(client.track_hole_punch(track_hole_punch_request()));
    assert_eq!(
        tracked.expect("TrackHolePunch").into_inner(),
        TrackHolePunchResponse {}
    );

    let expected = [
        paths::REGISTER,
        paths::GET_ADDR_INFO,
        paths::TRACK_HOLE_PUNCH,
    ];
    assert_eq!(*seen.lock().unwrap(), expected);
}
