//! The original wire format by hand: a tiny protobuf encoder and decoder that know only field
//! numbers and wire types (written down from the original Go punchr's `punchr.proto`), and a
//! gRPC codec that sends and receives raw bytes, so requests can reach the server without our
//! generated types.

use std::net::SocketAddr;

use prost::bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// A field's value as it is on the wire; the variant is the wire type.
#[derive(Debug, Clone, PartialEq)]
pub enum Wire {
    /// Wire type 0: int32, int64, uint64, bool, enum.
    Varint(u64),
    /// Wire type 2: bytes, string, embedded message, packed repeated scalars.
    Len(Vec<u8>),
    /// Wire type 5: float.
    Fixed32(u32),
}

/// One field record: field number and value.
pub type Field = (u32, Wire);

pub fn varint(number: u32, value: u64) -> Field {
    (number, Wire::Varint(value))
}

/// Like Go, a negative int32 is sign-extended to 64 bits.
pub fn int32(number: u32, value: i32) -> Field {
    varint(number, i64::from(value) as u64)
}

pub fn boolean(number: u32, value: bool) -> Field {
    varint(number, u64::from(value))
}

pub fn bytes(number: u32, value: &[u8]) -> Field {
    (number, Wire::Len(value.to_vec()))
}

pub fn string(number: u32, value: &str) -> Field {
    bytes(number, value.as_bytes())
}

pub fn float(number: u32, value: f32) -> Field {
    (number, Wire::Fixed32(value.to_bits()))
}

/// An embedded message.
pub fn message(number: u32, fields: &[Field]) -> Field {
    bytes(number, &encode(fields))
}

/// A repeated bytes field, one record per element (as proto2 sends it).
pub fn repeated_bytes(number: u32, values: &[Vec<u8>]) -> Vec<Field> {
    values.iter().map(|value| bytes(number, value)).collect()
}

pub fn repeated_strings(number: u32, values: &[String]) -> Vec<Field> {
    values.iter().map(|value| string(number, value)).collect()
}

fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Encodes the records in the given order, each as tag (`number << 3 | wire type`) and value.
pub fn encode(fields: &[Field]) -> Vec<u8> {
    let mut buf = Vec::new();
    for (number, value) in fields {
        let wire_type = match value {
            Wire::Varint(_) => 0,
            Wire::Len(_) => 2,
            Wire::Fixed32(_) => 5,
        };
        put_varint(&mut buf, (u64::from(*number) << 3) | wire_type);
        match value {
            Wire::Varint(v) => put_varint(&mut buf, *v),
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
    assert!(buf.len() >= len, "truncated message");
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
pub fn parse(mut buf: &[u8]) -> Vec<Field> {
    let mut fields = Vec::new();
    while !buf.is_empty() {
        let tag = take_varint(&mut buf);
        let number = u32::try_from(tag >> 3).expect("field number fits u32");
        let value = match tag & 7 {
            0 => Wire::Varint(take_varint(&mut buf)),
            2 => {
                let len = usize::try_from(take_varint(&mut buf)).expect("length fits usize");
                Wire::Len(take(&mut buf, len).to_vec())
            }
            5 => Wire::Fixed32(u32::from_le_bytes(
                take(&mut buf, 4).try_into().expect("4 bytes"),
            )),
            other => panic!("field {number}: unexpected wire type {other}"),
        };
        fields.push((number, value));
    }
    fields
}

// ---------------------------------------------------------------------------------------------
// Raw gRPC
// ---------------------------------------------------------------------------------------------

/// A gRPC codec that passes message bytes through untouched.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

#[derive(Debug)]
pub struct RawEncoder;

#[derive(Debug)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut message = vec![0; src.remaining()];
        src.copy_to_slice(&mut message);
        Ok(Some(message))
    }
}

/// Sends `message` (already encoded) to the gRPC method at `path` and returns the encoded
/// response.
pub async fn raw_unary(
    addr: SocketAddr,
    path: &'static str,
    message: Vec<u8>,
) -> Result<Vec<u8>, Status> {
    raw_unary_on(raw_channel(addr).await, path, message).await
}

/// A channel to the server at `addr`, for many [`raw_unary_on`] calls.
pub async fn raw_channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect()
        .await
        .expect("connect to the server")
}

/// [`raw_unary`] over an open channel.
pub async fn raw_unary_on(
    channel: Channel,
    path: &'static str,
    message: Vec<u8>,
) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("the channel is ready");
    grpc.unary(
        Request::new(message),
        PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}
