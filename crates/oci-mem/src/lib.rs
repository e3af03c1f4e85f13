//! An in-memory OCI registry: a complete implementation of
//! [`oci_core::Registry`], safe to share between tasks.
//!
//! Blobs are stored once, by digest, and linked into each repository that
//! holds them; manifests are kept as their exact bytes. Pushes are checked
//! as a registry checks them: blob digests and sizes while the bytes stream
//! in, manifests for validity and for the blobs and child manifests they
//! reference. It backs tests, the bundled conformance server, and any
//! program that wants a registry without a disk.
//!
//! What is kept, and for how long:
//! - A blob's bytes stay while some repository links the blob (it was
//!   pushed, committed or mounted there) and are freed as soon as the last
//!   link goes: [`Registry::delete_blob`] unlinks it from one repository.
//! - Deleting a manifest does not unlink its blobs (another manifest may
//!   use them, or one about to be pushed). [`MemRegistry::collect_garbage`]
//!   unlinks, when asked, the blobs no manifest of their repository
//!   references, sparing those linked within a grace period.
//! - Stored bytes hold only themselves: pieces under 64 KiB are copied out
//!   of the buffers they arrived in, so a blob sent in tiny chunks does not
//!   keep whole connection buffers alive.
//! - An open upload is not a repository: the catalog lists a repository
//!   once a blob or manifest lands in it. Uploads idle for a while are
//!   cancelled by [`Registry::expire_uploads`], which servers call.
//!
//! ```
//! use bytes::Bytes;
//! use oci_core::registry::bytes_stream;
//! use oci_core::{Digest, Registry, RepoName};
//! use oci_mem::MemRegistry;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> oci_core::Result<()> {
//! let registry = MemRegistry::new();
//! let repo: RepoName = "library/hello".parse()?;
//! let data = Bytes::from_static(b"hello, world");
//! let digest = Digest::sha256(&data);
//!
//! registry
//!     .push_blob(&repo, &digest, Some(data.len() as u64), bytes_stream(data.clone(), 4))
//!     .await?;
//! let read = registry.get_blob(&repo, &digest).await?.bytes().await?;
//! assert_eq!(read, data);
//!
//! // Other repositories do not see it until it is mounted there.
//! let other: RepoName = "library/other".parse()?;
//! assert!(registry.resolve_blob(&other, &digest).await.is_err());
//! registry.mount_blob(&other, &repo, &digest).await?;
//! assert_eq!(registry.resolve_blob(&other, &digest).await?.size, 12);
//! # Ok(())
//! # }
//! ```

mod blobs;
mod data;
mod gc;
mod lists;
mod manifests;
mod state;
mod uploads;

use std::time::Duration;

use async_trait::async_trait;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Descriptor, Digest, ListOptions, ListStream, Manifest,
    RangeRequest, Registry, RepoName, Result, Tag,
};

pub use crate::gc::GcReport;
use crate::state::Shared;

/// An in-memory registry.
///
/// Cloning it gives another handle to the same content.
#[derive(Clone, Default)]
pub struct MemRegistry {
    shared: Shared,
}

impl MemRegistry {
    /// An empty registry.
    pub fn new() -> MemRegistry {
        MemRegistry::default()
    }

    /// Unlinks from each repository the blobs none of its manifests
    /// references and that were linked `grace` or longer ago, and frees
    /// the bytes of those no repository links any more.
    ///
    /// ```
    /// let registry = oci_mem::MemRegistry::new();
    /// let report = registry.collect_garbage(std::time::Duration::from_secs(3600));
    /// assert_eq!(report.blobs_removed, 0);
    /// ```
    pub fn collect_garbage(&self, grace: Duration) -> GcReport {
        gc::collect(&self.shared, grace)
    }
}

impl std::fmt::Debug for MemRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.read();
        f.debug_struct("MemRegistry")
            .field("repositories", &state.repos.len())
            .field("blobs", &state.blobs.len())
            .field("uploads", &state.uploads.len())
            .finish()
    }
}

#[async_trait]
impl Registry for MemRegistry {
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        blobs::get(&self.shared, repo, digest)
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        blobs::get_range(&self.shared, repo, digest, range)
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        blobs::resolve(&self.shared, repo, digest)
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        manifests::get(&self.shared, repo, digest)
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        manifests::get_tag(&self.shared, repo, tag)
    }

    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        manifests::get(&self.shared, repo, digest).map(|m| m.descriptor)
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        manifests::get_tag(&self.shared, repo, tag).map(|m| m.descriptor)
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<Descriptor> {
        blobs::push(&self.shared, repo, digest, size, body).await
    }

    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(uploads::start(&self.shared, repo)))
    }

    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(uploads::resume(&self.shared, repo, id)?))
    }

    async fn expire_uploads(&self, idle: Duration) -> Result<u64> {
        Ok(uploads::expire(&self.shared, idle))
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Descriptor> {
        blobs::mount(&self.shared, repo, from, digest)
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        manifests::push(&self.shared, repo, manifest, tags)
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        blobs::delete(&self.shared, repo, digest)
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        manifests::delete(&self.shared, repo, digest)
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        manifests::delete_tag(&self.shared, repo, tag)
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        lists::tags(&self.shared, repo, options)
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        lists::referrers(&self.shared, repo, subject, artifact_type)
    }

    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        lists::repositories(&self.shared, options)
    }
}
