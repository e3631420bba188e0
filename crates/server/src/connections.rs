//! Accepting connections that strangers cannot hold open for free, for the gRPC port and the
//! dashboard alike: at most [`ConnectionLimits::max_connections`] at once, TCP keepalive on each
//! (a volunteer's NAT mapping that expired leaves a half-open connection), and a connection
//! with no request in flight is closed after [`ConnectionLimits::idle_timeout`], or after
//! [`ConnectionLimits::header_timeout`] when it has not brought a first request yet (a
//! connection that sends nothing, or half a preface, or half a header block).
//!
//! A request is in flight from its headers until its response is produced; the request timeout
//! (tonic's, for gRPC) bounds that. HTTP/2 PINGs are not requests, so keepalive does not keep an
//! idle connection open. [`GuardedListener`] accepts; [`TrackRequestsLayer`] (gRPC) and
//! [`track_dashboard_request`] (axum) count the requests of each connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use punchr_types::log_target::SERVER;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// What one listening port accepts.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a new connection may take to bring its first request.
    pub header_timeout: Duration,
    /// How long a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Idle time before the kernel probes a connection's peer (TCP keepalive).
    pub tcp_keepalive: Duration,
}

/// What a connection's requests share with the connection: how many are in flight, and since
/// when none is.
#[derive(Debug)]
pub(crate) struct Activity {
    in_flight: AtomicUsize,
    had_request: AtomicBool,
    idle_since: Mutex<Instant>,
    reader: Mutex<Option<Waker>>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            had_request: AtomicBool::new(false),
            idle_since: Mutex::new(Instant::now()),
            reader: Mutex::new(None),
        }
    }

    /// The moment the connection's idle limit runs out, or `None` while a request is in
    /// flight.
    fn idle_deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let limit = if self.had_request.load(Ordering::SeqCst) {
            limits.idle_timeout
        } else {
            limits.header_timeout
        };
        Some(*self.idle_since.lock().expect("idle lock") + limit)
    }
}

/// A request in flight on its connection, until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl InFlight {
    pub(crate) fn start(activity: &Arc<Activity>) -> InFlight {
        activity.had_request.store(true, Ordering::SeqCst);
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            *self.0.idle_since.lock().expect("idle lock") = Instant::now();
            // The connection's reader waits on the socket only; it must arm its idle timer.
            if let Some(reader) = self.0.reader.lock().expect("waker lock").take() {
                reader.wake();
            }
        }
    }
}

/// What a request learns about its connection (tonic puts it into the request's extensions;
/// axum hands it to [`track_dashboard_request`] as `ConnectInfo`).
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The peer's address.
    pub remote_addr: SocketAddr,
    pub(crate) activity: Arc<Activity>,
}

/// A listening socket that accepts within [`ConnectionLimits`].
#[derive(Debug)]
pub struct GuardedListener {
    listener: TcpListener,
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
}

impl GuardedListener {
    /// Accepts on `listener` within `limits`.
    pub fn new(listener: TcpListener, limits: ConnectionLimits) -> Self {
        GuardedListener {
            listener,
            slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            limits,
        }
    }

    /// The next connection, once one of the slots is free. Errors of single connections (reset
    /// before accept, descriptors exhausted) are logged and waited out, never returned.
    pub async fn accept_guarded(&self) -> GuardedStream {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            match self.listener.accept().await {
                Ok((stream, remote_addr)) => {
                    return GuardedStream::new(stream, remote_addr, self.limits, slot)
                }
                Err(error) => {
                    tracing::warn!(target: SERVER, event = "accept_failed", %error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// The connections as a stream, for tonic's `serve_with_incoming`.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = io::Result<GuardedStream>> {
        futures_util::stream::unfold(self, |listener| async move {
            let stream = listener.accept_guarded().await;
            Some((Ok(stream), listener))
        })
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let stream = self.accept_guarded().await;
        let addr = stream.info.remote_addr;
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, GuardedListener>>
    for ConnectionInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, GuardedListener>) -> Self {
        stream.io().info.clone()
    }
}

/// An accepted connection that ends itself when idle for too long.
#[derive(Debug)]
pub struct GuardedStream {
    stream: TcpStream,
    info: ConnectionInfo,
    limits: ConnectionLimits,
    idle_timer: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl GuardedStream {
    fn new(
        stream: TcpStream,
        remote_addr: SocketAddr,
        limits: ConnectionLimits,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(limits.tcp_keepalive)
            .with_interval(limits.tcp_keepalive);
        if let Err(error) = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive) {
            tracing::debug!(target: SERVER, event = "keepalive_failed", %error, "cannot set TCP keepalive");
        }
        let _ = stream.set_nodelay(true);
        GuardedStream {
            stream,
            info: ConnectionInfo {
                remote_addr,
                activity: Arc::new(Activity::new()),
            },
            limits,
            idle_timer: Box::pin(tokio::time::sleep(limits.header_timeout)),
            _slot: slot,
        }
    }

    /// Whether the connection has been idle for longer than allowed; arms the timer otherwise.
    fn idle_for_too_long(&mut self, cx: &mut Context<'_>) -> bool {
        let activity = &self.info.activity;
        *activity.reader.lock().expect("waker lock") = Some(cx.waker().clone());
        let Some(deadline) = activity.idle_deadline(&self.limits) else {
            return false;
        };
        if self.idle_timer.deadline() != deadline {
            self.idle_timer.as_mut().reset(deadline);
        }
        self.idle_timer.as_mut().poll(cx).is_ready()
    }
}

impl tonic::transport::server::Connected for GuardedStream {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.idle_for_too_long(cx) {
            tracing::debug!(target: SERVER, event = "idle_connection_closed", peer = %self.info.remote_addr, "closing an idle connection");
            // End of stream: the HTTP server closes the connection as if the peer had.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Counts the gRPC requests of each connection (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackRequestsLayer;

impl<S> tower::Layer<S> for TrackRequestsLayer {
    type Service = TrackRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TrackRequests { inner }
    }
}

/// The service of [`TrackRequestsLayer`].
#[derive(Debug, Clone)]
pub struct TrackRequests<S> {
    inner: S,
}

fn connection_of<B>(request: &http::Request<B>) -> Option<&ConnectionInfo> {
    let extensions = request.extensions();
    extensions.get::<ConnectionInfo>().or_else(|| {
        extensions
            .get::<tonic::transport::server::TlsConnectInfo<ConnectionInfo>>()
            .map(|tls| tls.get_ref())
    })
}

impl<S, B> tower::Service<http::Request<B>> for TrackRequests<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let in_flight = connection_of(&request).map(|info| InFlight::start(&info.activity));
        let response = self.inner.call(request);
        Box::pin(async move {
            let _in_flight = in_flight;
            response.await
        })
    }
}

/// axum middleware counting the dashboard requests of each connection.
pub async fn track_dashboard_request(
    axum::extract::ConnectInfo(info): axum::extract::ConnectInfo<ConnectionInfo>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let _in_flight = InFlight::start(&info.activity);
    next.run(request).await
}
