//! An OCI registry kept in an object store: a complete implementation of
//! [`oci_core::Registry`] over the [`object_store`] crate (Amazon S3 and
//! S3-compatible servers, a local directory, memory), holding nothing that
//! matters in a process, so that any number of servers can share one
//! bucket behind a load balancer.
//!
//! # In the bucket
//!
//! ```text
//! <prefix>/
//!   blobs/<alg>/<hex>/data              a blob's bytes, stored once for every repository
//!   blobs/<alg>/<hex>/links/<repo>      that <repo> holds it (body: the size)
//!   repos/<repo>/blobs/<alg>-<hex>      <repo> holds that blob (an index of its links)
//!   repos/<repo>/manifests/<alg>/<hex>  media type, newline, the manifest's exact bytes
//!   repos/<repo>/tags/<tag>             the digest the tag points at (empty: untagged)
//!   repos/<repo>/referrers/<16 hex of subject>/<alg>-<hex>   a referrer: subject, descriptor (JSON)
//!   uploads/<id>/repo                   an upload's repository
//!   uploads/<id>/parts/<offset>         its bytes, one object per piece received
//!   _gc/state, _gc/lock                 the garbage collector's state and lock
//! ```
//!
//! `<repo>` is the repository name with `/` written as `!`.
//!
//! # Many servers, one bucket
//!
//! - Every request reads what it needs from the bucket, so a tag pushed
//!   through one server is read by the next request on another, and an
//!   upload started on one is continued (`PATCH`), queried and committed
//!   on any other (an upload's parts are objects in the bucket).
//! - No write reads a shared object, changes it and writes it back, except
//!   where noted: a tag move is one atomic put (last push wins), a
//!   referrer is an object of its own, a link is an object of its own.
//!   Conditional writes guard the rest: upload parts are created with
//!   `PutMode::Create` (two requests writing at one offset cannot both
//!   land), the untagging of a deleted manifest's tags is a
//!   `PutMode::Update` on the version read, retried on conflict, and the
//!   collector's lock is created with `PutMode::Create`.
//! - At open, the store probes which conditional writes the backend
//!   honours ([`ObjRegistry::conditional`]) and logs a warning for those it
//!   lacks. Without `Create` (S3 with conditional puts disabled), a part
//!   or the collector's lock is checked before it is written, so two
//!   requests racing on one offset may both land (the later part wins).
//!   Without `Update` (the local-filesystem backend), a deleted manifest's
//!   tag is deleted after a check, so a move of that tag landing between
//!   the check and the delete is lost.
//!
//! # Durability and verification
//!
//! A pushed blob streams into its object as it arrives (a multipart
//! upload past 8 MiB) and becomes visible only once its digest and size
//! matched: an S3 multipart upload is invisible until completed. The blob
//! is linked into the repository only after that, and only then is the
//! push acknowledged. On `file://` every write is fsynced with its
//! directory before it returns (object_store's local backend with
//! `with_fsync`), so an acknowledged push survives a power cut; a cloud
//! bucket is durable once its put returns. A manifest is stored only once
//! everything it references is linked. Reads verify, with the rule
//! `oci-layout` applies to its files (`VerifyReads::WhenChanged`) and the
//! object's ETag as its stamp: a whole-blob read of an object this process
//! neither wrote nor hashed whole holds its last piece back until the
//! digest matched; one it did (the same ETag) is only counted against its
//! size; a range is served only from such an object; a manifest is
//! checked before it is returned. A changed object (a new ETag) is hashed
//! again; silent damage inside the bucket that keeps the ETag is the
//! bucket's to catch.
//!
//! # Garbage collection beside running servers
//!
//! [`ObjRegistry::gc_with`] (and `ocidist gc --storage URL`) unlinks from
//! each repository the blobs none of its manifests references, deletes the
//! bytes no repository links, removes the blob index entries a push
//! interrupted before its link left and removes idle uploads, while
//! servers keep accepting pushes: see [`GcOptions`] for the grace period, and the
//! module docs of `fence` for how a push that overlapped a collection
//! checks its work again instead of acknowledging what was removed.
//!
//! ```
//! use bytes::Bytes;
//! use oci_core::registry::bytes_stream;
//! use oci_core::{Digest, Registry, RepoName};
//! use oci_objstore::ObjRegistry;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> oci_core::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let url = format!("file://{}", dir.path().display());
//! let repo: RepoName = "library/hello".parse()?;
//! let data = Bytes::from_static(b"hello, world");
//! let digest = Digest::sha256(&data);
//!
//! let one = ObjRegistry::open(&url).await?;
//! one.push_blob(&repo, &digest, Some(12), bytes_stream(data.clone(), 4)).await?;
//! // Another server on the same bucket sees it.
//! let two = ObjRegistry::open(&url).await?;
//! assert_eq!(two.get_blob(&repo, &digest).await?.bytes().await?, data);
//! # Ok(())
//! # }
//! ```

mod blobs;
#[cfg(feature = "cloud")]
mod cloud;
mod content;
mod error;
mod fence;
mod gc;
mod keys;
mod lists;
mod manifests;
mod open;
mod repos;
mod store;
mod uploads;

