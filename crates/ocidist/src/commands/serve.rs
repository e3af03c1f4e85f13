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

/// The rustls server configuration of a PEM certificate chain and key.
fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| io(&format!("cannot read {}", p.display()), e));
    oci_server::tls_config(&read(cert)?, &read(key)?)
        .map_err(|e| io("invalid TLS certificate or key", e))
}
