//! The two DCUtR messages, their framing, and what a peer accepts in them.
//!
//! Follows the libp2p spec `relay/DCUtR.md` ("RPC messages") and the stock crate's
//! `src/generated/message.proto` and `src/protocol.rs`: one protobuf message
//! `holepunch.pb.HolePunch { required Type type = 1; repeated bytes ObsAddrs = 2; }` with
//! `CONNECT = 100` and `SYNC = 300`, each framed by an unsigned-varint length prefix and at most
//! [`MAX_MESSAGE_SIZE`] bytes long. Everything here except [`read()`] and [`write()`] is pure.

use std::{fmt, io};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::Multiaddr;
use prost::Message as _;

/// Largest encoded message (without its length prefix) that a peer sends or accepts, in bytes.
pub const MAX_MESSAGE_SIZE: usize = 4096;

/// `holepunch.pb.HolePunch`, field for field.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HolePunch {
    /// A [`Type`] value; kept as `i32` so that unknown values can be reported.
    #[prost(enumeration = "Type", required, tag = "1")]
    pub(crate) r#type: i32,
    /// Binary multiaddrs of the sender (`ObsAddrs` in the schema).
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub(crate) obs_addrs: Vec<Vec<u8>>,
}

/// `holepunch.pb.HolePunch.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum Type {
    Connect = 100,
    Sync = 300,
}

impl HolePunch {
    /// A CONNECT carrying as many of `addrs`, in order, as fit into [`MAX_MESSAGE_SIZE`], and the
    /// addresses that made it in.
    pub(crate) fn connect(addrs: &[Multiaddr]) -> (Self, Vec<Multiaddr>) {
        let mut message = Self {
            r#type: Type::Connect as i32,
            obs_addrs: Vec::with_capacity(addrs.len()),
        };
        let mut sent = Vec::with_capacity(addrs.len());
        for addr in addrs {
            message.obs_addrs.push(addr.to_vec());
            if message.encoded_len() > MAX_MESSAGE_SIZE {
                message.obs_addrs.pop();
                break;
            }
            sent.push(addr.clone());
        }
        (message, sent)
    }

    /// A SYNC (it carries no addresses).
    pub(crate) fn sync() -> Self {
        Self {
            r#type: Type::Sync as i32,
            obs_addrs: Vec::new(),
        }
    }
}

/// What the remote offered in its CONNECT, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Offer {
    /// Every address that parsed as a multiaddr, in the remote's order (relayed ones included).
    pub(crate) addrs: Vec<Multiaddr>,
    /// How many entries did not parse as a multiaddr.
    pub(crate) unparsable: usize,
}

impl Offer {
    /// Parses the address list of a received message.
    pub(crate) fn parse(obs_addrs: Vec<Vec<u8>>) -> Self {
        let mut unparsable = 0;
        let addrs = obs_addrs
            .into_iter()
            .filter_map(|bytes| {
                let parsed = Multiaddr::try_from(bytes).ok();
                unparsable += usize::from(parsed.is_none());
                parsed
            })
            .collect();
        Self { addrs, unparsable }
    }

    /// The addresses worth a direct dial: all but relayed ones, as the stock crate filters.
    pub(crate) fn dialable(&self) -> Vec<Multiaddr> {
        self.addrs
            .iter()
            .filter(|addr| !punchr_types::address::is_relayed(addr))
            .cloned()
            .collect()
    }
}

/// Why a message could not be read or was not acceptable.
#[derive(Debug)]
pub(crate) enum MessageError {
    /// The stream failed or ended early.
    Io(io::Error),
    /// The length prefix announced more than [`MAX_MESSAGE_SIZE`] bytes (or was not a varint).
    TooLarge(u64),
    /// The bytes are not a `HolePunch` protobuf.
    Malformed(prost::DecodeError),
    /// A valid message of the wrong type for this step.
    UnexpectedType {
        /// What the protocol step needs.
        expected: Type,
        /// The `type` field as received.
        received: i32,
    },
    /// A CONNECT without any address (the stock crate's `NoAddresses`).
    NoAddresses,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "stream error: {e}"),
            Self::TooLarge(len) => write!(
                f,
                "message of {len} bytes exceeds the limit of {MAX_MESSAGE_SIZE} bytes"
            ),
            Self::Malformed(e) => write!(f, "malformed HolePunch message: {e}"),
            Self::UnexpectedType { expected, received } => {
                let received = Type::try_from(*received)
                    .map(|t| format!("{t:?}").to_uppercase())
                    .unwrap_or_else(|_| format!("unknown type {received}"));
                let expected = format!("{expected:?}").to_uppercase();
                write!(f, "expected {expected}, received {received}")
            }
            Self::NoAddresses => write!(f, "CONNECT without addresses"),
        }
    }
}

impl From<io::Error> for MessageError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Checks that `message` has the type that this protocol step expects.
pub(crate) fn expect_type(message: &HolePunch, expected: Type) -> Result<(), MessageError> {
    if message.r#type == expected as i32 {
        Ok(())
    } else {
        Err(MessageError::UnexpectedType {
            expected,
            received: message.r#type,
        })
    }
}

/// Length prefix plus protobuf: the bytes that go on the stream.
pub(crate) fn encode(message: &HolePunch) -> Vec<u8> {
    message.encode_length_delimited_to_vec()
}

