//! Serving a [`RegistryService`] on a TCP listener (plain or TLS), and
//! [`TestServer`], a loopback server for tests.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use oci_core::Registry;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::service::RegistryService;

/// How long accepting pauses after a failure such as running out of file
/// descriptors, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `registry` on `listener` over HTTP/1.1 and HTTP/2 (cleartext),
/// one task per connection, until the future is dropped (which also ends
/// the connections it serves).
pub async fn serve(listener: TcpListener, registry: Arc<dyn Registry>) -> io::Result<()> {
    RegistryService::new(registry).serve(listener).await
}

impl RegistryService {
    /// Serves this service on `listener` over cleartext HTTP/1.1 and HTTP/2,
    /// one task per connection. Runs until the future is dropped; failed
    /// accepts are logged and retried.
    pub async fn serve(self, listener: TcpListener) -> io::Result<()> {
        let mut connections = JoinSet::new();
        loop {
            let Some((stream, peer)) = accept(&listener).await else {
                continue;
            };
            while connections.try_join_next().is_some() {}
            connections.spawn(connection(self.clone(), stream, peer));
        }
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

/// Serves one connection with HTTP/1.1 or HTTP/2, whichever the client speaks.
pub(crate) async fn connection<S>(service: RegistryService, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Blob uploads over HTTP/2 stall on the default 64 KiB windows; let
    // the windows grow with the connection's bandwidth-delay product.
    builder.http2().adaptive_window(true);
    if let Err(e) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
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
