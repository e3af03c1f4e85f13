//! A hyper 1 service exposing any [`oci_core::Registry`] over the OCI
//! distribution spec v1.1: blobs (with range reads), monolithic and chunked
//! uploads, cross-repository mounts, manifests, tags, referrers and the
//! catalog. Request and response bodies are streamed, never buffered
//! whole; every error leaves as the spec's JSON body with its code's status.
//!
//! [`RegistryService`] plugs into hyper's connection builders or a tower
//! stack; [`serve`] and [`serve_tls`] run it on a listener within its
//! [`Limits`] (timeouts, connection and upload session caps, an optional
//! per-client rate limit) and sweep idle upload sessions; [`TestServer`]
//! runs it on an ephemeral loopback port. An [`Authorize`] set with
//! [`ServerOptions::authorizer`] checks every request before any store call.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! # async fn run() -> std::io::Result<()> {
//! let registry = Arc::new(oci_mem::MemRegistry::new());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! oci_server::serve(listener, registry).await
//! # }
//! ```
//!
//! Choices where the spec leaves room:
//! - An invalid tag in a manifest PUT's path or `?tag=` is a 400
//!   `MANIFEST_INVALID` (the spec's stand-in for distribution's
//!   `TAG_INVALID`); a GET, HEAD or DELETE of a manifest by a reference that
//!   is neither a tag nor a digest is a 404 `MANIFEST_UNKNOWN`, as
//!   distribution answers reads of what cannot exist; an invalid `n` is a
//!   400 `SIZE_INVALID`; unknown paths are 404 `UNSUPPORTED`, a wrong method
//!   on a known path 405 `UNSUPPORTED`.
//! - A manifest whose type the request's `Accept` header excludes (no
//!   wildcard, not listed) is a 404 `MANIFEST_UNKNOWN`, by tag or digest, as
//!   distribution answers; a request without `Accept` gets any manifest.
//! - A malformed or unsatisfiable `bytes` range is a 416 with
//!   `Content-Range: bytes */<size>`; a `Range` of another unit or with
//!   several ranges is ignored (RFC 9110), as it is by a registry without
//!   ranged reads: the whole blob is served with 200.

mod activity;
mod auth;
mod blobs;
mod body;
mod ctx;
mod limits;
mod lists;
mod manifests;
mod memory;
mod options;
mod process;
mod response;
mod routes;
mod serve;
mod service;
mod sessions;
#[cfg(feature = "tls")]
mod tls;
mod uploads;

pub use auth::{Action, AuthRequest, Authorize, Rejection};
pub use body::{BoxError, ResponseBody};
pub use limits::{
    DEFAULT_BODY_IDLE_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADERS, DEFAULT_MAX_UPLOADS,
    DEFAULT_MAX_UPLOADS_PER_REPO, DEFAULT_UPLOAD_EXPIRY, Limits, RateLimit,
};
pub use memory::tune_allocator;
pub use options::ServerOptions;
pub use process::raise_open_files;
pub use serve::{TestServer, serve};
pub use service::{RegistryService, ResponseFuture};
#[cfg(feature = "tls")]
pub use tls::{serve_tls, tls_config};

/// Parses a request path as the service routes it and prints the route back
/// as its canonical path. For the fuzz targets (`fuzz/`), not an API.
#[doc(hidden)]
pub fn route_path(path: &str) -> oci_core::Result<String> {
    routes::Route::parse(path).map(|route| route.path())
}
