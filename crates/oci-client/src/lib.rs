//! An OCI distribution registry over HTTP(S): [`Client`] implements
//! [`oci_core::Registry`] against a remote registry, with TLS (rustls),
//! proxies, mirror namespaces, basic and bearer-token auth (docker and
//! podman credential files included) and retries with backoff.
//!
//! Behaviour worth knowing:
//! - One `Client` per registry host; clones share connections, tokens
//!   and the concurrency limit. Loopback hosts default to plain http.
//! - Manifests are checked against the digest asked for (or, by tag,
//!   against `Docker-Content-Digest`); blob streams fail at their end
//!   unless size and digest match, and a dropped or stalled read resumes
//!   with `Range` from where it stopped.
//! - A chunked upload's id is its current absolute `Location` URL (it
//!   changes as chunks are written; resume with the latest); a bare uuid
//!   is accepted too.
//! - Tags are listed in full and sorted here, then paged with `last`/`n`,
//!   because some registries list tags unsorted.
//! - On registries without the referrers API, pushing or deleting a
//!   manifest with a `subject` keeps the `<alg>-<hex>` fallback tag index
//!   up to date, and listing reads it.
//! - Mount answered with a new upload session (202) cancels it and
//!   returns `BLOB_UNKNOWN`, so callers copy instead.
//! - Failures are [`ClientError`]s converted into [`oci_core::Error`] with
//!   their spec code, their cause as the source, and whether they are
//!   transient. Requests are retried under the shared policy of
//!   [`oci_core::retry`] ([`RetryConfig`]); a failure retried until the
//!   budget was spent comes back marked, so layers above (`oci-large`) do
//!   not retry it again.
//!
//! ```no_run
//! use oci_client::{Client, ClientOptions};
//! use oci_core::{Registry, RepoName, Tag};
//!
//! # async fn run() -> oci_core::Result<()> {
//! let client = Client::new("registry.example:5000", ClientOptions::default())?;
//! client.ping().await?;
//! let repo: RepoName = "library/alpine".parse()?;
//! let manifest = client.get_tag(&repo, &"latest".parse::<Tag>()?).await?;
//! println!("{} {}", manifest.digest(), manifest.media_type());
//! # Ok(())
//! # }
//! ```

pub mod auth;
mod authorize;
mod blobs;
mod call;
mod client;
mod connector;
mod error;
mod fallback;
mod lists;
mod manifests;
pub mod options;
mod redirect;
mod registry;
mod resume;
pub mod retry;
mod send;
mod state;
mod tls;
mod transport;
mod uploads;
mod writer;

pub use client::Client;
pub use error::ClientError;
pub use options::{AuthOptions, ClientOptions, ProxyOptions, Scheme, TlsOptions};
pub use retry::RetryConfig;
pub use transport::NetworkFailure;
