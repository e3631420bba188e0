//! Real libp2p peers on loopback for end-to-end tests: a circuit relay v2 server, NATed style
//! remotes that are reachable only through that relay, and a [`Stranger`] that connects to a
//! peer and tells it lies. The well-behaved remote runs the stock `libp2p-dcutr`, as IPFS nodes
//! behind NATs do; the others ([`RemoteConduct`]) behave the way real peers do that make the
//! client report each outcome other than SUCCESS.

use std::collections::HashSet;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    identify, identity, noise, ping, relay, tcp, yamux, Multiaddr, PeerId, Stream, StreamProtocol,
    Swarm,
};
use tokio::task::JoinHandle;

/// A running peer; dropping it stops the peer.
#[derive(Debug)]
pub struct RunningPeer {
    /// The peer's ID.
    pub peer_id: PeerId,
    /// Where to reach it: the relay's TCP address, or the remote's circuit address.
    pub address: Multiaddr,
    task: JoinHandle<()>,
}

impl Drop for RunningPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(NetworkBehaviour)]
struct RelayServer {
    relay: relay::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// Starts a relay on 127.0.0.1 (TCP) and waits until it listens.
pub async fn spawn_relay() -> RunningPeer {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp transport")
        .with_behaviour(|key| RelayServer {
            relay: relay::Behaviour::new(key.public().to_peer_id(), relay::Config::default()),
            identify: identify::Behaviour::new(identify::Config::new(
                "/ipfs/0.1.0".into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
        })
        .expect("relay behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("valid"))
        .expect("listen");
    let address = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    // A relay is public: tell the relay behaviour its address so reservations carry it.
    swarm.add_external_address(address.clone());
    let peer_id = *swarm.local_peer_id();
    let task = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    RunningPeer {
        peer_id,
        address,
        task,
    }
}

/// How a remote behind the relay treats a client that reaches it through the relay. Each kind
/// is what a kind of real peer does, and makes the client report one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteConduct {
    /// Runs the stock `libp2p-dcutr`: opens `/libp2p/dcutr` and hole punches (SUCCESS).
    StockDcutr,
    /// Does not speak `/libp2p/dcutr`, so it never opens a DCUtR stream (NO_STREAM).
    WithoutDcutr,
    /// Does not speak `/libp2p/dcutr`, but dials the client directly at the listen addresses
    /// the client's identify names over the relayed connection, as go-libp2p's hole puncher
    /// does before it punches (CONNECTION_REVERSED when the dial gets through).
    DialsBack,
    /// Opens `/libp2p/dcutr` on the relayed connection and never writes to it: the client's
    /// exchange waits for a CONNECT that never comes (TIMEOUT).
    SilentStream,
    /// Opens `/libp2p/dcutr` on the relayed connection and sends a length-prefixed frame that
    /// is no `HolePunch` protobuf (PROTOCOL_ERROR).
    MalformedMessage,
}

/// The frame [`RemoteConduct::MalformedMessage`] sends: a length prefix of 3, then a protobuf
/// field key whose varint never ends.
pub const MALFORMED_DCUTR_FRAME: [u8; 4] = [3, 0xff, 0xff, 0xff];

const DCUTR: StreamProtocol = StreamProtocol::new("/libp2p/dcutr");

#[derive(NetworkBehaviour)]
struct NatedPeer {
    relay_client: relay::client::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    dcutr: Toggle<libp2p_dcutr::Behaviour>,
    /// Raw `/libp2p/dcutr` streams of the misbehaving conducts.
    streams: libp2p_stream::Behaviour,
}

/// Starts a remote that holds a reservation on `relay` and listens only through it, with the
/// stock DCUtR behaviour; returns once the reservation is accepted. Its address is the circuit
/// address through the relay.
pub async fn spawn_nated_remote(relay: &RunningPeer) -> RunningPeer {
    spawn_remote(relay, RemoteConduct::StockDcutr).await
}

/// Like [`spawn_nated_remote`], but the remote does not speak `/libp2p/dcutr`, so it never opens
/// a DCUtR stream (the client's NO_STREAM case).
pub async fn spawn_nated_remote_without_dcutr(relay: &RunningPeer) -> RunningPeer {
    spawn_remote(relay, RemoteConduct::WithoutDcutr).await
}

/// Starts a remote that holds a reservation on `relay`, listens only through it and treats the
/// clients that reach it as `conduct` says; returns once the reservation is accepted. Its
/// address is the circuit address through the relay.
pub async fn spawn_remote(relay: &RunningPeer, conduct: RemoteConduct) -> RunningPeer {
    let key = identity::Keypair::generate_ed25519();
    let with_dcutr = conduct == RemoteConduct::StockDcutr;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp transport")
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .expect("relay client")
        .with_behaviour(|key, relay_client| NatedPeer {
            relay_client,
            identify: identify::Behaviour::new(
                identify::Config::new("/ipfs/0.1.0".into(), key.public())
                    .with_agent_version("nated-remote/test".into()),
            ),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(1))),
            dcutr: Toggle::from(
                with_dcutr.then(|| libp2p_dcutr::Behaviour::new(key.public().to_peer_id())),
            ),
            streams: libp2p_stream::Behaviour::new(),
        })
        .expect("remote behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    // A direct listener for the hole punch; identify's observed address makes it a candidate.
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("valid"))
        .expect("listen");
    let circuit = relay
        .address
        .clone()
        .with(Protocol::P2p(relay.peer_id))
        .with(Protocol::P2pCircuit);
    swarm
        .listen_on(circuit.clone())
        .expect("listen on the relay");
    loop {
        if let SwarmEvent::Behaviour(NatedPeerEvent::RelayClient(
            relay::client::Event::ReservationReqAccepted { .. },
        )) = swarm.select_next_some().await
        {
            break;
        }
    }
    let peer_id = *swarm.local_peer_id();
    let task = tokio::spawn(RemoteTask::new(swarm, conduct).run());
    RunningPeer {
        peer_id,
        address: circuit,
        task,
    }
}

/// A remote's swarm, run as its conduct says.
struct RemoteTask {
    swarm: Swarm<NatedPeer>,
    conduct: RemoteConduct,
    relayed: HashSet<ConnectionId>,
    dialed_back: HashSet<PeerId>,
}

impl RemoteTask {
    fn new(swarm: Swarm<NatedPeer>, conduct: RemoteConduct) -> Self {
        RemoteTask {
            swarm,
            conduct,
            relayed: HashSet::new(),
            dialed_back: HashSet::new(),
        }
    }

