//! [`Guarded`]: a registry whose every call is first checked by a
//! [`Policy`]. `ReadOnly`, `AccessChecker` and `Select` are policies.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use oci_core::registry::failed_list;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Descriptor, Digest, ListOptions, ListStream, Manifest,
    RangeRequest, Registry, RepoName, Result, Tag,
};

/// What a call does to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reads blobs, manifests or tags.
    Read,
    /// Pushes blobs, manifests or tags (also the target of a mount).
    Write,
    /// Deletes blobs, manifests or tags.
    Delete,
    /// Lists tags or referrers.
    List,
}

/// Decides whether a call may go on.
pub trait Policy: Send + Sync + 'static {
    /// `Ok` to let the call through, or the error to answer with.
    fn check(&self, repo: &RepoName, access: Access) -> Result<()>;
}

/// A registry whose calls pass a [`Policy`] first; the catalog shows only
/// repositories the policy lets be read.
pub struct Guarded<P> {
    inner: Arc<dyn Registry>,
    policy: Arc<P>,
}

impl<P: Policy> Guarded<P> {
    /// Wraps `inner` with `policy`.
    pub fn with_policy(inner: Arc<dyn Registry>, policy: P) -> Guarded<P> {
        Guarded {
            inner,
            policy: Arc::new(policy),
        }
    }

    /// The wrapped registry.
    pub fn inner(&self) -> &Arc<dyn Registry> {
        &self.inner
    }
}

#[async_trait]
impl<P: Policy> Registry for Guarded<P> {
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        self.policy.check(repo, Access::Read)?;
        self.inner.get_blob(repo, digest).await
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        self.policy.check(repo, Access::Read)?;
        self.inner.get_blob_range(repo, digest, range).await
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.policy.check(repo, Access::Read)?;
        self.inner.resolve_blob(repo, digest).await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        self.policy.check(repo, Access::Read)?;
        self.inner.get_manifest(repo, digest).await
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        self.policy.check(repo, Access::Read)?;
        self.inner.get_tag(repo, tag).await
    }

    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.policy.check(repo, Access::Read)?;
        self.inner.resolve_manifest(repo, digest).await
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        self.policy.check(repo, Access::Read)?;
        self.inner.resolve_tag(repo, tag).await
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<Descriptor> {
        self.policy.check(repo, Access::Write)?;
        self.inner.push_blob(repo, digest, size, body).await
    }

    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        self.policy.check(repo, Access::Write)?;
        self.inner.push_blob_chunked(repo).await
    }

    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        self.policy.check(repo, Access::Write)?;
        self.inner.push_blob_chunked_resume(repo, id).await
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Descriptor> {
        self.policy.check(from, Access::Read)?;
        self.policy.check(repo, Access::Write)?;
        self.inner.mount_blob(repo, from, digest).await
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        self.policy.check(repo, Access::Write)?;
        self.inner.push_manifest(repo, manifest, tags).await
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        self.policy.check(repo, Access::Delete)?;
        self.inner.delete_blob(repo, digest).await
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        self.policy.check(repo, Access::Delete)?;
        self.inner.delete_manifest(repo, digest).await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        self.policy.check(repo, Access::Delete)?;
        self.inner.delete_tag(repo, tag).await
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        match self.policy.check(repo, Access::List) {
            Ok(()) => self.inner.tags(repo, options),
            Err(e) => failed_list(e),
        }
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        match self.policy.check(repo, Access::List) {
            Ok(()) => self.inner.referrers(repo, subject, artifact_type),
            Err(e) => failed_list(e),
        }
    }

    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        let inner_options = ListOptions {
            last: options.last.clone(),
            n: None,
        };
        let policy = Arc::clone(&self.policy);
        let listed = self.inner.repositories(&inner_options).filter(move |item| {
            let keep = item
                .as_ref()
                .map_or(true, |repo| policy.check(repo, Access::Read).is_ok());
            futures::future::ready(keep)
        });
        match options.n {
            Some(n) => listed.take(n).boxed(),
            None => listed.boxed(),
        }
    }
}
