//! Serving a [`RegistryService`] on a TCP listener (plain or TLS) within
//! its [`crate::Limits`], and [`TestServer`], a loopback server for tests.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use oci_core::{Error, ErrorCode, Registry};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::activity::{Activity, Watched, WatchedBody};
use crate::body::BoxError;
use crate::response::Failure;
use crate::service::RegistryService;

/// How long accepting pauses after a failure such as running out of file
/// descriptors, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How many connections over the limit are answered `503` at once; more
/// are closed without an answer.
const REFUSALS: usize = 64;

/// How long a connection over the limit is given to send its request and
/// read the `503`.
const REFUSAL_TIME: Duration = Duration::from_secs(5);

/// What a client refused for load is told to wait.
const RETRY_AFTER_OVERLOAD: &str = "1";

/// Serves `registry` on `listener` over HTTP/1.1 and HTTP/2 (cleartext),
/// one task per connection, with the default [`crate::Limits`], until the
/// future is dropped (which also ends the connections it serves).
pub async fn serve(listener: TcpListener, registry: Arc<dyn Registry>) -> io::Result<()> {
    RegistryService::new(registry).serve(listener).await
}

impl RegistryService {
    /// Serves this service on `listener` over cleartext HTTP/1.1 and HTTP/2,
    /// one task per connection, within its limits, and sweeps idle upload
    /// sessions. Runs until the future is dropped; failed accepts are
    /// logged and retried.
    pub async fn serve(self, listener: TcpListener) -> io::Result<()> {
        let _sweeper = AbortOnDrop(tokio::spawn(self.clone().sweep_uploads()));
        let gate = Gate::new(self.limits().max_connections);
        let mut connections = JoinSet::new();
        loop {
            let Some((stream, peer)) = accept(&listener).await else {
                continue;
            };
            while connections.try_join_next().is_some() {}
            match gate.enter() {
                Entry::Served(ticket) => {
                    connections.spawn(connection(self.clone(), stream, peer, ticket));
                }
                Entry::Refused(ticket) => {
                    connections.spawn(refuse(stream, peer, ticket));
                }
                Entry::Dropped => tracing::debug!(%peer, "too many connections, closed at once"),
            }
        }
    }
}

/// Counts the connections served and refused.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    max: usize,
    served: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

/// Whether a new connection is served, refused with a `503`, or dropped.
pub(crate) enum Entry {
    Served(Ticket),
    Refused(Ticket),
    Dropped,
}

/// One place in a count, given back when dropped.
pub(crate) struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    pub(crate) fn new(max: usize) -> Gate {
        Gate {
            max,
            served: Arc::new(AtomicUsize::new(0)),
            refused: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Takes a place for a new connection.
    pub(crate) fn enter(&self) -> Entry {
        let take = |count: &Arc<AtomicUsize>, max: usize| {
            count
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                })
                .ok()
                .map(|_| Ticket(count.clone()))
        };
        if let Some(ticket) = take(&self.served, self.max) {
            Entry::Served(ticket)
        } else if let Some(ticket) = take(&self.refused, REFUSALS) {
            Entry::Refused(ticket)
        } else {
            Entry::Dropped
        }
    }
}

/// Aborts a background task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Accepts one connection; `None` after a (logged) failure.
pub(crate) async fn accept(listener: &TcpListener) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok((stream, peer)) => {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
            }
            Some((stream, peer))
        }
        Err(e) => {
            let transient = matches!(
                e.kind(),
                io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::Interrupted
            );
            if !transient {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
            None
        }
    }
}

/// A connection builder for HTTP/1.1 and HTTP/2 with the service's limits.
/// The timeouts are not hyper's (a timer per request): one watchdog per
/// connection enforces them, see [`Activity::watch`].
fn builder(service: &RegistryService) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().max_headers(service.limits().max_headers);
    // Blob uploads over HTTP/2 stall on the default 64 KiB windows; let
    // the windows grow with the connection's bandwidth-delay product.
    builder.http2().adaptive_window(true);
    builder
}

