//! [`Prefix`]: the inner registry's `prefix/…` namespace served as the root.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use oci_core::registry::failed_list;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Descriptor, Digest, ListOptions, ListStream, Manifest,
    RangeRequest, Registry, RepoName, Result, Tag,
};

/// Serves `inner`'s repositories below `prefix/` as if they were at the root:
/// `app` here is `prefix/app` there.
///
/// ```
/// use std::sync::Arc;
/// let tenant = oci_filter::Prefix::new(Arc::new(oci_mem::MemRegistry::new()), "tenants/acme".parse().unwrap());
/// # let _ = tenant;
/// ```
pub struct Prefix {
    inner: Arc<dyn Registry>,
    prefix: RepoName,
}

impl Prefix {
    /// Wraps `inner` under `prefix`.
    pub fn new(inner: Arc<dyn Registry>, prefix: RepoName) -> Prefix {
        Prefix { inner, prefix }
    }

    fn map(&self, repo: &RepoName) -> Result<RepoName> {
        repo.prefixed(&self.prefix)
    }
}

#[async_trait]
impl Registry for Prefix {
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        self.inner.get_blob(&self.map(repo)?, digest).await
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        self.inner
            .get_blob_range(&self.map(repo)?, digest, range)
            .await
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.inner.resolve_blob(&self.map(repo)?, digest).await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        self.inner.get_manifest(&self.map(repo)?, digest).await
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        self.inner.get_tag(&self.map(repo)?, tag).await
    }

    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.inner.resolve_manifest(&self.map(repo)?, digest).await
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        self.inner.resolve_tag(&self.map(repo)?, tag).await
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<Descriptor> {
        self.inner
            .push_blob(&self.map(repo)?, digest, size, body)
            .await
    }

    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        self.inner.push_blob_chunked(&self.map(repo)?).await
    }

    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        self.inner
            .push_blob_chunked_resume(&self.map(repo)?, id)
            .await
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Descriptor> {
        self.inner
            .mount_blob(&self.map(repo)?, &self.map(from)?, digest)
            .await
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        self.inner
            .push_manifest(&self.map(repo)?, manifest, tags)
            .await
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        self.inner.delete_blob(&self.map(repo)?, digest).await
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        self.inner.delete_manifest(&self.map(repo)?, digest).await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        self.inner.delete_tag(&self.map(repo)?, tag).await
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        match self.map(repo) {
            Ok(r) => self.inner.tags(&r, options),
            Err(e) => failed_list(e),
        }
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        match self.map(repo) {
            Ok(r) => self.inner.referrers(&r, subject, artifact_type),
            Err(e) => failed_list(e),
        }
    }

    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        // Start inside the prefix's range of the sorted inner catalog and
        // stop at its end.
        let last = match &options.last {
            Some(last) => format!("{}/{last}", self.prefix),
            None => format!("{}/", self.prefix),
        };
        let inner_options = ListOptions {
            last: Some(last),
            n: None,
        };
        let prefix = self.prefix.clone();
        let listed = self
            .inner
            .repositories(&inner_options)
            .take_while(move |item| {
                let inside = item
                    .as_ref()
                    .map_or(true, |r| r.strip_prefix(&prefix).is_some());
                futures::future::ready(inside)
            })
            .map({
                let prefix = self.prefix.clone();
                move |item| item.map(|r| r.strip_prefix(&prefix).unwrap_or(r))
            });
        match options.n {
            Some(n) => listed.take(n).boxed(),
            None => listed.boxed(),
        }
    }
}