/// Reads one length-prefixed message.
pub(crate) async fn read<S: AsyncRead + Unpin>(stream: &mut S) -> Result<HolePunch, MessageError> {
    let len = read_length(stream).await?;
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    HolePunch::decode(body.as_slice()).map_err(MessageError::Malformed)
}

/// Writes one length-prefixed message and flushes it.
pub(crate) async fn write<S: AsyncWrite + Unpin>(
    stream: &mut S,
    message: &HolePunch,
) -> Result<(), MessageError> {
    let bytes = encode(message);
    let body_len = message.encoded_len();
    if body_len > MAX_MESSAGE_SIZE {
        return Err(MessageError::TooLarge(body_len as u64));
    }
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    Ok(())
}

/// Reads an unsigned varint and checks it against [`MAX_MESSAGE_SIZE`] before any allocation.
async fn read_length<S: AsyncRead + Unpin>(stream: &mut S) -> Result<usize, MessageError> {
    let mut value: u64 = 0;
    // Two varint bytes already reach 16383; a third continuation byte can only mean "too large".
    for shift in [0u32, 7, 14] {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await?;
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return usize::try_from(value)
                .ok()
                .filter(|len| *len <= MAX_MESSAGE_SIZE)
                .ok_or(MessageError::TooLarge(value));
        }
    }
    Err(MessageError::TooLarge(value))
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use libp2p::PeerId;

    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn connect_round_trips_through_the_framing() {
        let addrs = vec![
            addr("/ip4/127.0.0.1/tcp/4001"),
            addr("/ip6/::1/udp/4001/quic-v1"),
        ];
        let (message, sent) = HolePunch::connect(&addrs);
        assert_eq!(sent, addrs);
        let bytes = encode(&message);
        let decoded = block_on(read(&mut bytes.as_slice())).unwrap();
        assert_eq!(decoded, message);
        assert_eq!(decoded.r#type, 100);
        assert_eq!(Offer::parse(decoded.obs_addrs).addrs, addrs);
    }

    #[test]
    fn wire_bytes_match_the_schema() {
        // SYNC: length 3, then field 1 (varint) = 300 (0xac 0x02).
        assert_eq!(encode(&HolePunch::sync()), vec![3, 0x08, 0xac, 0x02]);
        let (connect, _) = HolePunch::connect(&[addr("/ip4/1.2.3.4/tcp/5")]);
        let bytes = encode(&connect);
        // CONNECT = 100, then field 2 (length-delimited) with the binary multiaddr.
        assert_eq!(&bytes[1..3], &[0x08, 100]);
        assert_eq!(bytes[3], 0x12);
    }

    #[test]
    fn connect_is_cut_to_the_size_limit() {
        let peer = PeerId::random();
        let addrs: Vec<_> = (0..200)
            .map(|port| addr(&format!("/ip4/10.0.0.1/tcp/{port}/p2p/{peer}")))
            .collect();
        let (message, sent) = HolePunch::connect(&addrs);
        assert!(message.encoded_len() <= MAX_MESSAGE_SIZE);
        assert!(!sent.is_empty() && sent.len() < addrs.len());
        assert_eq!(sent[..], addrs[..sent.len()]);
    }

    #[test]
    fn oversized_length_prefix_is_refused_before_reading_the_body() {
        // 4097 as a varint: 0x81 0x20.
        let bytes = [0x81u8, 0x20];
        let err = block_on(read(&mut bytes.as_slice())).unwrap_err();
        assert!(matches!(err, MessageError::TooLarge(4097)), "{err}");
        let endless = [0xffu8; 4];
        let err = block_on(read(&mut endless.as_slice())).unwrap_err();
        assert!(matches!(err, MessageError::TooLarge(_)), "{err}");
    }

    #[test]
    fn truncated_and_garbage_messages_are_errors() {
        let err = block_on(read(&mut [5u8, 0x08].as_slice())).unwrap_err();
        assert!(matches!(err, MessageError::Io(_)), "{err}");
        // Field 1 announced, its value missing.
        let err = block_on(read(&mut [1u8, 0x08].as_slice())).unwrap_err();
        assert!(matches!(err, MessageError::Malformed(_)), "{err}");
        // prost does not enforce `required`: an empty message reads as the enum's first value,
        // an address-less CONNECT, which the handshake then refuses (`NoAddresses`).
        let empty = block_on(read(&mut [0u8].as_slice())).unwrap();
        assert_eq!(empty.r#type, Type::Connect as i32);
        assert!(empty.obs_addrs.is_empty());
    }

    #[test]
    fn offer_counts_unparsable_and_drops_relayed_for_dialing() {
        let direct = addr("/ip4/1.2.3.4/tcp/5");
        let relayed = addr("/ip4/5.6.7.8/tcp/1/p2p-circuit");
        let offer = Offer::parse(vec![direct.to_vec(), vec![0xff, 0xff], relayed.to_vec()]);
        assert_eq!(offer.addrs, vec![direct.clone(), relayed]);
        assert_eq!(offer.unparsable, 1);
        assert_eq!(offer.dialable(), vec![direct]);
    }

    #[test]
    fn type_check_names_both_types() {
        let err = expect_type(&HolePunch::sync(), Type::Connect).unwrap_err();
        assert_eq!(err.to_string(), "expected CONNECT, received SYNC");
        let odd = HolePunch {
            r#type: 7,
            obs_addrs: vec![],
        };
        let err = expect_type(&odd, Type::Sync).unwrap_err();
        assert_eq!(err.to_string(), "expected SYNC, received unknown type 7");
    }
}
