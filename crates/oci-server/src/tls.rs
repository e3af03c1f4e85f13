//! HTTPS serving with rustls (ring provider), and a server configuration
//! built from PEM files.

use std::io;
use std::sync::Arc;

use oci_core::Registry;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::serve::{AbortOnDrop, Entry, Gate, accept, connection, refuse};
use crate::service::RegistryService;

/// Serves `registry` on `listener` over HTTPS with the given rustls
/// configuration, HTTP/1.1 and HTTP/2 (offered by ALPN unless the
/// configuration names protocols itself).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let config = oci_server::tls_config(
///     &std::fs::read("cert.pem")?,
///     &std::fs::read("key.pem")?,
/// )?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:5443").await?;
/// let registry = std::sync::Arc::new(oci_mem::MemRegistry::new());
/// oci_server::serve_tls(listener, registry, config).await
/// # }
/// ```
pub async fn serve_tls(
    listener: TcpListener,
    registry: Arc<dyn Registry>,
    config: rustls::ServerConfig,
) -> io::Result<()> {
    RegistryService::new(registry)
        .serve_tls(listener, config)
        .await
}

/// A rustls server configuration (ring provider, no client authentication)
/// from a PEM certificate chain, leaf first, and a PEM private key.
pub fn tls_config(cert_chain_pem: &[u8], key_pem: &[u8]) -> io::Result<rustls::ServerConfig> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
    };
    let certs = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("reading the certificate chain", &e))?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the certificate PEM holds no certificate",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| invalid("reading the private key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("choosing TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("the certificate and key", &e))
}

impl RegistryService {
    /// Serves this service on `listener` over HTTPS, one task per
    /// connection (TLS handshake included). Runs until the future is
    /// dropped, which also ends the connections it serves.
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        mut config: rustls::ServerConfig,
    ) -> io::Result<()> {
        if config.alpn_protocols.is_empty() {
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let _sweeper = AbortOnDrop(tokio::spawn(self.clone().sweep_uploads()));
        let gate = Gate::new(self.limits().max_connections);
        // A handshake is bounded like reading a request's headers.
        let handshake_time = self.limits().header_read_timeout;
        let mut connections = JoinSet::new();
        loop {
            let Some((stream, peer)) = accept(&listener).await else {
                continue;
            };
            while connections.try_join_next().is_some() {}
            let entry = gate.enter();
            if let Entry::Dropped = entry {
                tracing::debug!(%peer, "too many connections, closed at once");
                continue;
            }
            let acceptor = acceptor.clone();
            let service = self.clone();
            connections.spawn(async move {
                let handshake = acceptor.accept(stream);
                let tls = match handshake_time {
                    Some(limit) => match tokio::time::timeout(limit, handshake).await {
                        Ok(tls) => tls,
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    },
                    None => handshake.await,
                };
                match (tls, entry) {
                    (Ok(tls), Entry::Served(ticket)) => {
                        connection(service, tls, peer, ticket).await;
                    }
                    (Ok(tls), Entry::Refused(ticket)) => refuse(tls, peer, ticket).await,
                    (Ok(_), Entry::Dropped) => {}
                    (Err(e), _) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                }
            });
        }
    }
}
