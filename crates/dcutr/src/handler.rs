//! The connection handler on a relayed connection: opens or accepts `/libp2p/dcutr` streams,
//! runs the exchange under its deadline, and passes every step up to the behaviour.
//!
//! Follows the stock crate's `src/handler/relayed.rs`: the side that accepted the relayed
//! connection refuses inbound DCUtR streams and opens them itself; the dialing side only accepts;
//! one exchange at a time, bounded by [`HANDSHAKE_TIMEOUT`]; the connection is kept alive until
//! [`MAX_ATTEMPTS`] streams were used. Unlike the stock handler, a new inbound stream replaces an
//! exchange still running (the stock one drops the new stream despite its log line), and the
//! address candidates are read when the CONNECT is written. It decides nothing about attempts;
//! that is [`Upgrades`](crate::upgrade::Upgrades)' job.

use std::{
    collections::VecDeque,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use either::Either;
use futures::{
    future::{self, BoxFuture},
    FutureExt,
};
use futures_timer::Delay;
use libp2p::{
    core::upgrade::{DeniedUpgrade, ReadyUpgrade},
    swarm::{
        handler::{
            ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
        },
        ConnectionHandler, ConnectionHandlerEvent, Stream, StreamUpgradeError, SubstreamProtocol,
    },
    Multiaddr, StreamProtocol,
};

use crate::{
    candidates::SharedCandidates,
    event::Role,
    handshake::{self, Progress, Step},
    message::MessageError,
    preference::Preference,
    upgrade::{Failure, MAX_ATTEMPTS},
};

/// The protocol id of DCUtR.
pub const PROTOCOL_NAME: StreamProtocol = StreamProtocol::new("/libp2p/dcutr");

/// How long one CONNECT/SYNC exchange may take, including the initiator's RTT/2 wait.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the behaviour asks of a handler.
#[derive(Debug)]
pub(crate) enum Command {
    /// Open a new `/libp2p/dcutr` stream (initiator) for the next attempt.
    OpenStream,
}

/// What a handler reports to the behaviour.
#[derive(Debug)]
pub(crate) enum Report {
    /// A stream is negotiated and its exchange started.
    StreamOpened { at: Instant },
    /// A step of the running exchange.
    Step(Step),
    /// The exchange finished; dial these addresses now.
    ExchangeDone { addrs: Vec<Multiaddr> },
    /// The stream could not be opened, or its exchange failed.
    ExchangeFailed { failure: Failure, at: Instant },
}

type ExchangeResult = Result<Vec<Multiaddr>, MessageError>;

struct Exchange {
    future: BoxFuture<'static, ExchangeResult>,
    progress: Progress,
    deadline: Delay,
}

/// A behaviour's command to a handler (opaque outside this crate).
#[derive(Debug)]
pub struct HandlerCommand(pub(crate) Command);

/// A handler's report to the behaviour (opaque outside this crate).
#[derive(Debug)]
pub struct HandlerReport(pub(crate) Report);

/// The connection handler of [`Behaviour`](crate::Behaviour) on a relayed connection (direct
/// connections get a dummy handler).
pub struct Handler {
    role: Role,
    candidates: SharedCandidates,
    preference: Preference,
    /// Stream requests not yet handed to the connection.
    to_request: usize,
    /// Streams requested and not yet negotiated (or failed).
    opening: usize,
    /// Streams requested (initiator) or accepted (responder) so far.
    streams: u8,
    exchange: Option<Exchange>,
    reports: VecDeque<Report>,
}

impl Handler {
    pub(crate) fn new(role: Role, candidates: SharedCandidates, preference: Preference) -> Self {
        Self {
            role,
            candidates,
            preference,
            to_request: 0,
            opening: 0,
            streams: 0,
            exchange: None,
            reports: VecDeque::new(),
        }
    }

    fn start_exchange(&mut self, stream: Stream) {
        let at = Instant::now();
        let progress = Progress::default();
        let candidates = self.candidates.clone();
        let preference = self.preference.clone();
        let read_candidates = move || preference.apply(&candidates.list());
        let future = match self.role {
            Role::Initiator => {
                handshake::initiate(stream, read_candidates, progress.clone()).boxed()
            }
            Role::Responder => {
                handshake::respond(stream, read_candidates, progress.clone()).boxed()
            }
        };
        // Dropping a running exchange drops (and so resets) its stream.
        self.exchange = Some(Exchange {
            future,
            progress,
            deadline: Delay::new(HANDSHAKE_TIMEOUT),
        });
        self.reports.push_back(Report::StreamOpened { at });
    }

    /// Polls the running exchange and queues what it logged and how it ended.
    fn poll_exchange(&mut self, cx: &mut Context<'_>) {
        let Some(exchange) = self.exchange.as_mut() else {
            return;
        };
        let result = exchange.future.poll_unpin(cx);
        self.reports
            .extend(exchange.progress.drain().into_iter().map(Report::Step));
        let report = match result {
            Poll::Ready(Ok(addrs)) => Report::ExchangeDone { addrs },
            Poll::Ready(Err(error)) => Report::ExchangeFailed {
                failure: Failure::Protocol(error.to_string()),
                at: Instant::now(),
            },
            Poll::Pending => match exchange.deadline.poll_unpin(cx) {
                Poll::Ready(()) => Report::ExchangeFailed {
                    failure: Failure::Timeout,
                    at: Instant::now(),
                },
                Poll::Pending => return,
            },
        };
        self.reports.push_back(report);
        self.exchange = None;
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = HandlerCommand;
    type ToBehaviour = HandlerReport;
    type InboundProtocol = Either<ReadyUpgrade<StreamProtocol>, DeniedUpgrade>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        match self.role {
            Role::Responder => {
                SubstreamProtocol::new(Either::Left(ReadyUpgrade::new(PROTOCOL_NAME)), ())
            }
            // The initiator opens the streams; it never accepts one (spec: B → A).
            Role::Initiator => SubstreamProtocol::new(Either::Right(DeniedUpgrade), ()),
        }
    }

    fn on_behaviour_event(&mut self, HandlerCommand(command): HandlerCommand) {
        match command {
            Command::OpenStream => {
                self.to_request += 1;
                self.streams = self.streams.saturating_add(1);
            }
        }
    }

    fn connection_keep_alive(&self) -> bool {
        self.exchange.is_some()
            || self.to_request > 0
            || self.opening > 0
            || self.streams < MAX_ATTEMPTS
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        if self.to_request > 0 {
            self.to_request -= 1;
            self.opening += 1;
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL_NAME), ()),
            });
        }
        self.poll_exchange(cx);
        match self.reports.pop_front() {
            Some(report) => Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(HandlerReport(
                report,
            ))),
            None => Poll::Pending,
        }
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol, ..
            }) => match protocol {
                future::Either::Left(stream) => {
                    self.streams = self.streams.saturating_add(1);
                    self.start_exchange(stream);
                }
                future::Either::Right(never) => match never {},
            },
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                ..
            }) => {
                self.opening = self.opening.saturating_sub(1);
                self.start_exchange(stream);
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                self.opening = self.opening.saturating_sub(1);
                let failure = match error {
                    StreamUpgradeError::NegotiationFailed => Failure::Unsupported,
                    StreamUpgradeError::Timeout => Failure::Timeout,
                    StreamUpgradeError::Io(e) => Failure::Protocol(format!("stream error: {e}")),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                self.reports.push_back(Report::ExchangeFailed {
                    failure,
                    at: Instant::now(),
                });
            }
            _ => {}
        }
    }
}