    async fn run(mut self) {
        let control = self.swarm.behaviour().streams.new_control();
        let mut opening = FuturesUnordered::new();
        // Streams the remote opened stay open (and silent) until it is dropped.
        let mut held: Vec<Stream> = Vec::new();
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => {
                    if let Some(client) = self.on_event(event) {
                        opening.push(open_dcutr_stream(control.clone(), client, self.conduct));
                    }
                }
                Some(stream) = opening.next() => held.extend(stream),
            }
        }
    }

    /// Handles a swarm event; returns a client to open a raw `/libp2p/dcutr` stream to.
    fn on_event(&mut self, event: SwarmEvent<NatedPeerEvent>) -> Option<PeerId> {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } if endpoint.is_relayed() && endpoint.is_listener() => {
                self.relayed.insert(connection_id);
                matches!(
                    self.conduct,
                    RemoteConduct::SilentStream | RemoteConduct::MalformedMessage
                )
                .then_some(peer_id)
            }
            SwarmEvent::Behaviour(NatedPeerEvent::Identify(identify::Event::Received {
                peer_id,
                connection_id,
                info,
            })) if self.conduct == RemoteConduct::DialsBack
                && self.relayed.contains(&connection_id) =>
            {
                self.dial_back(peer_id, &info.listen_addrs);
                None
            }
            SwarmEvent::Behaviour(NatedPeerEvent::Dcutr(event)) => {
                tracing::info!(target: "punchr::test", ?event, "stock dcutr event");
                None
            }
            _ => None,
        }
    }

    /// Dials `client` once at its direct TCP listen addresses (this peer has no QUIC).
    fn dial_back(&mut self, client: PeerId, listen_addrs: &[Multiaddr]) {
        let direct: Vec<Multiaddr> = listen_addrs
            .iter()
            .filter(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
            .filter(|a| !a.iter().any(|p| matches!(p, Protocol::P2pCircuit)))
            .cloned()
            .collect();
        if direct.is_empty() || !self.dialed_back.insert(client) {
            return;
        }
        let opts = DialOpts::peer_id(client)
            .addresses(direct)
            .condition(PeerCondition::Always)
            .build();
        if let Err(error) = self.swarm.dial(opts) {
            tracing::warn!(target: "punchr::test", %client, %error, "dialing back failed");
        }
    }
}

