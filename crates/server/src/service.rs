//! The `PunchrService` gRPC handlers: authenticate, validate, then call the store.
//!
//! Status codes and messages keep the original's texts where clients match on them
//! (`punchr-original.md` §2.3): "API key is missing", "unauthorized", "no peers to hole punch",
//! "please restart the client".

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p_identity::PeerId;
use punchr_proto as pb;
use punchr_store::agent::Agent;
use punchr_store::{
    now_unix_nanos, ApiKey, ApiKeySecret, PeerInfo, Requester, SelectionOutcome, SelectionRules,
    Store, StoreError,
};
use tonic::{Request, Response, Status};

use crate::filter::FilterDraw;
use crate::health::WriteHealth;
use crate::metrics::Metrics;
use crate::validate::{self, InvalidField, Limits, Quirks, MAX_API_KEY_BYTES};
use punchr_types::log_target::SERVER;

/// The service and everything its handlers share.
#[derive(Debug, Clone)]
pub struct PunchrService {
    store: Store,
    metrics: Arc<Metrics>,
    rules: SelectionRules,
    limits: Limits,
    allow_anonymous: bool,
    filter_draw: FilterDraw,
    rate_limiter: Option<Arc<KeyRateLimiter>>,
    rate_limiter_pruned: Arc<Mutex<Instant>>,
    self_registration: SelfRegistration,
    registrations: Arc<SourceRateLimiter>,
    registrations_pruned: Arc<Mutex<Instant>>,
    write_health: Arc<WriteHealth>,
}

/// Requests per API key id, token bucket per key.
type KeyRateLimiter = governor::DefaultKeyedRateLimiter<i64>;

/// New anonymous keys per source address (IPv6 per /64), token bucket per address.
type SourceRateLimiter = governor::DefaultKeyedRateLimiter<IpAddr>;

/// Most source addresses the self-registration limiter tracks. Beyond it (a flood from many
/// addresses within the hour) self-registration is refused rather than the map grown.
const MAX_REGISTRATION_SOURCES: usize = 10_000;

/// Most keys the per-key rate limiter tracks before it forgets the idle ones.
const MAX_RATE_LIMITED_KEYS: usize = 10_000;

/// How often a full rate limiter is pruned at most: pruning scans it, and it must not be scanned
/// under load on every request.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Limits of anonymous self-registration (`--allow-anonymous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfRegistration {
    /// New anonymous keys one source address may register per hour.
    pub per_address_per_hour: u32,
    /// Most active anonymous keys.
    pub max_active_keys: i64,
}

impl Default for SelfRegistration {
    fn default() -> Self {
        SelfRegistration {
            per_address_per_hour: 10,
            max_active_keys: 10_000,
        }
    }
}

fn registration_limiter(limits: SelfRegistration) -> SourceRateLimiter {
    let per_hour =
        std::num::NonZeroU32::new(limits.per_address_per_hour).unwrap_or(std::num::NonZeroU32::MIN);
    governor::RateLimiter::keyed(governor::Quota::per_hour(per_hour).allow_burst(per_hour))
}

