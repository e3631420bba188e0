//! The part of the Kademlia wire protocol the walk speaks: FIND_NODE requests and their answers.
//!
//! Messages are the `Message` of the libp2p Kademlia spec (`kad-dht/README.md`, proto3), each
//! sent as an unsigned-varint length followed by the protobuf bytes. Only the fields a FIND_NODE
//! exchange uses are declared; prost skips the rest. libp2p-kad keeps its own types private,
//! hence this copy.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{Multiaddr, PeerId};
use prost::Message as _;

/// `Message.MessageType.FIND_NODE`.
const FIND_NODE: i32 = 4;

/// Largest answer accepted. libp2p-kad sends at most 16 KiB, go-libp2p-kad-dht more when peers
/// carry many addresses; 20 peers never need more than this.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// Peers taken from one answer (a server should send 20).
const MAX_PEERS_PER_ANSWER: usize = 64;

/// Addresses kept per peer of an answer.
const MAX_ADDRS_PER_PEER: usize = 16;

/// The Kademlia `Message`, reduced to what FIND_NODE needs.
#[derive(Clone, PartialEq, prost::Message)]
struct Message {
    #[prost(int32, tag = "1")]
    r#type: i32,
    #[prost(bytes = "vec", tag = "2")]
    key: Vec<u8>,
    #[prost(message, repeated, tag = "8")]
    closer_peers: Vec<WirePeer>,
}

/// `Message.Peer`.
#[derive(Clone, PartialEq, prost::Message)]
struct WirePeer {
    #[prost(bytes = "vec", tag = "1")]
    id: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    addrs: Vec<Vec<u8>>,
}

/// A peer named in an answer, with the addresses that parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPeer {
    /// The peer.
    pub peer_id: PeerId,
    /// Its addresses.
    pub addrs: Vec<Multiaddr>,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The stream broke.
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
    /// The answer was longer than [`MAX_MESSAGE_BYTES`].
    #[error("answer of {0} bytes is too long")]
    TooLong(u64),
    /// The answer was not a Kademlia message.
    #[error("undecodable answer: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The answer was of another type.
    #[error("answer of type {0} to FIND_NODE")]
    UnexpectedType(i32),
}

/// Sends FIND_NODE(key) and reads the answer's closer peers. Peers with an undecodable ID are
/// dropped, and so are addresses that do not parse.
pub async fn find_node<S>(stream: &mut S, key: Vec<u8>) -> Result<Vec<FoundPeer>, WireError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = Message {
        r#type: FIND_NODE,
        key,
        closer_peers: Vec::new(),
    };
    write_frame(stream, &request.encode_to_vec()).await?;
    let answer = Message::decode(read_frame(stream).await?.as_slice())?;
    if answer.r#type != FIND_NODE {
        return Err(WireError::UnexpectedType(answer.r#type));
    }
    Ok(answer
        .closer_peers
        .into_iter()
        .take(MAX_PEERS_PER_ANSWER)
        .filter_map(|peer| {
            let peer_id = PeerId::from_bytes(&peer.id).ok()?;
            let addrs = peer
                .addrs
                .into_iter()
                .filter_map(|bytes| Multiaddr::try_from(bytes).ok())
                .take(MAX_ADDRS_PER_PEER)
                .collect();
            Some(FoundPeer { peer_id, addrs })
        })
        .collect())
}

async fn write_frame<S: AsyncWrite + Unpin>(stream: &mut S, payload: &[u8]) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(payload.len() + 5);
    let mut length = payload.len() as u64;
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            frame.push(byte);
            break;
        }
        frame.push(byte | 0x80);
    }
    frame.extend_from_slice(payload);
    stream.write_all(&frame).await?;
    stream.flush().await
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, WireError> {
    let mut length = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8];
        stream.read_exact(&mut byte).await?;
        length |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            break;
        }
        if shift >= 56 {
            return Err(WireError::TooLong(u64::MAX));
        }
    }
    if length > MAX_MESSAGE_BYTES as u64 {
        return Err(WireError::TooLong(length));
    }
    let mut payload = vec![0u8; length as usize];
    stream.read_exact(&mut payload).await?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;

    use super::*;

    fn answer(peers: Vec<WirePeer>) -> Vec<u8> {
        let message = Message {
            r#type: FIND_NODE,
            key: Vec::new(),
            closer_peers: peers,
        };
        let mut frame = Vec::new();
        futures::executor::block_on(write_frame(&mut frame, &message.encode_to_vec())).unwrap();
        frame
    }

    /// A stream that reads a canned answer and records what was written.
    struct Canned {
        read: Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl AsyncRead for Canned {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::pin::Pin::new(&mut self.read).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Canned {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.written.extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn requests_are_length_prefixed_find_node_messages() {
        let mut stream = Canned {
            read: Cursor::new(answer(Vec::new())),
            written: Vec::new(),
        };
        futures::executor::block_on(find_node(&mut stream, vec![0xaa; 3])).unwrap();
        // length 7, field 1 (varint) = 4, field 2 (bytes) = aa aa aa
        assert_eq!(
            stream.written,
            vec![7, 0x08, 0x04, 0x12, 0x03, 0xaa, 0xaa, 0xaa]
        );
    }

    #[test]
    fn answers_keep_valid_peers_and_addresses() {
        let good = PeerId::random();
        let addr: Multiaddr = "/ip4/198.18.0.1/tcp/4001".parse().unwrap();
        let peers = vec![
            WirePeer {
                id: good.to_bytes(),
                addrs: vec![addr.to_vec(), vec![0xff, 0xff]],
            },
            WirePeer {
                id: vec![1, 2, 3],
                addrs: Vec::new(),
            },
        ];
        let mut stream = Canned {
            read: Cursor::new(answer(peers)),
            written: Vec::new(),
        };
        let found = futures::executor::block_on(find_node(&mut stream, vec![1])).unwrap();
        assert_eq!(
            found,
            vec![FoundPeer {
                peer_id: good,
                addrs: vec![addr]
            }]
        );
    }

    #[test]
    fn oversized_answers_are_refused_before_allocation() {
        let mut frame = Vec::new();
        futures::executor::block_on(write_frame(&mut frame, &[])).unwrap();
        let mut huge = vec![0x80, 0x80, 0x80, 0x80, 0x01]; // 2^28 bytes announced
        huge.extend(frame);
        let mut stream = Canned {
            read: Cursor::new(huge),
            written: Vec::new(),
        };
        let err = futures::executor::block_on(find_node(&mut stream, vec![1])).unwrap_err();
        assert!(matches!(err, WireError::TooLong(268_435_456)), "{err}");
    }
}
