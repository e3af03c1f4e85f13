//! One [`Registry`](oci_core::Registry) out of two: reads from whichever
//! side has the content, writes to both, merged listings.
//!
//! [`Unify`] holds two inner `Arc<dyn Registry>` — say a fast local cache
//! and a remote — and serves them as one. The [`ReadPolicy`] decides how
//! reads reach them: one after the other, or both at once with the first
//! answer winning. See [`Unify`] for how answers and errors combine.
//!
//! ```
//! use std::sync::Arc;
//! use oci_core::{Digest, Registry};
//! use oci_core::registry::bytes_stream;
//! use oci_unify::{ReadPolicy, Unify};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> oci_core::Result<()> {
//! let local = Arc::new(oci_mem::MemRegistry::new());
//! let remote = Arc::new(oci_mem::MemRegistry::new());
//! let repo = "app".parse()?;
//! let data = bytes::Bytes::from_static(b"only on the remote");
//! let digest = Digest::sha256(&data);
//! remote.push_blob(&repo, &digest, None, bytes_stream(data.clone(), 4)).await?;
//!
//! let both = Unify::new(local, remote, ReadPolicy::Sequential);
//! assert_eq!(both.get_blob(&repo, &digest).await?.bytes().await?, data);
//! # Ok(())
//! # }
//! ```

mod merge;
mod outcome;
mod unify;
mod writer;

pub use unify::Unify;

/// How reads reach the two registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadPolicy {
    /// Ask r0; ask r1 only when r0 answers "not found" (or
    /// `UNSUPPORTED`). Tags, which must agree, are asked of r0 and then r1.
    #[default]
    Sequential,
    /// Ask both at once; the first success wins and the other request is
    /// dropped. A failure waits for the other side's answer.
    Concurrent,
}
