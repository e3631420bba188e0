//! Clients built from the original Go punchr proto keep working: requests encoded by hand from
//! the original field numbers (no generated code involved) are sent as raw bytes over HTTP/2 to
//! the original method paths, and the server answers and stores them.

use crate::common::wire::{
    self, boolean, bytes, float, int32, message, raw_unary, repeated_bytes, repeated_strings,
    string, varint, Field, Wire,
};
use crate::common::*;
use libp2p_identity::PeerId;
use prost::Message;
use punchr_proto as pb;
use punchr_store::{AttemptOutcome, LatencyKind, Outcome};
use punchr_testutil::fixtures::peer_id;
use punchr_testutil::{on_both_engines, TestDb};
use tonic::Code;

on_both_engines!(
    register_in_the_original_encoding_binds_the_host,
    get_addr_info_in_the_original_encoding_is_answered_in_it,
    track_hole_punch_in_the_original_encoding_is_stored,
    original_clients_get_the_original_error_texts,
);

const REGISTER: &str = "/PunchrService/Register";
const GET_ADDR_INFO: &str = "/PunchrService/GetAddrInfo";
const TRACK_HOLE_PUNCH: &str = "/PunchrService/TrackHolePunch";

// ---------------------------------------------------------------------------------------------
// The original messages, field by field
// ---------------------------------------------------------------------------------------------

fn register_wire(r: &pb::RegisterRequest) -> Vec<u8> {
    let mut fields = vec![bytes(1, &r.client_id), string(2, &r.agent_version)];
    fields.extend(repeated_strings(3, &r.protocols));
    fields.push(string(4, &r.api_key));
    wire::encode(&fields)
}

fn get_addr_info_wire(r: &pb::GetAddrInfoRequest) -> Vec<u8> {
    let mut fields = vec![bytes(1, &r.host_id)];
    fields.extend(repeated_bytes(2, &r.all_host_ids));
    fields.push(string(3, &r.api_key));
    wire::encode(&fields)
}

fn attempt_wire(a: &pb::HolePunchAttempt) -> Vec<Field> {
    let mut fields = vec![varint(1, a.opened_at)];
    fields.extend(a.started_at.map(|t| varint(2, t)));
    fields.push(varint(3, a.ended_at));
    fields.extend(a.start_rtt.map(|rtt| float(4, rtt)));
    fields.push(float(5, a.elapsed_time));
    fields.push(int32(6, a.outcome));
    fields.extend(a.error.as_deref().map(|e| string(7, e)));
    fields.extend(a.direct_dial_error.as_deref().map(|e| string(8, e)));
    fields.extend(repeated_bytes(9, &a.multi_addresses));
    fields
}

fn latency_wire(m: &pb::LatencyMeasurement) -> Vec<Field> {
    let mut fields = vec![bytes(1, &m.remote_id), string(2, &m.agent_version)];
    fields.extend(repeated_strings(3, &m.protocols));
    fields.push(bytes(4, &m.multi_address));
    fields.extend(m.rtts.iter().map(|&rtt| float(5, rtt)));
    fields.extend(repeated_strings(6, &m.rtt_errs));
    fields.push(int32(7, m.mtype));
    fields
}

fn network_information_wire(n: &pb::NetworkInformation) -> Vec<Field> {
    let mut fields = Vec::new();
    fields.extend(n.router_login_html.as_deref().map(|v| string(1, v)));
    fields.extend(n.router_login_html_error.as_deref().map(|v| string(2, v)));
    fields.extend(n.supports_ipv6.map(|v| boolean(3, v)));
    fields.extend(n.supports_ipv6_error.as_deref().map(|v| string(4, v)));
    fields
}

fn nat_mapping_wire(m: &pb::NatMapping) -> Vec<Field> {
    vec![
        int32(1, m.internal_port),
        int32(2, m.external_port),
        string(3, &m.protocol),
        string(4, &m.addr),
        string(5, &m.addr_network),
    ]
}

