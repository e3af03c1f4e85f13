//! The connector under hyper's client: TCP, an optional HTTP proxy
//! (CONNECT tunnels for https), then TLS with rustls.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::options::ProxyOptions;
use crate::tls::TlsSetup;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens connections: directly or through a proxy, in the clear or over TLS.
#[derive(Clone)]
pub(crate) struct Connector {
    tcp: HttpConnector,
    tls: Arc<TlsSetup>,
    proxy: Option<Arc<Matcher>>,
    /// Whether loopback hosts bypass the proxy (for environment proxies).
    loopback_direct: bool,
}

impl Connector {
    /// A connector with the given TLS config, proxy settings and timeout.
    pub(crate) fn new(
        tls: Arc<TlsSetup>,
        proxy_options: &ProxyOptions,
        connect_timeout: Duration,
    ) -> Connector {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let proxy = match proxy_options {
            ProxyOptions::None => None,
            ProxyOptions::FromEnv => Some(Matcher::from_env()),
            ProxyOptions::Url { url, no_proxy } => {
                let mut b = Matcher::builder().all(url.clone());
                if let Some(no) = no_proxy {
                    b = b.no(no.clone());
                }
                Some(b.build())
            }
        };
        Connector {
            tcp,
            tls,
            proxy: proxy.map(Arc::new),
            loopback_direct: matches!(proxy_options, ProxyOptions::FromEnv),
        }
    }

    /// The proxy for a destination, if one applies (environment proxies
    /// never apply to loopback hosts; an explicit one does).
    pub(crate) fn proxy_for(
        &self,
        dst: &Uri,
    ) -> Option<hyper_util::client::proxy::matcher::Intercept> {
        let host = dst.host()?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if self.loopback_direct && (oci_core::reference::is_loopback_host(host) || host == "::1") {
            return None;
        }
        self.proxy.as_ref()?.intercept(dst)
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(dst).await })
    }
}

impl Connector {
    async fn connect(mut self, dst: Uri) -> Result<Conn, BoxError> {
        let https = dst.scheme_str() == Some("https");
        let intercept = self.proxy_for(&dst);
        if !https {
            return Ok(match intercept {
                None => Conn::Plain(
                    tower_service::Service::call(&mut self.tcp, dst).await?,
                    false,
                ),
                Some(proxy) => {
                    let tcp =
                        tower_service::Service::call(&mut self.tcp, proxy.uri().clone()).await?;
                    Conn::Plain(tcp, true)
                }
            });
        }
        let tcp = match intercept {
            None => tower_service::Service::call(&mut self.tcp, dst.clone()).await?,
            Some(proxy) => {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), self.tcp.clone());
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                tower_service::Service::call(&mut tunnel, dst.clone()).await?
            }
        };
        let host = dst.host().ok_or("https URL without a host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())?;
        let connector = TlsConnector::from(self.tls.config()?);
        let tls = connector.connect(name, tcp.into_inner()).await?;
        Ok(Conn::Tls(Box::new(TokioIo::new(tls))))
    }
}

/// An open connection: plain TCP (possibly to an HTTP proxy) or TLS.
pub(crate) enum Conn {
    /// Clear text; `true` when the peer is a forwarding proxy.
    Plain(TokioIo<TcpStream>, bool),
    /// TLS over TCP (possibly tunnelled through a proxy).
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        match self {
            Conn::Plain(tcp, proxied) => tcp.connected().proxy(*proxied),
            Conn::Tls(tls) => {
                let (tcp, session) = tls.inner().get_ref();
                let connected = tcp.connected();
                if session.alpn_protocol() == Some(b"h2") {
                    connected.negotiated_h2()
                } else {
                    connected
                }
            }
        }
    }
}

impl Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s, _) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
}
