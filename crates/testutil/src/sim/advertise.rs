//! Accepts streams of one protocol on direct connections without speaking it, so identify
//! announces the protocol: to make simulated NATed peers announce `/libp2p/dcutr` the way
//! go-libp2p nodes do, and to make a peer that accepts identify requests but never answers.
//!
//! go-libp2p (kubo, the bulk of the IPFS DHT) lists every protocol its host speaks in identify,
//! on every connection. rust-libp2p lists only the protocols of the handlers of *that*
//! connection, and libp2p-dcutr installs its handler on relayed connections only
//! (`libp2p-dcutr` 0.15 `behaviour.rs`), so a stock rust NATed node that reaches the honeypot
//! directly does not mention DCUtR and is not recorded. Simulated NATed peers model kubo: this
//! behaviour adds `/libp2p/dcutr` to the protocols of their direct connections. Those streams
//! never come (DCUtR only runs over relayed connections) and are dropped if they do.

use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{DeniedUpgrade, ReadyUpgrade};
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::handler::ConnectionEvent;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, StreamProtocol};

fn relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// The behaviour.
#[derive(Debug)]
pub(crate) struct Behaviour {
    protocol: StreamProtocol,
    hold: bool,
}

impl Behaviour {
    /// Accepts `protocol`; drops the streams, or holds them unanswered while the connection
    /// lives when `hold`.
    pub(crate) fn new(protocol: StreamProtocol, hold: bool) -> Behaviour {
        Behaviour { protocol, hold }
    }

    fn handler(&self, relayed: bool) -> Either {
        if relayed {
            Either::Right(dummy::ConnectionHandler)
        } else {
            Either::Left(Handler {
                protocol: self.protocol.clone(),
                hold: self.hold,
                held: Vec::new(),
            })
        }
    }
}

type Either = either::Either<Handler, dummy::ConnectionHandler>;

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Either;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        local_addr: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(relayed(local_addr)))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(relayed(addr)))
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            either::Either::Left(never) | either::Either::Right(never) => match never {},
        }
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// Accepts the streams, so identify lists the protocol.
pub(crate) struct Handler {
    protocol: StreamProtocol,
    hold: bool,
    held: Vec<libp2p::Stream>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("protocol", &self.protocol)
            .field("held", &self.held.len())
            .finish()
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Infallible;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(self.protocol.clone()), ())
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, Infallible, Infallible>> {
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), Infallible>,
    ) {
        if let ConnectionEvent::FullyNegotiatedInbound(inbound) = event {
            if self.hold && self.held.len() < 8 {
                self.held.push(inbound.protocol);
            }
        }
    }
}
