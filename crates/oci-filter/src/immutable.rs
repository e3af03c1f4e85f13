//! [`Immutable`]: tags, once set, never move; nothing is deleted.

use std::sync::Arc;

use async_trait::async_trait;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Descriptor, Digest, Error, ErrorCode, ListOptions,
    ListStream, Manifest, RangeRequest, Registry, RepoName, Result, Tag,
};
use tokio::sync::Mutex;

/// A registry whose tags can only be re-pushed with the digest they
/// already have (`DENIED` otherwise, also under concurrent pushes) and
/// whose deletes are all `DENIED`.
///
/// ```
/// use std::sync::Arc;
/// let immutable = oci_filter::Immutable::new(Arc::new(oci_mem::MemRegistry::new()));
/// # let _ = immutable;
/// ```
pub struct Immutable {
    inner: Arc<dyn Registry>,
    /// Serialises tag checks with the pushes they guard.
    tagging: Mutex<()>,
}

impl Immutable {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Registry>) -> Immutable {
        Immutable {
            inner,
            tagging: Mutex::new(()),
        }
    }
}

fn denied(what: String) -> Error {
    Error::new(ErrorCode::Denied, what)
}

#[async_trait]
impl Registry for Immutable {
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        self.inner.get_blob(repo, digest).await
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        self.inner.get_blob_range(repo, digest, range).await
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.inner.resolve_blob(repo, digest).await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        self.inner.get_manifest(repo, digest).await
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        self.inner.get_tag(repo, tag).await
    }

    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.inner.resolve_manifest(repo, digest).await
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        self.inner.resolve_tag(repo, tag).await
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<Descriptor> {
        self.inner.push_blob(repo, digest, size, body).await
    }

    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        self.inner.push_blob_chunked(repo).await
    }

    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        self.inner.push_blob_chunked_resume(repo, id).await
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Descriptor> {
        self.inner.mount_blob(repo, from, digest).await
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        if tags.is_empty() {
            return self.inner.push_manifest(repo, manifest, tags).await;
        }
        let _held = self.tagging.lock().await;
        for tag in tags {
            match self.inner.resolve_tag(repo, tag).await {
                Ok(existing) if existing.digest != *manifest.digest() => {
                    return Err(denied(format!(
                        "tag {repo}:{tag} is immutable: it points at {}, not {}",
                        existing.digest,
                        manifest.digest()
                    )));
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        self.inner.push_manifest(repo, manifest, tags).await
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        Err(denied(format!(
            "the registry is immutable: cannot delete blob {digest} from {repo}"
        )))
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        Err(denied(format!(
            "the registry is immutable: cannot delete manifest {digest} from {repo}"
        )))
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        Err(denied(format!(
            "the registry is immutable: cannot delete tag {repo}:{tag}"
        )))
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        self.inner.tags(repo, options)
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        self.inner.referrers(repo, subject, artifact_type)
    }

    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        self.inner.repositories(options)
    }
}
