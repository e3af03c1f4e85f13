//! `serve`: a registry on an embedded store.

use std::path::Path;
use std::sync::Arc;

use oci_core::{Error, ErrorCode, Registry, Result};

fn io(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Unknown, format!("{what}: {e}"))
}

pub async fn serve(
    addr: &str,
    read_only: bool,
    demo: bool,
    tls: Option<(&Path, &Path)>,
) -> Result<()> {
    let mem = Arc::new(oci_mem::MemRegistry::new());
    if demo {
        let pushed = crate::demo::seed(mem.as_ref()).await?;
        eprintln!("seeded demo/hello:latest ({pushed})");
    }
    let registry: Arc<dyn Registry> = if read_only {
        Arc::new(oci_filter::ReadOnly::new(mem))
    } else {
        mem
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| io(&format!("cannot listen on {addr}"), e))?;
    let local = listener.local_addr().map_err(|e| io("listener", e))?;
    match tls {
        Some((cert, key)) => {
            let config = tls_config(cert, key)?;
            eprintln!("listening on https://{local}");
            oci_server::serve_tls(listener, registry, config)
                .await
                .map_err(|e| io("server", e))
        }
        None => {
            eprintln!("listening on http://{local}");
            oci_server::serve(listener, registry)
                .await
                .map_err(|e| io("server", e))
        }
    }
}

/// A rustls server configuration (ring provider) from PEM files.
fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            io(
                &format!("cannot read certificates from {}", cert.display()),
                e,
            )
        })?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        io(
            &format!("cannot read a private key from {}", key.display()),
            e,
        )
    })?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| io("invalid TLS certificate or key", e))
}