/// Opens `/libp2p/dcutr` to `client` (over the relayed connection, the only one) and writes
/// what `conduct` sends: nothing, or [`MALFORMED_DCUTR_FRAME`]. Returns the stream to keep open.
async fn open_dcutr_stream(
    mut control: libp2p_stream::Control,
    client: PeerId,
    conduct: RemoteConduct,
) -> Option<Stream> {
    let mut stream = match control.open_stream(client, DCUTR).await {
        Ok(stream) => stream,
        Err(error) => {
            tracing::warn!(target: "punchr::test", %client, %error, "opening /libp2p/dcutr failed");
            return None;
        }
    };
    if conduct == RemoteConduct::MalformedMessage {
        let written = stream.write_all(&MALFORMED_DCUTR_FRAME).await;
        if let Err(error) = written.and(stream.flush().await) {
            tracing::warn!(target: "punchr::test", %client, %error, "writing the malformed frame failed");
        }
    }
    Some(stream)
}

#[derive(NetworkBehaviour)]
struct StrangerBehaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    streams: libp2p_stream::Behaviour,
}

/// A peer that connected to another on its own and keeps the connection until dropped. It
/// answers identify as stock rust-libp2p does, and pushes identify messages of its own making,
/// as a hostile peer can: [`Stranger::claim_observed`].
pub struct Stranger {
    /// The stranger's ID.
    pub peer_id: PeerId,
    target: PeerId,
    streams: libp2p_stream::Control,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Stranger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stranger")
            .field("peer_id", &self.peer_id)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The protocol of identify pushes.
const IDENTIFY_PUSH: libp2p::StreamProtocol = libp2p::StreamProtocol::new("/ipfs/id/push/1.0.0");

/// Appends `value` as an unsigned varint (protobuf and libp2p length prefixes).
fn put_varint(buffer: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        buffer.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buffer.push(value as u8);
}

/// A length-prefixed identify message holding only `observedAddr` (field 4).
fn identify_claiming(observed: &Multiaddr) -> Vec<u8> {
    let address = observed.to_vec();
    let mut message = vec![(4 << 3) | 2];
    put_varint(&mut message, address.len());
    message.extend_from_slice(&address);
    let mut framed = Vec::new();
    put_varint(&mut framed, message.len());
    framed.extend_from_slice(&message);
    framed
}

impl Stranger {
    /// Dials `target` (with `/p2p/<peer ID>`) from 127.0.0.1 and returns once both sides have
    /// identified each other.
    pub async fn connect(target: Multiaddr) -> Stranger {
        let Some(Protocol::P2p(target_peer)) = target.iter().last() else {
            panic!("{target} does not end in /p2p/<peer ID>");
        };
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("tcp transport")
            .with_behaviour(|key| StrangerBehaviour {
                identify: identify::Behaviour::new(
                    identify::Config::new("/ipfs/0.1.0".into(), key.public())
                        .with_agent_version("stranger/test".into()),
                ),
                ping: ping::Behaviour::default(),
                streams: libp2p_stream::Behaviour::new(),
            })
            .expect("stranger behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
            .build();
        swarm.dial(target.clone()).expect("dial the target");
        let (mut sent, mut received) = (false, false);
        while !(sent && received) {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(StrangerBehaviourEvent::Identify(event)) => match event {
                    identify::Event::Sent { peer_id, .. } if peer_id == target_peer => sent = true,
                    identify::Event::Received { peer_id, .. } if peer_id == target_peer => {
                        received = true
                    }
                    _ => {}
                },
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    panic!("the stranger cannot reach {target}: {error}")
                }
                _ => {}
            }
        }
        let peer_id = *swarm.local_peer_id();
        let streams = swarm.behaviour().streams.new_control();
        let task = tokio::spawn(async move {
            loop {
                swarm.select_next_some().await;
            }
        });
        Stranger {
            peer_id,
            target: target_peer,
            streams,
            task,
        }
    }

    /// Pushes an identify message saying the target was observed at `observed`, and returns
    /// once the target has read it and let go of the stream.
    pub async fn claim_observed(&mut self, observed: &Multiaddr) {
        let mut stream = self
            .streams
            .open_stream(self.target, IDENTIFY_PUSH)
            .await
            .expect("open an identify push stream");
        stream
            .write_all(&identify_claiming(observed))
            .await
            .expect("write the push");
        stream.close().await.expect("close our side");
        let mut rest = Vec::new();
        // The target reads one message and drops the stream: end of stream (or a reset).
        let _ = stream.read_to_end(&mut rest).await;
    }
}