/// The address a self-registration counts against: IPv4 as it is, IPv6 by its /64 (one
/// subscriber's network), IPv4-mapped IPv6 as IPv4.
fn registration_source(addr: SocketAddr) -> IpAddr {
    match addr.ip() {
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = ip.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Prunes `limiter` when it holds more than `max` keys, at most once per [`PRUNE_EVERY`].
fn prune_if_full<K>(
    limiter: &governor::DefaultKeyedRateLimiter<K>,
    max: usize,
    pruned: &Mutex<Instant>,
) where
    K: Clone + Eq + std::hash::Hash,
{
    if limiter.len() <= max {
        return;
    }
    let Ok(mut last) = pruned.try_lock() else {
        return;
    };
    if last.elapsed() >= PRUNE_EVERY {
        limiter.retain_recent();
        *last = Instant::now();
    }
}

impl PunchrService {
    /// A service over `store`.
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        rules: SelectionRules,
        allow_anonymous: bool,
        filter_draw: FilterDraw,
    ) -> Self {
        PunchrService {
            store,
            metrics,
            rules,
            limits: Limits::default(),
            allow_anonymous,
            filter_draw,
            rate_limiter: None,
            rate_limiter_pruned: Arc::new(Mutex::new(Instant::now())),
            self_registration: SelfRegistration::default(),
            registrations: Arc::new(registration_limiter(SelfRegistration::default())),
            registrations_pruned: Arc::new(Mutex::new(Instant::now())),
            write_health: Arc::default(),
        }
    }

    /// Limits anonymous self-registration (with `--allow-anonymous`).
    pub fn with_self_registration(mut self, limits: SelfRegistration) -> Self {
        self.self_registration = limits;
        self.registrations = Arc::new(registration_limiter(limits));
        self
    }

    /// Shares `health` with the readiness check: it learns about writes the database refuses.
    pub(crate) fn with_write_health(mut self, health: Arc<WriteHealth>) -> Self {
        self.write_health = health;
        self
    }

    /// Limits every API key to `quota` (all RPCs of all its hosts together).
    pub fn with_rate_limit(mut self, quota: Option<governor::Quota>) -> Self {
        self.rate_limiter = quota.map(|q| Arc::new(governor::RateLimiter::keyed(q)));
        self
    }

    /// Refuses the request when its key used up its quota; the client backs off and retries.
    fn check_rate(&self, key: &ApiKey) -> Result<(), Status> {
        let Some(limiter) = &self.rate_limiter else {
            return Ok(());
        };
        if limiter.check_key(&key.id).is_err() {
            self.metrics.rate_limited();
            return Err(Status::resource_exhausted(
                "rate limit exceeded for this API key; slow down",
            ));
        }
        // Keys that went quiet are forgotten now and then, so the table stays small. Keys are
        // bounded (named ones by the operator, anonymous ones by --max-anonymous-keys).
        prune_if_full(limiter, MAX_RATE_LIMITED_KEYS, &self.rate_limiter_pruned);
        Ok(())
    }

    async fn authenticate(&self, key: &str) -> Result<ApiKey, Status> {
        if key.is_empty() {
            return Err(Status::unauthenticated("API key is missing"));
        }
        if key.len() > MAX_API_KEY_BYTES {
            return Err(Status::unauthenticated("unauthorized"));
        }
        let key = self
            .store
            .authenticate(&ApiKeySecret::new(key))
            .await
            .map_err(|e| self.storage_status(e))?
            .ok_or_else(|| Status::unauthenticated("unauthorized"))?;
        if key.anonymous && !self.allow_anonymous {
            // Self-registered while the flag was on: an anonymous key is only as good as the
            // server's consent to anonymous keys, also after a restart without it.
            return Err(Status::unauthenticated("unauthorized"));
        }
        self.check_rate(&key)?;
        self.metrics.client_seen(key.id);
        Ok(key)
    }

    async fn register(
        &self,
        request: pb::RegisterRequest,
        source: Option<SocketAddr>,
    ) -> Result<pb::RegisterResponse, Status> {
        let key = match self.authenticate(&request.api_key).await {
            Err(status) if self.may_self_register(&request.api_key, &status) => {
                // Validate before anything is stored, so a refused request leaves no key behind.
                self.validate_host(&request)?;
                self.check_self_registration(source).await?;
                self.register_anonymously(&request.api_key).await?
            }
            other => other?,
        };
        let host = self.validate_host(&request)?;
        let db_peer_id = self
            .store
            .register_host(key.id, &host)
            .await
            .map_err(|e| self.storage_status(e))?;
        tracing::info!(target: SERVER, event = "host_registered", api_key = key.id, host = %host.peer_id, "registered host");
        Ok(pb::RegisterResponse { db_peer_id })
    }

    fn validate_host(&self, request: &pb::RegisterRequest) -> Result<PeerInfo, Status> {
        validate::register(request, &self.limits).map_err(invalid_argument)
    }

    /// Unknown (not missing, not oversized) keys may register themselves when allowed.
    fn may_self_register(&self, key: &str, refusal: &Status) -> bool {
        self.allow_anonymous
            && refusal.code() == tonic::Code::Unauthenticated
            && !key.is_empty()
            && key.len() <= MAX_API_KEY_BYTES
    }

    /// Refuses a new anonymous key when its source address registered its quota within the
    /// hour, or when --max-anonymous-keys are active.
    async fn check_self_registration(&self, source: Option<SocketAddr>) -> Result<(), Status> {
        let too_many = || {
            self.metrics.rate_limited();
            Status::resource_exhausted(
                "too many new anonymous keys from this address; keep using the key you registered",
            )
        };
        let source = source.map_or(
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            registration_source,
        );
        let limiter = &self.registrations;
        prune_if_full(
            limiter,
            MAX_REGISTRATION_SOURCES,
            &self.registrations_pruned,
        );
        if limiter.len() >= MAX_REGISTRATION_SOURCES || limiter.check_key(&source).is_err() {
            return Err(too_many());
        }
        let active = self
            .store
            .active_anonymous_api_keys()
            .await
            .map_err(|e| self.storage_status(e))?;
        if active >= self.self_registration.max_active_keys {
            tracing::warn!(target: SERVER, event = "self_registration_refused", active, "self-registration refused: --max-anonymous-keys reached; revoke unused anonymous keys (keys list, keys revoke --id)");
            return Err(Status::resource_exhausted(
                "this server takes no more anonymous keys; ask its operator for a key",
            ));
        }
        Ok(())
    }

    async fn register_anonymously(&self, key: &str) -> Result<ApiKey, Status> {
        let key = self
            .store
            .register_anonymous_api_key(&ApiKeySecret::new(key))
            .await
            .map_err(|e| self.storage_status(e))?;
        if key.revoked_at.is_some() {
            // A revoked key stays revoked, also for self-registration.
            return Err(Status::unauthenticated("unauthorized"));
        }
        self.check_rate(&key)?;
        self.metrics.client_seen(key.id);
        Ok(key)
    }

    async fn get_addr_info(
        &self,
        request: pb::GetAddrInfoRequest,
    ) -> Result<pb::GetAddrInfoResponse, Status> {
        let key = self.authenticate(&request.api_key).await?;
        let validate::AskingHosts { asking, all: hosts } =
            validate::get_addr_info(&request, &self.limits).map_err(invalid_argument)?;
        let registered = self
            .store
            .registered_hosts(key.id, &hosts)
            .await
            .map_err(|e| self.storage_status(e))?;
        let Some(host_peer_id) = registered
            .iter()
            .find(|(peer, _)| *peer == asking)
            .or_else(|| registered.first())
            .map(|(_, id)| *id)
        else {
            return Err(Status::failed_precondition(
                "not registered, please restart the client",
            ));
        };
        let requester = Requester {
            api_key_id: key.id,
            host_peer_id,
            client_hosts: registered.iter().map(|(_, id)| *id).collect(),
        };
        let started = Instant::now();
        let selected = self
            .store
            .select_remote(&requester, &self.rules, now_unix_nanos())
            .await;
        self.metrics.selection(selected.is_ok(), started.elapsed());
        let selection = selected.map_err(|e| self.storage_status(e))?;
        self.metrics.selection_transactions(selection.transactions);
        let handout = match selection.outcome {
            SelectionOutcome::Handout(handout) => handout,
            SelectionOutcome::NoneEligible => {
                return Err(Status::not_found("no peers to hole punch"))
            }
            SelectionOutcome::KeyQuotaUsed => {
                return Err(Status::resource_exhausted(
                    "this API key was handed its --handouts-per-key remotes within the window; slow down",
                ))
            }
        };
        let remote: PeerId = handout
            .remote_peer_id
            .parse()
            .map_err(|_| Status::internal("stored peer ID is unreadable"))?;
        Ok(pb::GetAddrInfoResponse {
            remote_id: remote.to_bytes(),
            multi_addresses: handout.addresses.iter().map(|a| a.to_vec()).collect(),
            protocols: self.filter_draw.pick(rand::random()),
        })
    }

    /// Stores a result of one of the key's own hosts.
    ///
    /// Results for remotes that were never handed to the key are accepted, as the original
    /// server accepted them: a result is the client's word either way (a key that lies can
    /// lie about a remote it was handed just as well), so refusing them would make nothing
    /// more trustworthy, while it would lose honest results whose handout is no longer known
    /// (an outbox delivered after the database was rebuilt, results of remotes found by other
    /// means in a testbed). What bounds a lying key is that every result carries its key: the
    /// per-key rate limit bounds how many it sends, and its results can be told apart and
    /// removed with it. What is refused is what cannot have happened: times out of order or
    /// out of range (see [`validate::hole_punch_result`]), and hosts of other keys.
    async fn track_hole_punch(
        &self,
        request: pb::TrackHolePunchRequest,
    ) -> Result<pb::TrackHolePunchResponse, Status> {
        let key = self.authenticate(&request.api_key).await?;
        // The client's quirks come from the agent its host registered with, so the host is
        // looked up first; an unregistered host is refused after validation all the same.
        let client_peer_id =
            validate::peer_id("client_id", &request.client_id).map_err(invalid_argument)?;
        let registered = self
            .store
            .registered_host_agent(key.id, &client_peer_id)
            .await
            .map_err(|e| self.storage_status(e))?;
        let agent = Agent::classify(registered.as_ref().and_then(|(_, a)| a.as_deref()));
        let result = validate::hole_punch_result(
            &request,
            key.id,
            now_unix_nanos(),
            &self.limits,
            Quirks::of(&agent),
        )
        .map_err(invalid_argument)?;
        if registered.is_none() {
            return Err(Status::permission_denied(format!(
                "client not registered: host {} was not registered with this API key",
                result.client_peer_id
            )));
        }
        let stored = self
            .store
            .insert_hole_punch_result(&result)
            .await
            .map_err(|e| self.storage_status(e))?;
        self.write_health.accepted();
        if stored.new {
            self.metrics.result_stored(result.outcome.as_str());
        }
        let id = stored.id;
        tracing::info!(
            target: SERVER, event = "result_stored",
            result = id,
            api_key = key.id,
            client = %result.client_peer_id,
            remote = %result.remote_peer_id,
            outcome = %result.outcome,
            attempts = result.attempts.len(),
            "stored hole punch result"
        );
        Ok(pb::TrackHolePunchResponse {})
    }

    async fn observe<T>(
        &self,
        method: &str,
        handler: impl Future<Output = Result<T, Status>>,
    ) -> Result<Response<T>, Status> {
        let started = Instant::now();
        let result = handler.await;
        let code = result
            .as_ref()
            .map_or_else(Status::code, |_| tonic::Code::Ok);
        self.metrics.request(method, code, started.elapsed());
        if let Err(status) = &result {
            tracing::debug!(target: SERVER, event = "request_refused", method, code = ?status.code(), grpc_message = status.message(), "request refused");
        }
        result.map(Response::new)
    }
}

#[tonic::async_trait]
impl pb::punchr_service_server::PunchrService for PunchrService {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let source = request.remote_addr();
        self.observe("Register", self.register(request.into_inner(), source))
            .await
    }

    async fn get_addr_info(
        &self,
        request: Request<pb::GetAddrInfoRequest>,
    ) -> Result<Response<pb::GetAddrInfoResponse>, Status> {
        self.observe("GetAddrInfo", self.get_addr_info(request.into_inner()))
            .await
    }

    async fn track_hole_punch(
        &self,
        request: Request<pb::TrackHolePunchRequest>,
    ) -> Result<Response<pb::TrackHolePunchResponse>, Status> {
        self.observe(
            "TrackHolePunch",
            self.track_hole_punch(request.into_inner()),
        )
        .await
    }
}

