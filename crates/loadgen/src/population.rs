//! The NATed remote peers the server hands out, recorded as the honeypot records them: through
//! [`Store::record_connection_event`], one event per inbound connection, with the peer's agent,
//! protocols (`/libp2p/dcutr` among them) and advertised addresses (relay circuits plus the
//! private ones a NATed node lists).

use std::sync::Arc;
use std::time::Duration;

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use punchr_store::{now_unix_nanos, ConnectionEventRecord, PeerInfo, Store, StoreError};
use punchr_testutil::fixtures::{peer_id, quic_relay_address, relay_address};
use rand::Rng;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::punch::direct_addresses;

/// Agent versions of the remotes, in roughly the field's proportions (kubo dominates).
const AGENTS: [&str; 5] = [
    "kubo/0.25.0/",
    "kubo/0.24.0/",
    "kubo/0.29.0/",
    "go-ipfs/0.18.1/",
    "rust-libp2p-server/0.12.3",
];

/// Relays the population's circuit addresses go through.
const RELAYS: u8 = 8;

/// Connection events written at once while seeding.
const SEED_WRITERS: usize = 4;

/// The remote peers of one soak run and the honeypot that saw them.
#[derive(Debug)]
pub(crate) struct Population {
    remotes: Vec<PeerId>,
    honeypot: PeerInfo,
}

impl Population {
    /// `count` new remotes.
    pub(crate) fn new(count: usize) -> Population {
        Population {
            remotes: (0..count).map(|_| peer_id()).collect(),
            honeypot: PeerInfo {
                peer_id: peer_id().to_base58(),
                agent_version: Some("punchr/honeypot/0.1.0".into()),
                protocols: vec!["/ipfs/id/1.0.0".into(), "/ipfs/kad/1.0.0".into()],
            },
        }
    }

    /// How many remotes there are.
    pub(crate) fn len(&self) -> usize {
        self.remotes.len()
    }

    /// The event of remote `index` connecting to the honeypot at `opened_at` (Unix ns). Each
    /// remote keeps its relays, agent and addresses across its events.
    fn connection_event(&self, index: usize, opened_at: i64) -> ConnectionEventRecord {
        let peer = &self.remotes[index];
        let first_relay = (index % usize::from(RELAYS)) as u8;
        let second_relay = (first_relay + 1 + (index / 8 % 7) as u8) % RELAYS;
        let mut advertised = vec![
            relay_address(first_relay, peer),
            relay_address(second_relay, peer),
        ];
        // Most remotes also hold a QUIC reservation.
        if index % 5 < 3 {
            advertised.push(quic_relay_address(first_relay, peer));
        }
        advertised.extend(
            [
                format!("/ip4/192.168.{}.{}/tcp/4001", index % 200, index % 250 + 2),
                format!(
                    "/ip4/192.168.{}.{}/udp/4001/quic-v1",
                    index % 200,
                    index % 250 + 2
                ),
                "/ip4/127.0.0.1/tcp/4001".to_owned(),
                "/ip6/::1/tcp/4001".to_owned(),
            ]
            .iter()
            .map(|text| text.parse::<Multiaddr>().expect("valid address")),
        );
        let mut protocols: Vec<String> = [
            "/ipfs/bitswap/1.2.0",
            "/ipfs/id/1.0.0",
            "/ipfs/id/push/1.0.0",
            "/ipfs/kad/1.0.0",
            "/ipfs/ping/1.0.0",
            "/libp2p/circuit/relay/0.2.0/stop",
            "/libp2p/dcutr",
        ]
        .map(String::from)
        .to_vec();
        protocols.sort();
        ConnectionEventRecord {
            local: self.honeypot.clone(),
            remote: PeerInfo {
                peer_id: peer.to_base58(),
                agent_version: Some(AGENTS[index % AGENTS.len()].to_owned()),
                protocols,
            },
            // The remote dialled out through its NAT: the honeypot sees its public address.
            connection_address: direct_addresses(peer)[0].clone(),
            advertised_addresses: advertised,
            opened_at,
        }
    }

    /// Records one connection of every remote, at random times within the last `spread`, so
    /// that the population is fresh but not all equally so.
    pub(crate) async fn seed(
        self: &Arc<Self>,
        store: &Store,
        spread: Duration,
    ) -> Result<(), StoreError> {
        let now = now_unix_nanos();
        let spread_ns = i64::try_from(spread.as_nanos()).unwrap_or(i64::MAX).max(1);
        let mut writers = JoinSet::new();
        for writer in 0..SEED_WRITERS {
            let (population, store) = (self.clone(), store.clone());
            writers.spawn(async move {
                for index in (writer..population.len()).step_by(SEED_WRITERS) {
                    let opened_at = now - rand::thread_rng().gen_range(0..spread_ns);
                    store
                        .record_connection_event(&population.connection_event(index, opened_at))
                        .await?;
                }
                Ok::<(), StoreError>(())
            });
        }
        while let Some(written) = writers.join_next().await {
            written.expect("a seeding task panicked")?;
        }
        Ok(())
    }

    /// The honeypot at work during the run: every remote connects again once per `period`, in
    /// a fixed round, so that none drops out of the server's freshness window. Ends when `stop`
    /// turns true; returns how many events it wrote.
    pub(crate) fn spawn_honeypot(
        self: &Arc<Self>,
        store: Store,
        period: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<Result<u64, StoreError>> {
        let population = self.clone();
        let pause = period / u32::try_from(population.len().max(1)).unwrap_or(u32::MAX);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(pause);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut written = 0;
            for index in (0..population.len()).cycle() {
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => break,
                    _ = ticks.tick() => {}
                }
                store
                    .record_connection_event(&population.connection_event(index, now_unix_nanos()))
                    .await?;
                written += 1;
            }
            Ok(written)
        })
    }
}
