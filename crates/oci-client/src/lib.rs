//! An OCI distribution registry over HTTP(S): [`Client`] implements
//! [`oci_core::Registry`] against a remote registry, with TLS (rustls),
//! proxies, mirror namespaces, basic and bearer-token auth (docker and
//! podman credential files included) and retries with backoff.
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
mod blobs;
mod client;
mod connector;
mod fallback;
mod lists;
mod manifests;
pub mod options;
mod registry;
mod resume;
pub mod retry;
mod tls;
mod transport;
mod uploads;
mod writer;

pub use client::Client;
pub use options::{AuthOptions, ClientOptions, ProxyOptions, Scheme, TlsOptions};
pub use retry::RetryConfig;