fn invalid_argument(error: InvalidField) -> Status {
    Status::invalid_argument(error.to_string())
}

impl PunchrService {
    /// The status for a storage failure. Passing states of the database (unreachable, full,
    /// read-only) get a status the client retries on, keeping its result in its outbox, with a
    /// message that says what is wrong; other details stay in the server's log.
    fn storage_status(&self, error: StoreError) -> Status {
        match &error {
            StoreError::Unavailable(_) => {
                tracing::warn!(target: SERVER, event = "database_unavailable", %error, "database unavailable: answering UNAVAILABLE, clients keep their results and retry");
                Status::unavailable("database unavailable, try again later")
            }
            StoreError::StorageFull(_) => {
                tracing::error!(target: SERVER, event = "database_full", %error, "database storage is full: free disk space; results are refused (RESOURCE_EXHAUSTED) and stay with the clients until then");
                self.write_health.refused("database storage is full");
                Status::resource_exhausted(
                    "database storage is full; the result was not stored, try again later",
                )
            }
            StoreError::ReadOnly(_) => {
                tracing::error!(target: SERVER, event = "database_read_only", %error, "database is read-only: make it writable; results are refused (UNAVAILABLE) and stay with the clients until then");
                self.write_health.refused("database is read-only");
                Status::unavailable(
                    "database is read-only; the result was not stored, try again later",
                )
            }
            _ => {
                tracing::error!(target: SERVER, event = "storage_error", %error, "storage error");
                Status::internal("storage error")
            }
        }
    }
}