/// Serves one connection with HTTP/1.1 or HTTP/2, whichever the client
/// speaks, closing it when it has been idle too long.
pub(crate) async fn connection<S>(
    service: RegistryService,
    stream: S,
    peer: SocketAddr,
    ticket: Ticket,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let first_request = service.limits().header_read_timeout;
    let idle = service.limits().idle_timeout;
    let builder = builder(&service);
    let per_connection = Connection {
        service,
        activity: activity.clone(),
        peer,
    };
    let served = builder.serve_connection(
        TokioIo::new(Watched::new(stream, activity.clone())),
        per_connection,
    );
    let result = if first_request.is_none() && idle.is_none() {
        served.await
    } else {
        tokio::pin!(served);
        tokio::select! {
            result = served.as_mut() => result,
            why = activity.watch(first_request, idle) => {
                tracing::debug!(%peer, ?why, "closing a connection");
                Ok(())
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
    drop(ticket);
}

/// Answers a connection over the limit with `503` and `Retry-After`, then
/// closes it.
pub(crate) async fn refuse<S>(stream: S, peer: SocketAddr, ticket: Ticket)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tracing::debug!(%peer, "too many connections, answering 503");
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_TIME);
    let answer = hyper::service::service_fn(|_request| async {
        let error = Error::new(
            ErrorCode::TooManyRequests,
            "the server has too many connections; retry shortly",
        )
        .with_status(503);
        let response = Failure::from(error)
            .with_header(http::header::RETRY_AFTER, RETRY_AFTER_OVERLOAD)
            .with_header(http::header::CONNECTION, "close")
            .into_response(false);
        Ok::<_, std::convert::Infallible>(response)
    });
    let served = builder.serve_connection(TokioIo::new(stream), answer);
    let _ = tokio::time::timeout(REFUSAL_TIME, served).await;
    drop(ticket);
}

/// The service as one connection sees it: it marks the requests being
/// handled and the responses being sent (the connection's watchdog spares
/// those) and applies the per-client rate limit.
struct Connection {
    service: RegistryService,
    activity: Arc<Activity>,
    peer: SocketAddr,
}

/// The future [`Connection`] returns for one request.
type ConnectionFuture =
    Pin<Box<dyn Future<Output = Result<Response<WatchedBody>, Infallible>> + Send>>;

impl<B> hyper::service::Service<Request<B>> for Connection
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<WatchedBody>;
    type Error = Infallible;
    type Future = ConnectionFuture;

    fn call(&self, request: Request<B>) -> ConnectionFuture {
        let handling = self.activity.handling();
        let activity = self.activity.clone();
        if let Some(refused) = self.service.rate_limited(self.peer.ip(), &request) {
            return Box::pin(async move {
                let response = refused.map(|body| activity.watch_body(body));
                drop(handling);
                Ok(response)
            });
        }
        let service = self.service.clone();
        Box::pin(async move {
            let response = service.handle(request).await;
            let response = response.map(|body| activity.watch_body(body));
            drop(handling);
            Ok(response)
        })
    }
}

/// A registry served on an ephemeral loopback port, for tests; the server
/// stops when this is dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # use std::sync::Arc;
/// # struct Nothing;
/// # #[oci_core::async_trait]
/// # impl oci_core::Registry for Nothing {}
/// let server = oci_server::TestServer::start(Arc::new(Nothing)).await;
/// assert!(server.url().starts_with("http://127.0.0.1:"));
/// # }
/// ```
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Serves `registry` on 127.0.0.1 with a port the OS picks.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound, which a test cannot work around.
    pub async fn start(registry: Arc<dyn Registry>) -> TestServer {
        TestServer::start_service(RegistryService::new(registry)).await
    }

    /// Serves a configured service on 127.0.0.1 with a port the OS picks.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start_service(service: RegistryService) -> TestServer {
        #[allow(clippy::expect_used)]
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port for the test server");
        #[allow(clippy::expect_used)]
        let addr = listener
            .local_addr()
            .expect("the address of a bound listener");
        let task = tokio::spawn(async move {
            if let Err(e) = service.serve(listener).await {
                tracing::warn!(error = %e, "test server stopped");
            }
        });
        TestServer { addr, task }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
