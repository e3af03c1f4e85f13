//! A [`Registry`](oci_core::Registry) wrapper that traces every call with
//! `tracing`.
//!
//! [`Traced`] reports, at DEBUG on the `oci_debug` target, one event per
//! call — method, repository, digest or tag, outcome (`ok` or the spec
//! error code), duration — plus one when a blob stream ends (bytes read)
//! and when a chunked upload commits, cancels or closes (bytes written).
//! Listed items and individual upload writes are TRACE events. When the
//! subscriber filters DEBUG off for this target, calls pass straight
//! through: nothing is cloned, counted or formatted.
//!
//! ```
//! use std::sync::Arc;
//! use oci_core::{Digest, Registry};
//! use oci_core::registry::bytes_stream;
//! use oci_debug::Traced;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> oci_core::Result<()> {
//! // With a subscriber installed, e.g. RUST_LOG=oci_debug=debug.
//! let registry = Traced::new(Arc::new(oci_mem::MemRegistry::new()));
//! let repo = "app".parse()?;
//! let data = bytes::Bytes::from_static(b"hello");
//! let digest = Digest::sha256(&data);
//! registry.push_blob(&repo, &digest, None, bytes_stream(data, 2)).await?;
//! // DEBUG oci_debug: call method="push_blob" repo=app digest=sha256:… outcome="ok" bytes=5 …
//! # Ok(())
//! # }
//! ```

mod call;
mod streams;
mod traced;
mod writer;

pub use call::TARGET;
pub use traced::Traced;
