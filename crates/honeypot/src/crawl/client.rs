//! Opens outbound Kademlia streams to chosen peers for the walk, dialling them if needed.
//!
//! libp2p-kad has no "send FIND_NODE to this one peer" API, and libp2p-stream 0.5.0-alpha keeps
//! an entry per connection that it never removes and can lose dial requests made at the same
//! time, which a long-running honeypot cannot afford. This behaviour is the small piece the walk
//! needs: a [`StreamOpener`] asks for a stream to a peer with the addresses the walk learned; the
//! behaviour dials with exactly those addresses if there is no connection, and the connection's
//! handler negotiates the protocol and hands the stream back. Every per-peer entry is removed when
//! its dial resolves, and requests whose caller gave up are dropped.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{DeniedUpgrade, ReadyUpgrade};
use libp2p::core::Endpoint;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::handler::{ConnectionEvent, DialUpgradeError, FullyNegotiatedOutbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, DialError,
    FromSwarm, NetworkBehaviour, NotifyHandler, Stream, StreamUpgradeError, SubstreamProtocol,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};

/// Why no stream could be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No connection could be made.
    #[error("dial failed: {0}")]
    Dial(String),
    /// The peer does not speak the protocol.
    #[error("peer does not support the protocol")]
    Unsupported,
    /// Negotiating the protocol took too long.
    #[error("protocol negotiation timed out")]
    Timeout,
    /// The connection failed while negotiating.
    #[error("negotiation failed: {0}")]
    Io(std::io::Error),
    /// The swarm stopped.
    #[error("the honeypot is shutting down")]
    Closed,
}

type Reply = oneshot::Sender<Result<Stream, OpenError>>;

struct Request {
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    reply: Reply,
}

/// Asks the [`Behaviour`] for streams; cheap to clone.
#[derive(Debug, Clone)]
pub struct StreamOpener {
    requests: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("peer", &self.peer).finish()
    }
}

impl StreamOpener {
    /// Opens a stream to `peer`, dialling `addrs` if not connected. The caller bounds the wait.
    pub async fn open(&self, peer: PeerId, addrs: Vec<Multiaddr>) -> Result<Stream, OpenError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { peer, addrs, reply })
            .await
            .map_err(|_| OpenError::Closed)?;
        answer.await.unwrap_or(Err(OpenError::Closed))
    }
}

/// The network behaviour behind [`StreamOpener`].
pub struct Behaviour {
    protocol: StreamProtocol,
    negotiation_timeout: Duration,
    requests: mpsc::Receiver<Request>,
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    /// Requests waiting for a connection to their peer.
    waiting: HashMap<PeerId, Vec<Reply>>,
    queued: VecDeque<ToSwarm<Infallible, Reply>>,
}

impl Behaviour {
    /// A behaviour opening `protocol` streams, and the handle to ask it; `max_requests` bounds
    /// the requests in flight.
    pub fn new(
        protocol: StreamProtocol,
        negotiation_timeout: Duration,
        max_requests: usize,
    ) -> (Behaviour, StreamOpener) {
        let (sender, requests) = mpsc::channel(max_requests.max(1));
        let behaviour = Behaviour {
            protocol,
            negotiation_timeout,
            requests,
            connections: HashMap::new(),
            waiting: HashMap::new(),
            queued: VecDeque::new(),
        };
        (behaviour, StreamOpener { requests: sender })
    }

    /// Peers with an open connection (for tests of the pruning).
    pub fn tracked_peers(&self) -> usize {
        self.connections.len() + self.waiting.len()
    }

    fn send_to(&mut self, peer: PeerId, connection: ConnectionId, reply: Reply) {
        self.queued.push_back(ToSwarm::NotifyHandler {
            peer_id: peer,
            handler: NotifyHandler::One(connection),
            event: reply,
        });
    }

    fn handle(&mut self, request: Request) {
        self.waiting.retain(|_, replies| {
            replies.retain(|reply| !reply.is_closed());
            !replies.is_empty()
        });
        if let Some(&connection) = self.connections.get(&request.peer).and_then(|c| c.first()) {
            self.send_to(request.peer, connection, request.reply);
            return;
        }
        self.waiting
            .entry(request.peer)
            .or_default()
            .push(request.reply);
        self.queued.push_back(ToSwarm::Dial {
            opts: DialOpts::peer_id(request.peer)
                .addresses(request.addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build(),
        });
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(
            self.protocol.clone(),
            self.negotiation_timeout,
        ))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(
            self.protocol.clone(),
            self.negotiation_timeout,
        ))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(established) => {
                let peer = established.peer_id;
                self.connections
                    .entry(peer)
                    .or_default()
                    .push(established.connection_id);
                for reply in self.waiting.remove(&peer).unwrap_or_default() {
                    self.send_to(peer, established.connection_id, reply);
                }
            }
            FromSwarm::ConnectionClosed(closed) => {
                if let Some(connections) = self.connections.get_mut(&closed.peer_id) {
                    connections.retain(|c| *c != closed.connection_id);
                    if connections.is_empty() {
                        self.connections.remove(&closed.peer_id);
                    }
                }
            }
            FromSwarm::DialFailure(failure) => {
                // Another dial to the peer is under way; its outcome settles our requests.
                if matches!(failure.error, DialError::DialPeerConditionFalse(_)) {
                    return;
                }
                let Some(peer) = failure.peer_id else { return };
                if self.connections.contains_key(&peer) {
                    return;
                }
                let reason = match failure.error {
                    DialError::Denied { cause } => format!("refused by a local limit: {cause}"),
                    other => other.to_string(),
                };
                for reply in self.waiting.remove(&peer).unwrap_or_default() {
                    let _ = reply.send(Err(OpenError::Dial(reason.clone())));
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        while self.queued.is_empty() {
            match self.requests.poll_recv(cx) {
                Poll::Ready(Some(request)) => self.handle(request),
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        match self.queued.pop_front() {
            Some(event) => Poll::Ready(event),
            None => Poll::Pending,
        }
    }
}

/// Negotiates the outbound streams its behaviour asks for; accepts no inbound streams (the
/// Kademlia behaviour serves those).
pub struct Handler {
    protocol: StreamProtocol,
    timeout: Duration,
    pending: VecDeque<Reply>,
}

impl Handler {
    fn new(protocol: StreamProtocol, timeout: Duration) -> Handler {
        Handler {
            protocol,
            timeout,
            pending: VecDeque::new(),
        }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Reply;
    type ToBehaviour = Infallible;
    type InboundProtocol = DeniedUpgrade;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Reply;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(DeniedUpgrade, ())
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, Reply, Infallible>> {
        while let Some(reply) = self.pending.pop_front() {
            if reply.is_closed() {
                continue;
            }
            let protocol = SubstreamProtocol::new(ReadyUpgrade::new(self.protocol.clone()), reply)
                .with_timeout(self.timeout);
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest { protocol });
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, reply: Reply) {
        self.pending.push_back(reply);
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), Reply>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                info: reply,
            }) => {
                let _ = reply.send(Ok(stream));
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { info: reply, error }) => {
                let error = match error {
                    StreamUpgradeError::Timeout => OpenError::Timeout,
                    StreamUpgradeError::NegotiationFailed => OpenError::Unsupported,
                    StreamUpgradeError::Io(e) => OpenError::Io(e),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                let _ = reply.send(Err(error));
            }
            _ => {}
        }
    }
}