use std::sync::Arc;

use async_trait::async_trait;
use object_store::ObjectStore;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Descriptor, Digest, ListOptions, ListStream, Manifest,
    RangeRequest, Registry, RepoName, Result, Tag,
};

pub use error::ObjError;
pub use gc::{GcOptions, GcReport};
pub use open::StorageUrl;
pub use store::Conditional;

use crate::store::Inner;

/// Whether `id` is an upload id this store mints (32 hex digits), so an id
/// from a URL never becomes another key.
pub(crate) fn upload_id_is_ours(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A registry kept in an object store.
///
/// Cloning it gives another handle to the same store.
#[derive(Clone)]
pub struct ObjRegistry {
    inner: Arc<Inner>,
    url: String,
}

impl ObjRegistry {
    /// Opens the store a storage URL names (`s3://BUCKET/PREFIX`,
    /// `file:///PATH`, `memory://`), and probes its conditional writes.
    pub async fn open(url: &str) -> Result<ObjRegistry> {
        ObjRegistry::open_with(url, std::iter::empty::<(&str, &str)>()).await
    }

    /// Opens the store a storage URL names with `object_store` settings
    /// beyond the environment's (see [`StorageUrl::backend`]).
    ///
    /// ```no_run
    /// # async fn demo() -> oci_core::Result<()> {
    /// let registry = oci_objstore::ObjRegistry::open_with(
    ///     "s3://bucket/registry",
    ///     [("aws_endpoint", "http://127.0.0.1:9000"), ("aws_allow_http", "true")],
    /// )
    /// .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open_with<I, K, V>(url: &str, options: I) -> Result<ObjRegistry>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let parsed: StorageUrl = url.parse()?;
        let backend = parsed.backend(options)?;
        ObjRegistry::with_backend(backend, &parsed.to_string()).await
    }

    /// A registry over any `object_store` backend, named `name` in logs.
    /// Probes which conditional writes the backend honours and logs a
    /// warning for those it lacks (see the crate docs).
    pub async fn with_backend(store: Arc<dyn ObjectStore>, name: &str) -> Result<ObjRegistry> {
        let conditional = store::probe(&store).await?;
        if !conditional.create {
            tracing::warn!(
                store = name,
                "the object store does not honour create-if-absent writes: two requests \
                 writing one upload offset at once may both land"
            );
        }
        if !conditional.update {
            tracing::warn!(
                store = name,
                "the object store does not honour conditional updates: a tag moved while \
                 its old manifest is deleted may be removed"
            );
        }
        tracing::info!(store = name, ?conditional, "object store opened");
        Ok(ObjRegistry {
            inner: Arc::new(Inner::new(store, conditional)),
            url: name.to_owned(),
        })
    }

    /// The conditional writes the backend honours.
    pub fn conditional(&self) -> Conditional {
        self.inner.conditional
    }

    /// Collects garbage with [`GcOptions::beside_servers`]: an object
    /// store is shared, so servers may be pushing to it meanwhile.
    pub async fn gc(&self) -> Result<GcReport> {
        self.gc_with(&GcOptions::beside_servers()).await
    }

    /// Collects garbage, safe while servers use the store (see the crate
    /// docs). Only one collection runs at a time: a second is `DENIED`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> oci_core::Result<()> {
    /// let registry = oci_objstore::ObjRegistry::open("memory://").await?;
    /// let report = registry.gc().await?;
    /// assert_eq!(report.blobs_removed, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn gc_with(&self, options: &GcOptions) -> Result<GcReport> {
        gc::collect(&self.inner, options).await
    }
}

impl std::fmt::Debug for ObjRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjRegistry")
            .field("store", &self.url)
            .field("conditional", &self.inner.conditional)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Registry for ObjRegistry {
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        blobs::get(&self.inner, repo, digest, None).await
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        blobs::get(&self.inner, repo, digest, Some(range)).await
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        blobs::resolve(&self.inner, repo, digest).await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        manifests::get(&self.inner, repo, digest).await
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        manifests::get_tag(&self.inner, repo, tag).await
    }

    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        Ok(manifests::get(&self.inner, repo, digest).await?.descriptor)
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        Ok(manifests::get_tag(&self.inner, repo, tag).await?.descriptor)
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<Descriptor> {
        blobs::push(&self.inner, repo, digest, size, body).await
    }

    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(uploads::start(&self.inner, repo).await?))
    }

    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(uploads::resume(&self.inner, repo, id).await?))
    }

    async fn expire_uploads(&self, idle: std::time::Duration) -> Result<u64> {
        uploads::expire(&self.inner, idle).await
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Descriptor> {
        blobs::mount(&self.inner, repo, from, digest).await
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        manifests::push(&self.inner, repo, manifest, tags).await
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        blobs::delete(&self.inner, repo, digest).await
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        manifests::delete(&self.inner, repo, digest).await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        manifests::delete_tag(&self.inner, repo, tag).await
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        lists::tags(&self.inner, repo, options)
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        lists::referrers(&self.inner, repo, subject, artifact_type)
    }

    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        lists::repositories(&self.inner, options)
    }
}
