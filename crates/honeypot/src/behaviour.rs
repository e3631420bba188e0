//! The honeypot's libp2p host: transports, protocols and limits.

use std::num::NonZeroUsize;

use libp2p::identity::Keypair;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    identify, kad, memory_connection_limits, noise, ping, tcp, yamux, StreamProtocol, Swarm,
    SwarmBuilder,
};

use crate::config::HoneypotConfig;
use crate::crawl::client::{self, StreamOpener};
use crate::{keep_alive, limits, HoneypotError, AGENT_VERSION};

/// The identify protocol version IPFS nodes announce.
pub(crate) const PROTOCOL_VERSION: &str = "ipfs/0.1.0";

/// Everything the honeypot speaks. The limits come first so that a refused connection gets no
/// handler from the others.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Connection counts.
    pub(crate) limits: limits::Behaviour,
    /// Process memory.
    pub(crate) memory: Toggle<memory_connection_limits::Behaviour>,
    /// Who the peers are; the source of every decision about inbound connections.
    pub(crate) identify: identify::Behaviour,
    /// The DHT server others query and add to their tables.
    pub(crate) kad: kad::Behaviour<MemoryStore>,
    /// Liveness of kept connections.
    pub(crate) ping: ping::Behaviour,
    /// Streams for the walk.
    pub(crate) crawl: client::Behaviour,
    /// Keeps recorded peers' connections open.
    pub(crate) keep_alive: keep_alive::Behaviour,
}

/// The protocols the honeypot announces, for its own row in the database.
pub(crate) fn local_protocols(kad_protocol: &StreamProtocol) -> Vec<String> {
    vec![
        kad_protocol.to_string(),
        "/ipfs/id/1.0.0".to_string(),
        "/ipfs/id/push/1.0.0".to_string(),
        "/ipfs/ping/1.0.0".to_string(),
    ]
}

fn behaviour(
    key: &Keypair,
    config: &HoneypotConfig,
    kad_protocol: StreamProtocol,
    crawl: client::Behaviour,
) -> Behaviour {
    let peer_id = key.public().to_peer_id();
    let limits = limits::Limits {
        pending_incoming: config.max_pending as usize,
        pending_outgoing: config.max_pending as usize,
        established_incoming: config.max_incoming as usize,
        established_outgoing: config.max_outgoing as usize,
        per_peer: config.max_per_peer as usize,
    };
    let memory = (config.max_memory_mb > 0).then(|| {
        memory_connection_limits::Behaviour::with_max_bytes(
            config.max_memory_mb.saturating_mul(1024 * 1024),
        )
    });
    // No address cache: the honeypot never dials peers it learned through identify, and the
    // cache would hold the addresses of the last 100 peers for nothing.
    let identify = identify::Behaviour::new(
        identify::Config::new(PROTOCOL_VERSION.to_string(), key.public())
            .with_agent_version(AGENT_VERSION.to_string())
            .with_push_listen_addr_updates(true)
            .with_cache_size(0),
    );
    // Records and provider records that others store on us: bounded well below the defaults
    // (1024 records of up to 65 KiB), since serving them is not what the honeypot is for.
    let store = MemoryStore::with_config(
        peer_id,
        MemoryStoreConfig {
            max_records: 256,
            max_value_bytes: 16 * 1024,
            max_providers_per_key: 20,
            max_provided_keys: 16,
        },
    );
    let mut kad_config = kad::Config::new(kad_protocol);
    kad_config.set_kbucket_size(NonZeroUsize::new(20).expect("20 is not zero"));
    let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
    kad.set_mode(Some(kad::Mode::Server));
    Behaviour {
        limits: limits::Behaviour::new(limits),
        memory: Toggle::from(memory),
        identify,
        kad,
        ping: ping::Behaviour::default(),
        crawl,
        keep_alive: keep_alive::Behaviour::default(),
    }
}

/// Builds the swarm (TCP and QUIC, DNS for `/dnsaddr` bootstrap peers) and the handle the walk
/// opens streams with.
pub(crate) fn build_swarm(
    keypair: Keypair,
    config: &HoneypotConfig,
) -> Result<(Swarm<Behaviour>, StreamOpener), HoneypotError> {
    let kad_protocol = config.kad_protocol()?;
    let (crawl, opener) = client::Behaviour::new(
        kad_protocol.clone(),
        config.crawl_timeout,
        config.crawler_count * 4,
    );
    let transport = |e: &dyn std::fmt::Display| HoneypotError::Transport(e.to_string());
    let swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| transport(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| transport(&e))?
        .with_behaviour(|key| behaviour(key, config, kad_protocol, crawl))
        .map_err(|e| transport(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    Ok((swarm, opener))
}
