//! Real libp2p peers on loopback for end-to-end tests: a circuit relay v2 server, a NATed
//! style remote that is reachable only through that relay and runs the stock `libp2p-dcutr`,
//! as IPFS nodes behind NATs do, and a [`Stranger`] that connects to a peer and tells it lies.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, identity, noise, ping, relay, tcp, yamux, Multiaddr, PeerId};
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

#[derive(NetworkBehaviour)]
struct NatedPeer {
    relay_client: relay::client::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    dcutr: Toggle<libp2p_dcutr::Behaviour>,
}

/// Starts a remote that holds a reservation on `relay` and listens only through it, with the
/// stock DCUtR behaviour; returns once the reservation is accepted. Its address is the circuit
/// address through the relay.
pub async fn spawn_nated_remote(relay: &RunningPeer) -> RunningPeer {
    spawn_remote(relay, true).await
}

/// Like [`spawn_nated_remote`], but the remote does not speak `/libp2p/dcutr`, so it never opens
/// a DCUtR stream (the client's NO_STREAM case).
pub async fn spawn_nated_remote_without_dcutr(relay: &RunningPeer) -> RunningPeer {
    spawn_remote(relay, false).await
}

async fn spawn_remote(relay: &RunningPeer, with_dcutr: bool) -> RunningPeer {
    let key = identity::Keypair::generate_ed25519();
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
    let task = tokio::spawn(async move {
        loop {
            let event = swarm.select_next_some().await;
            if let SwarmEvent::Behaviour(NatedPeerEvent::Dcutr(event)) = event {
                tracing::info!(target: "punchr::test", ?event, "stock dcutr event");
            }
        }
    });
    RunningPeer {
        peer_id,
        address: circuit,
        task,
    }
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