fn track_hole_punch_wire(r: &pb::TrackHolePunchRequest) -> Vec<Field> {
    let mut fields = vec![bytes(1, &r.client_id), bytes(2, &r.remote_id)];
    fields.extend(repeated_bytes(3, &r.remote_multi_addresses));
    fields.push(varint(4, r.connect_started_at));
    fields.push(varint(5, r.connect_ended_at));
    fields.extend(
        r.hole_punch_attempts
            .iter()
            .map(|a| message(6, &attempt_wire(a))),
    );
    fields.extend(repeated_bytes(7, &r.open_multi_addresses));
    fields.push(boolean(8, r.has_direct_conns));
    fields.extend(r.error.as_deref().map(|e| string(9, e)));
    fields.push(int32(10, r.outcome));
    fields.push(varint(11, r.ended_at));
    fields.extend(repeated_bytes(12, &r.listen_multi_addresses));
    fields.push(string(13, &r.api_key));
    fields.extend(r.protocols.iter().map(|&p| int32(14, p)));
    fields.extend(
        r.latency_measurements
            .iter()
            .map(|m| message(15, &latency_wire(m))),
    );
    fields.extend(
        r.network_information
            .iter()
            .map(|n| message(16, &network_information_wire(n))),
    );
    fields.extend(
        r.nat_mappings
            .iter()
            .map(|m| message(17, &nat_mapping_wire(m))),
    );
    fields
}

/// Registers `host` with `key` through raw bytes; returns the host's database id.
async fn register_raw(addr: std::net::SocketAddr, key: &str, host: &PeerId) -> i64 {
    let answer = raw_unary(addr, REGISTER, register_wire(&register_request(key, host)))
        .await
        .expect("Register");
    let [(1, Wire::Varint(id))] = wire::parse(&answer)[..] else {
        panic!(
            "RegisterResponse is field 1 (int64): {:?}",
            wire::parse(&answer)
        );
    };
    i64::try_from(id).expect("a database id")
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

async fn register_in_the_original_encoding_binds_the_host(db: TestDb) {
    let server = start_server(&db, &[]).await;
    let key = new_api_key(&db.store, "alice").await;
    let host = peer_id();
    let request = register_request(&key, &host);
    assert_eq!(
        pb::RegisterRequest::decode(register_wire(&request).as_slice()).unwrap(),
        request
    );

    let id = register_raw(server.grpc_addr(), &key, &host).await;

    let key_id = api_key_id(&db.store, &key).await;
    assert_eq!(
        db.store
            .registered_host(key_id, &host.to_base58())
            .await
            .unwrap(),
        Some(id)
    );
}

async fn get_addr_info_in_the_original_encoding_is_answered_in_it(db: TestDb) {
    let server = start_server(&db, &[]).await;
    let remote = seed_remote(&db.store).await;
    let key = new_api_key(&db.store, "alice").await;
    let host = peer_id();
    register_raw(server.grpc_addr(), &key, &host).await;
    let request = get_addr_info_request(&key, &host, &[host]);
    assert_eq!(
        pb::GetAddrInfoRequest::decode(get_addr_info_wire(&request).as_slice()).unwrap(),
        request
    );

    let answer = raw_unary(
        server.grpc_addr(),
        GET_ADDR_INFO,
        get_addr_info_wire(&request),
    )
    .await
    .expect("GetAddrInfo");

    let mut remote_id = None;
    let mut addresses = Vec::new();
    let mut filter = Vec::new();
    for (number, value) in wire::parse(&answer) {
        match (number, value) {
            (1, Wire::Len(id)) => remote_id = Some(decode_peer(&id)),
            (2, Wire::Len(address)) => addresses.push(address),
            (3, Wire::Varint(code)) => filter.push(code),
            other => panic!("unexpected field in GetAddrInfoResponse: {other:?}"),
        }
    }
    assert_eq!(remote_id, Some(remote.peer));
    let mut served = decode_addresses(&addresses);
    served.sort_by_key(|a| a.to_string());
    let mut relays = remote.relay_addresses.clone();
    relays.sort_by_key(|a| a.to_string());
    assert_eq!(served, relays);
    assert!(
        [vec![], vec![4, 6], vec![4, 460], vec![41, 6], vec![41, 460]].contains(&filter),
        "filter {filter:?}"
    );
}

async fn track_hole_punch_in_the_original_encoding_is_stored(db: TestDb) {
    let server = start_server(&db, &[]).await;
    let remote = seed_remote(&db.store).await;
    let key = new_api_key(&db.store, "alice").await;
    let host = peer_id();
    register_raw(server.grpc_addr(), &key, &host).await;
    let request = track_hole_punch_request_with_every_field(&key, &host, &remote.peer);
    let original = track_hole_punch_wire(&request);
    assert_eq!(
        pb::TrackHolePunchRequest::decode(wire::encode(&original).as_slice()).unwrap(),
        request
    );

    // A newer client may send fields this server does not know; they are skipped.
    let mut from_newer_client = original.clone();
    from_newer_client.push(varint(99, 7));
    from_newer_client.push(string(4242, "from the future"));
    let answer = raw_unary(
        server.grpc_addr(),
        TRACK_HOLE_PUNCH,
        wire::encode(&from_newer_client),
    )
    .await
    .expect("TrackHolePunch");

    assert!(answer.is_empty(), "TrackHolePunchResponse has no fields");
    let ids = result_ids(&db.store).await;
    assert_eq!(ids.len(), 1);
    let stored = db
        .store
        .load_hole_punch_result(ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.client_peer_id, host.to_base58());
    assert_eq!(stored.remote_peer_id, remote.peer.to_base58());
    assert_eq!(stored.outcome, Outcome::Success);
    assert_eq!(
        stored.error.as_deref(),
        Some("attempt 1: all retries failed")
    );
    assert_eq!(stored.protocol_filters, vec![41, 460]);
    assert_eq!(stored.remote_addresses.len(), 2);
    assert_eq!(
        stored.connect_started_at,
        i64::try_from(request.connect_started_at).unwrap()
    );
    let outcomes: Vec<_> = stored.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            AttemptOutcome::Failed,
            AttemptOutcome::Failed,
            AttemptOutcome::Success
        ]
    );
    assert_eq!(
        stored.attempts[0].direct_dial_error.as_deref(),
        Some("no good addresses")
    );
    assert_eq!(stored.attempts[1].start_rtt_seconds, Some(0.0625));
    let kinds: Vec<_> = stored.latency_measurements.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [LatencyKind::ToRelay, LatencyKind::ToRemoteAfterHolePunch]
    );
    assert_eq!(
        stored.latency_measurements[0].rtts,
        vec![0.03125, 0.0390625, -1.0]
    );
    let network = stored.network_information.expect("network information");
    assert_eq!(network.supports_ipv6, Some(false));
    assert_eq!(
        network.supports_ipv6_error.as_deref(),
        Some("no route to host")
    );
    assert_eq!(
        network.router_login_html_error.as_deref(),
        Some("connection refused")
    );
    assert_eq!(stored.nat_mappings[0].external_port, 41000);
}

