//! A circuit relay v2 server (with identify and ping), like the public relays NATed IPFS nodes
//! hold reservations on. Limits are raised and rate limits removed: in the lab every client's
//! punches share one relay.

use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{noise, ping, relay, tcp, yamux, SwarmBuilder};

use super::{identify, identity, listen_addrs, peer_error, RelayArgs};
use crate::error::Result;
use punchr_types::log_target::LAB;

#[derive(NetworkBehaviour)]
struct Behaviour {
    relay: relay::Behaviour,
    identify: libp2p::identify::Behaviour,
    ping: ping::Behaviour,
}

/// Serves relay reservations and circuits until stopped.
pub async fn run(args: RelayArgs) -> Result<()> {
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
            let config = relay::Config {
                max_reservations: 1024,
                max_reservations_per_peer: 8,
                max_circuits: 1024,
                max_circuits_per_peer: 64,
                max_circuit_duration: Duration::from_secs(600),
                reservation_rate_limiters: Vec::new(),
                circuit_src_rate_limiters: Vec::new(),
                ..relay::Config::default()
            };
            Behaviour {
                relay: relay::Behaviour::new(key.public().to_peer_id(), config),
                identify: identify(key, "punchr-lab-relay"),
                ping: ping::Behaviour::default(),
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
    tracing::info!(target: LAB, event = "relay_running", peer_id = %swarm.local_peer_id(), "relay running");
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(target: LAB, event = "listening", %address, "listening")
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => {
                tracing::info!(target: LAB, event = "relay", detail = ?event, "relay")
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                tracing::debug!(target: LAB, event = "connected", %peer_id, address = %endpoint.get_remote_address(), "connected")
            }
            _ => {}
        }
    }
}
