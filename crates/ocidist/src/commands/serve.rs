//! `serve`: a registry on an embedded store (in memory, on disk or in an
//! object store with `--storage`, see [`crate::storage`]), and `gc` for
//! the on-disk store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use oci_core::{Error, ErrorCode, Registry, Result};
use oci_server::{Limits, RateLimit, RegistryService, ServerOptions};

use crate::cli::LimitFlags;

/// The flags of `serve`.
pub struct ServeOptions {
    pub addr: String,
    pub storage: Option<PathBuf>,
    pub read_only: bool,
    pub demo: bool,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub auth: crate::server_auth::AuthFlags,
    pub limits: Limits,
    pub mirror: crate::mirror::MirrorFlags,
}

/// The server limits the flags ask for.
pub fn limits(flags: &LimitFlags) -> Limits {
    let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    let rate = flags.rate_limit.map(|per_second| {
        let burst = flags
            .rate_burst
            .unwrap_or_else(|| ((per_second * 2.0).ceil() as u32).max(10));
        RateLimit::new(per_second, burst)
    });
    Limits::new()
        .header_read_timeout(secs(flags.header_timeout))
        .idle_timeout(secs(flags.idle_timeout))
        .body_idle_timeout(secs(flags.body_timeout))
        .max_connections(flags.max_connections)
        .max_headers(flags.max_headers)
        .max_uploads(flags.max_uploads)
        .max_uploads_per_repo(flags.max_uploads_per_repo)
        .upload_expiry(secs(flags.upload_expiry))
        .max_blob_size(flags.max_blob_size)
        .rate_limit(rate)
}

fn io(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Unknown, format!("{what}: {e}"))
}

pub async fn serve(options: ServeOptions) -> Result<()> {
    let addr = options.addr.as_str();
    let storage = options
        .storage
        .as_deref()
        .map(crate::storage::Storage::parse);
    let store: Arc<dyn Registry> = match &storage {
        Some(storage) if options.mirror.enabled() => storage.open_cache().await?,
        Some(storage) => storage.open().await?,
        None => Arc::new(oci_mem::MemRegistry::new()),
    };
    if options.demo {
        let pushed = crate::demo::seed(store.as_ref()).await?;
        eprintln!("seeded demo/hello:latest ({pushed})");
    }
    let (store, server_options) = crate::mirror::apply(
        &options.mirror,
        store,
        ServerOptions::new().limits(options.limits),
    )?;
    let registry: Arc<dyn Registry> = if options.read_only {
        Arc::new(oci_filter::ReadOnly::new(store))
    } else {
        store
    };
    let authenticator = options
        .auth
        .authenticator(storage.as_ref().and_then(|s| s.dir()))
        .map_err(|e| Error::new(ErrorCode::Unknown, format!("authentication: {e}")))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| io(&format!("cannot listen on {addr}"), e))?;
    let local = listener.local_addr().map_err(|e| io("listener", e))?;
    let mut server_options = server_options;
    match authenticator {
        Some(auth) => {
            eprintln!("authentication: {auth:?}");
            server_options =
                server_options.authorizer(Arc::new(crate::server_auth::ServerAuth::new(auth)));
        }
        None if !local.ip().is_loopback() && !options.auth.insecure_no_auth => {
            return Err(Error::new(
                ErrorCode::Unknown,
                format!(
                    "refusing to serve {local} without authentication: anyone who can reach it \
                     could push and delete; give --htpasswd (or --anonymous-read, \
                     --token-realm), or --insecure-no-auth to serve it open"
                ),
            ));
        }
        None => {}
    }
    let service = RegistryService::with_options(registry, server_options);
    match &options.tls {
        Some((cert, key)) => {
            let config = tls_config(cert, key)?;
            eprintln!("listening on https://{local}");
            service
                .serve_tls(listener, config)
                .await
                .map_err(|e| io("server", e))
        }
        None => {
            eprintln!("listening on http://{local}");
            service.serve(listener).await.map_err(|e| io("server", e))
        }
    }
}

/// Collects garbage in an on-disk store and reports what went.
pub async fn gc(storage: &Path, grace: Option<u64>) -> Result<()> {
    if !storage.join("oci-layout").exists() && !storage.is_dir() {
        return Err(Error::new(
            ErrorCode::Unknown,
            format!("{} is not a store directory", storage.display()),
        ));
    }
    // Beside a running server, blobs of pushes under way must be spared.
    let mut options = if oci_layout::LayoutRegistry::in_use(storage) {
        oci_layout::GcOptions::beside_servers()
    } else {
        oci_layout::GcOptions::default()
    };
    if let Some(secs) = grace {
        options.grace = Duration::from_secs(secs);
    }
    let report = oci_layout::LayoutRegistry::gc_at(storage, &options).await?;
    println!("{report}");
    Ok(())
}

/// The rustls server configuration of a PEM certificate chain and key.
fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| io(&format!("cannot read {}", p.display()), e));
    oci_server::tls_config(&read(cert)?, &read(key)?)
        .map_err(|e| io("invalid TLS certificate or key", e))
}
