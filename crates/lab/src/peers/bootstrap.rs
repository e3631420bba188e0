//! A Kademlia DHT server (forced server mode) that others bootstrap from. Peers that identify as
//! DHT servers are added to its routing table with their listen addresses, as rust-libp2p's own
//! bootstrap server does, so lookups lead clients to every server, the honeypot included.
//!
//! Like the field's DHT servers (kubo's serve AutoNAT v2 by default), it is an AutoNAT v2
//! server, so a go-libp2p remote that runs the AutoNAT v2 client (kubo does, as go-libp2p v0.42
//! and later can) learns that the address its NAT maps for it is unreachable, as it would in the
//! field. The server dials back from a fresh port (rust-libp2p's `allocate_new_port`), so a NAT
//! that filters by endpoint refuses the dial back as it refuses a stranger. Measured with kubo
//! behind a port-restricted NAT: its QUIC address was found unreachable within 15 s of start;
//! its TCP probes all failed on kubo's side with no request reaching these servers' handlers,
//! so kubo keeps announcing its mapped TCP address as "unknown" (the honeypot records it all
//! the same, see `punchr_honeypot::address`).

use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{autonat, identify, kad, noise, ping, tcp, yamux, Swarm, SwarmBuilder};

use super::{
    identify as identify_behaviour, identity, listen_addrs, peer_error, split_peer, BootstrapArgs,
};
use crate::error::Result;
use punchr_types::log_target::LAB;

#[derive(NetworkBehaviour)]
struct Behaviour {
    kad: kad::Behaviour<kad::store::MemoryStore>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    autonat: autonat::v2::server::Behaviour,
}

/// Serves the DHT until stopped.
pub async fn run(args: BootstrapArgs) -> Result<()> {
    let key = identity(&args.seed);
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| peer_error(e.to_string()))?
        .with_quic()
        .with_behaviour(|key| {
            let id = key.public().to_peer_id();
            let mut kad = kad::Behaviour::with_config(
                id,
                kad::store::MemoryStore::new(id),
                kad::Config::new(kad::PROTOCOL_NAME),
            );
            kad.set_mode(Some(kad::Mode::Server));
            Behaviour {
                kad,
                identify: identify_behaviour(key, "punchr-lab-bootstrap"),
                ping: ping::Behaviour::default(),
                autonat: autonat::v2::server::Behaviour::default(),
            }
        })
        .map_err(|e| peer_error(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    for addr in listen_addrs(args.listen_ip, args.port) {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| peer_error(format!("listening on {addr}: {e}")))?;
        swarm.add_external_address(addr);
    }
    for addr in &args.bootstrap {
        let (peer, transport) = split_peer(addr)?;
        swarm.behaviour_mut().kad.add_address(&peer, transport);
    }
    tracing::info!(target: LAB, event = "bootstrap_running", peer_id = %swarm.local_peer_id(), "bootstrap server running");
    let mut refresh = tokio::time::interval(args.refresh);
    loop {
        tokio::select! {
            _ = refresh.tick() => {
                // Fails only while the routing table is empty, which is normal for the first node.
                let _ = swarm.behaviour_mut().kad.bootstrap();
            }
            event = swarm.select_next_some() => on_event(&mut swarm, event),
        }
    }
}

fn on_event(swarm: &mut Swarm<Behaviour>, event: SwarmEvent<BehaviourEvent>) {
    match event {
        SwarmEvent::NewListenAddr { address, .. } => {
            tracing::info!(target: LAB, event = "listening", %address, "listening")
        }
        SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
            peer_id,
            info,
            ..
        })) if info.protocols.contains(&kad::PROTOCOL_NAME) => {
            for addr in info.listen_addrs {
                swarm.behaviour_mut().kad.add_address(&peer_id, addr);
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
            peer,
            is_new_peer: true,
            ..
        })) => {
            tracing::info!(target: LAB, event = "dht_server_added", %peer, "new DHT server in the routing table")
        }
        SwarmEvent::Behaviour(BehaviourEvent::Autonat(event)) => tracing::info!(
            target: LAB,
            event = "autonat_dial_back",
            client = %event.client,
            tested_addr = %event.tested_addr,
            // Whether the exchange finished; the dial back's own verdict goes only to the
            // client (libp2p-autonat's event does not carry it).
            answered = event.result.is_ok(),
            "tested an address for a client"
        ),
        _ => {}
    }
}
