//! Real libp2p peers on loopback for end-to-end tests: a circuit relay v2 server, and a NATed
//! style remote that is reachable only through that relay and runs the stock `libp2p-dcutr`,
//! as IPFS nodes behind NATs do.

use std::time::Duration;

use futures::StreamExt;
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