/// The common request with every optional field of the original set as well.
fn track_hole_punch_request_with_every_field(
    key: &str,
    host: &PeerId,
    remote: &PeerId,
) -> pb::TrackHolePunchRequest {
    let mut request = track_request(key, host, remote);
    request.error = Some("attempt 1: all retries failed".into());
    request.protocols = vec![41, 460];
    request.hole_punch_attempts[0].direct_dial_error = Some("no good addresses".into());
    request.network_information = Some(pb::NetworkInformation {
        router_login_html: None,
        router_login_html_error: Some("connection refused".into()),
        supports_ipv6: Some(false),
        supports_ipv6_error: Some("no route to host".into()),
    });
    request
}

async fn original_clients_get_the_original_error_texts(db: TestDb) {
    let server = start_server(&db, &[]).await;
    let key = new_api_key(&db.store, "alice").await;
    let host = peer_id();

    let missing = raw_unary(
        server.grpc_addr(),
        REGISTER,
        register_wire(&register_request("", &host)),
    )
    .await;
    assert_status(missing, Code::Unauthenticated, "API key is missing");

    let unknown = raw_unary(
        server.grpc_addr(),
        REGISTER,
        register_wire(&register_request("not-a-key", &host)),
    )
    .await;
    assert_status(unknown, Code::Unauthenticated, "unauthorized");

    register_raw(server.grpc_addr(), &key, &host).await;
    let request = get_addr_info_wire(&get_addr_info_request(&key, &host, &[host]));
    let nothing = raw_unary(server.grpc_addr(), GET_ADDR_INFO, request).await;
    assert_status(nothing, Code::NotFound, "no peers to hole punch");

    let stranger = peer_id();
    let request = get_addr_info_wire(&get_addr_info_request(&key, &stranger, &[stranger]));
    let unregistered = raw_unary(server.grpc_addr(), GET_ADDR_INFO, request).await;
    assert_status(
        unregistered,
        Code::FailedPrecondition,
        "please restart the client",
    );
}
