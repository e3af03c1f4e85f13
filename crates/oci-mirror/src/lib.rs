//! A pull-through caching mirror: one [`Registry`](oci_core::Registry) in
//! front of any number of upstream registries, keeping what it fetches in
//! any store.
//!
//! The upstreams are registries the caller builds (an `oci-client`
//! `Client` per host, in `ocidist serve --mirror`); the cache is any store
//! (`oci-mem`, `oci-layout`). Served by `oci-server` with namespaces on,
//! a request `GET /v2/library/alpine/manifests/3.20?ns=docker.io` reaches
//! the mirror as repository `docker.io/library/alpine`. See [`Mirror`]
//! for what is cached, for how long, and what happens when an upstream
//! fails.
//!
//! ```
//! use std::sync::Arc;
//! use oci_core::Registry;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> oci_core::Result<()> {
//! let upstream = Arc::new(oci_mem::MemRegistry::new());
//! let repo = "library/alpine".parse()?;
//! oci_core::testkit::push_image(upstream.as_ref(), &repo, Some(&"3.20".parse()?)).await;
//!
//! let cache = Arc::new(oci_mem::MemRegistry::new());
//! let mirror = oci_mirror::Mirror::builder(cache.clone())
//!     .upstream("docker.io", upstream)
//!     .default_upstream("docker.io")
//!     .build()?;
//! let manifest = mirror.get_tag(&repo, &"3.20".parse()?).await?;
//! // Kept in the cache under the upstream's name.
//! let cached = "docker.io/library/alpine".parse()?;
//! assert!(cache.resolve_blob(&cached, manifest.digest()).await.is_ok());
//! # Ok(())
//! # }
//! ```

mod blob;
mod failure;
mod flight;
mod keeper;
mod manifest;
mod metrics;
mod mirror;
mod record;
mod registry;
mod tag;
mod upstream;

pub use metrics::Stats;
pub use mirror::{DEFAULT_TAG_FRESHNESS, Mirror, MirrorBuilder};
pub use record::TAG_RECORD_TYPE;
pub use upstream::{Connect, DEFAULT_ANY_UPSTREAM_LIMIT};
