//! The link to the server: registration, asking for peers, and delivering results from the
//! outbox.

use std::time::Duration;

use punchr_proto as pb;
use punchr_proto::punchr_service_client::PunchrServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use crate::outbox::{Outbox, OutboxError};
use punchr_types::log_target::CLIENT;

/// Why talking to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The server address or TLS settings are unusable.
    #[error("server settings: {0}")]
    Settings(String),
    /// A request failed.
    #[error("server answered {}: {}", .0.code(), .0.message())]
    Status(#[from] Status),
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ServerAddress {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// PEM of the CA that signed the server's certificate (TLS only).
    pub ca_pem: Option<Vec<u8>>,
    /// TLS without checking the server's certificate (test deployments only).
    pub skip_verify: bool,
    /// How long connecting and each request may take.
    pub timeouts: LinkTimeouts,
}

/// How long the link waits for the server. A server (or a middlebox) that accepts a connection
/// and then says nothing must not hang the client: results wait in the outbox instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTimeouts {
    /// Connecting, including the TLS handshake.
    pub connect: Duration,
    /// One request, from sending to the whole response.
    pub request: Duration,
}

impl Default for LinkTimeouts {
    fn default() -> Self {
        LinkTimeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(30),
        }
    }
}

/// A gRPC client of the server, with the API key every request carries.
#[derive(Debug, Clone)]
pub struct ServerLink {
    client: PunchrServiceClient<Channel>,
    api_key: String,
    /// Longest a call may take, connecting included (tonic's own timeouts leave out the TLS
    /// handshake and the wait for a lazily made connection).
    deadline: Duration,
}

/// A peer the server handed out.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Peer ID bytes of the remote.
    pub remote_id: Vec<u8>,
    /// Its relay addresses (binary multiaddrs).
    pub addresses: Vec<Vec<u8>>,
    /// Preferred protocol codes.
    pub protocol_filter: Vec<i32>,
}

/// The request sizes the client accepts from the server.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

impl ServerLink {
    /// A lazily connecting link: the first request connects, and every request reconnects if
    /// needed, so a server outage only delays the client.
    pub fn new(address: &ServerAddress, api_key: String) -> Result<ServerLink, LinkError> {
        crate::insecure_tls::install_crypto_provider();
        let channel = if address.skip_verify {
            tracing::warn!(target: CLIENT, event = "tls_not_verified", "the server's TLS certificate is not verified (--server-ssl-skip-verify)");
            let uri: tonic::transport::Uri = address
                .url
                .parse()
                .map_err(|e| LinkError::Settings(format!("{}: {e}", address.url)))?;
            let host = uri
                .host()
                .ok_or_else(|| LinkError::Settings(format!("{}: no host", address.url)))?;
            crate::insecure_tls::channel(host, uri.port_u16().unwrap_or(443), address.timeouts)
                .map_err(LinkError::Settings)?
        } else {
            Self::verified_channel(address)?
        };
        let client = PunchrServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(ServerLink {
            client,
            api_key,
            deadline: address.timeouts.connect + address.timeouts.request,
        })
    }

    /// Awaits a call within the link's deadline; a call past it fails as DEADLINE_EXCEEDED,
    /// which the caller retries like any outage.
    async fn within<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Status> {
        match tokio::time::timeout(self.deadline, call).await {
            Ok(answer) => answer.map(tonic::Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "{what}: no answer from the server within {:?}",
                self.deadline
            ))),
        }
    }

    fn verified_channel(address: &ServerAddress) -> Result<Channel, LinkError> {
        let mut endpoint = Endpoint::from_shared(address.url.clone())
            .map_err(|e| LinkError::Settings(format!("{}: {e}", address.url)))?
            .connect_timeout(address.timeouts.connect)
            .timeout(address.timeouts.request);
        if address.url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_webpki_roots();
            if let Some(pem) = &address.ca_pem {
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| LinkError::Settings(e.to_string()))?;
        }
        Ok(endpoint.connect_lazy())
    }

    /// Registers a host; returns its database id.
    pub async fn register(
        &self,
        client_id: Vec<u8>,
        agent_version: String,
        protocols: Vec<String>,
    ) -> Result<i64, LinkError> {
        let request = pb::RegisterRequest {
            client_id,
            agent_version,
            protocols,
            api_key: self.api_key.clone(),
        };
        let mut client = self.client.clone();
        Ok(self
            .within("Register", client.register(request))
            .await?
            .db_peer_id)
    }

    /// Asks for a peer to hole punch; `None` when the server has none right now.
    pub async fn get_addr_info(
        &self,
        host_id: Vec<u8>,
        all_host_ids: Vec<Vec<u8>>,
    ) -> Result<Option<Assignment>, LinkError> {
        let request = pb::GetAddrInfoRequest {
            host_id,
            all_host_ids,
            api_key: self.api_key.clone(),
        };
        let mut client = self.client.clone();
        match self
            .within("GetAddrInfo", client.get_addr_info(request))
            .await
        {
            Ok(response) => {
                if response.remote_id.is_empty() {
                    return Ok(None);
                }
                Ok(Some(Assignment {
                    remote_id: response.remote_id,
                    addresses: response.multi_addresses,
                    protocol_filter: response.protocols,
                }))
            }
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(status.into()),
        }
    }

    /// Sends every result waiting in the outbox, oldest first; stops at the first one the
    /// server cannot take now (it stays for the next call). Results the server refuses for
    /// good are moved aside, logged, and not retried. Returns how many were delivered.
    pub async fn deliver(&self, outbox: &Outbox) -> Result<usize, LinkError> {
        let mut delivered = 0;
        for entry in outbox.pending()? {
            let Some(mut request) = outbox.load(&entry)? else {
                continue;
            };
            request.api_key.clone_from(&self.api_key);
            let mut client = self.client.clone();
            match self
                .within("TrackHolePunch", client.track_hole_punch(request))
                .await
            {
                Ok(_) => {
                    outbox.remove(&entry)?;
                    delivered += 1;
                }
                Err(status) if is_permanent(status.code()) => {
                    tracing::error!(target: CLIENT, event = "result_rejected", code = ?status.code(), grpc_message = status.message(), file = %entry.path().display(), "server refused a result for good");
                    outbox.reject(&entry)?;
                }
                Err(status) => return Err(status.into()),
            }
        }
        Ok(delivered)
    }
}

/// Refusals that a retry cannot change.
fn is_permanent(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument | Code::PermissionDenied | Code::FailedPrecondition
    )
}
