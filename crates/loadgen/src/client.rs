//! One simulated volunteer: its own API key, its own HTTP/2 connection, one or two libp2p host
//! identities, and the real client's loop (`punchr-original.md` §7.2): register every host once,
//! then round-robin over the hosts: GetAddrInfo, punch (simulated), TrackHolePunch, pause.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use punchr_proto as pb;
use punchr_proto::punchr_service_client::PunchrServiceClient;
use punchr_testutil::fixtures::peer_id;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use crate::punch::{self, Reporter};
use crate::stats::{Recorder, Rpc};
use punchr_types::log_target::LOADGEN;

/// The agent the simulated hosts announce.
const CLIENT_AGENT: &str = "punchr/go-client/0.8.0";

/// What every client shares: where the server is, the recorder, and the stop signal.
#[derive(Debug)]
pub(crate) struct Fleet {
    pub(crate) server: SocketAddr,
    pub(crate) recorder: Recorder,
    pub(crate) think: Duration,
    /// TrackHolePunch requests the server accepted, by outcome name.
    pub(crate) sent: Mutex<BTreeMap<String, u64>>,
}

/// One simulated client.
#[derive(Debug)]
pub(crate) struct SimClient {
    api_key: String,
    hosts: Vec<Host>,
    nat_mappings: Vec<pb::NatMapping>,
    rng: StdRng,
}

#[derive(Debug)]
struct Host {
    peer: PeerId,
    listen_addresses: Vec<Multiaddr>,
    registered: bool,
    reported: bool,
}

impl SimClient {
    /// Client number `index` holding `api_key`, with one or two hosts.
    pub(crate) fn new(index: usize, api_key: String) -> SimClient {
        let mut rng = StdRng::from_entropy();
        let public = format!("198.51.{}.{}", index / 250 % 256, index % 250 + 1);
        let hosts = (0..rng.gen_range(1..=2))
            .map(|n| Host {
                peer: peer_id(),
                listen_addresses: [
                    format!("/ip4/192.168.1.{}/tcp/{}", 10 + n, 4001 + n),
                    format!("/ip4/192.168.1.{}/udp/{}/quic-v1", 10 + n, 4001 + n),
                    format!("/ip4/{public}/tcp/{}", 4001 + n),
                    format!("/ip4/{public}/udp/{}/quic-v1", 4001 + n),
                ]
                .iter()
                .map(|text| text.parse().expect("valid address"))
                .collect(),
                registered: false,
                reported: false,
            })
            .collect();
        // About a third of home routers grant UPnP mappings.
        let nat_mappings = if index.is_multiple_of(3) {
            ["tcp", "udp"]
                .iter()
                .map(|protocol| pb::NatMapping {
                    internal_port: 4001,
                    external_port: 4001,
                    protocol: (*protocol).into(),
                    addr: public.clone(),
                    addr_network: "ip4".into(),
                })
                .collect()
        } else {
            Vec::new()
        };
        SimClient {
            api_key,
            hosts,
            nat_mappings,
            rng,
        }
    }

    /// How many host identities it runs.
    pub(crate) fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Connects and runs the loop until `stop` turns true; the call in flight then completes, so
    /// every result sent has its answer.
    pub(crate) async fn run(mut self, fleet: Arc<Fleet>, mut stop: watch::Receiver<bool>) {
        let channel = match connect(fleet.server).await {
            Ok(channel) => channel,
            Err(error) => {
                tracing::error!(target: LOADGEN, event = "connect_failed", %error, "cannot connect");
                fleet
                    .recorder
                    .record(Rpc::Register, Duration::ZERO, Some("ConnectFailed"));
                return;
            }
        };
        let mut grpc = PunchrServiceClient::new(channel);
        let mut turn = 0;
        while !*stop.borrow() {
            if let Some(host) = self.hosts.iter().position(|host| !host.registered) {
                self.register(&mut grpc, &fleet, host).await;
            } else {
                self.punch(&mut grpc, &fleet, turn % self.hosts.len()).await;
                turn += 1;
            }
            let pause = fleet.think.mul_f64(self.rng.gen_range(0.5..1.5));
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn register(
        &mut self,
        grpc: &mut PunchrServiceClient<Channel>,
        fleet: &Fleet,
        host: usize,
    ) {
        let request = pb::RegisterRequest {
            client_id: self.hosts[host].peer.to_bytes(),
            agent_version: CLIENT_AGENT.into(),
            protocols: [
                "/ipfs/id/1.0.0",
                "/ipfs/id/push/1.0.0",
                "/ipfs/ping/1.0.0",
                "/libp2p/circuit/relay/0.2.0/stop",
                "/libp2p/dcutr",
            ]
            .map(String::from)
            .to_vec(),
            api_key: self.api_key.clone(),
        };
        let started = Instant::now();
        let answer = grpc.register(request).await;
        if timed(fleet, Rpc::Register, started, &answer).is_some() {
            self.hosts[host].registered = true;
        }
    }

    async fn punch(&mut self, grpc: &mut PunchrServiceClient<Channel>, fleet: &Fleet, host: usize) {
        let request = pb::GetAddrInfoRequest {
            host_id: self.hosts[host].peer.to_bytes(),
            all_host_ids: self.hosts.iter().map(|h| h.peer.to_bytes()).collect(),
            api_key: self.api_key.clone(),
        };
        let started = Instant::now();
        let answer = grpc.get_addr_info(request).await;
        let Some(handout) = timed(fleet, Rpc::GetAddrInfo, started, &answer) else {
            return;
        };
        let outcome = punch::draw_outcome(&mut self.rng);
        let reporter = Reporter {
            api_key: &self.api_key,
            host: &self.hosts[host].peer,
            listen_addresses: &self.hosts[host].listen_addresses,
            nat_mappings: &self.nat_mappings,
            with_network_information: !self.hosts[host].reported,
        };
        let now = u64::try_from(punchr_store::now_unix_nanos()).expect("after 1970");
        let request = punch::track_request(&reporter, handout, outcome, now, &mut self.rng);
        let started = Instant::now();
        let answer = grpc.track_hole_punch(request).await;
        if timed(fleet, Rpc::TrackHolePunch, started, &answer).is_some() {
            self.hosts[host].reported = true;
            *fleet
                .sent
                .lock()
                .expect("sent lock")
                .entry(outcome_name(outcome))
                .or_default() += 1;
        }
    }
}

/// Records a call's latency and code; returns the answer of a successful one.
fn timed<'a, T>(
    fleet: &Fleet,
    rpc: Rpc,
    started: Instant,
    answer: &'a Result<tonic::Response<T>, Status>,
) -> Option<&'a T> {
    let latency = started.elapsed();
    match answer {
        Ok(response) => {
            fleet.recorder.record(rpc, latency, None);
            Some(response.get_ref())
        }
        Err(status) => {
            let code = format!("{:?}", status.code());
            tracing::warn!(target: LOADGEN, event = "call_failed", rpc = rpc.name(), %code, grpc_message = status.message(), "call failed");
            fleet.recorder.record(rpc, latency, Some(&code));
            None
        }
    }
}

/// A channel of its own: one TCP connection and HTTP/2 session per client, as a fleet of
/// separate machines has.
async fn connect(server: SocketAddr) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("http://{server}"))
        .expect("a valid URI")
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .connect()
        .await
}

/// The outcome as the database stores it (`SUCCESS`, `NO_STREAM`, …).
fn outcome_name(outcome: pb::HolePunchOutcome) -> String {
    outcome
        .as_str_name()
        .trim_start_matches("HOLE_PUNCH_OUTCOME_")
        .to_owned()
}
