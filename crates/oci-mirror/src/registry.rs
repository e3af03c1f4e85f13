//! The mirror as a [`Registry`]: each request routed to its upstream
//! (`upstream.rs`) and answered by the blob, manifest or tag path; writes
//! refused; tag listings and referrers from the upstream (the cache's
//! when it is down: `failure.rs`), the catalog from the cache.

use std::time::Duration;

use async_trait::async_trait;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Descriptor, Digest, ListOptions, ListStream, Manifest,
    RangeRequest, Registry, RepoName, Result, Tag,
};

use crate::failure::{listing, read_only};
use crate::mirror::Mirror;

#[async_trait]
impl Registry for Mirror {
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        let target = self.upstreams.route(repo)?;
        self.blob(&target, digest).await.map(|(reader, _)| reader)
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        let target = self.upstreams.route(repo)?;
        self.blob_range(&target, digest, range).await
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        let target = self.upstreams.route(repo)?;
        self.blob_head(&target, digest).await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        let target = self.upstreams.route(repo)?;
        self.manifest(&target, digest, None, true)
            .await
            .map(|kept| kept.manifest)
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        let target = self.upstreams.route(repo)?;
        self.tag(&target, tag).await
    }

    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.get_manifest(repo, digest).await.map(|m| m.descriptor)
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        self.get_tag(repo, tag).await.map(|m| m.descriptor)
    }

    async fn push_blob(
        &self,
        _: &RepoName,
        _: &Digest,
        _: Option<u64>,
        _: BlobStream,
    ) -> Result<Descriptor> {
        Err(read_only())
    }

    async fn push_blob_chunked(&self, _: &RepoName) -> Result<Box<dyn BlobWriter>> {
        Err(read_only())
    }

    async fn push_blob_chunked_resume(&self, _: &RepoName, _: &str) -> Result<Box<dyn BlobWriter>> {
        Err(read_only())
    }

    async fn mount_blob(&self, _: &RepoName, _: &RepoName, _: &Digest) -> Result<Descriptor> {
        Err(read_only())
    }

    async fn push_manifest(&self, _: &RepoName, _: &Manifest, _: &[Tag]) -> Result<Descriptor> {
        Err(read_only())
    }

    async fn delete_blob(&self, _: &RepoName, _: &Digest) -> Result<()> {
        Err(read_only())
    }

    async fn delete_manifest(&self, _: &RepoName, _: &Digest) -> Result<()> {
        Err(read_only())
    }

    async fn delete_tag(&self, _: &RepoName, _: &Tag) -> Result<()> {
        Err(read_only())
    }

    async fn expire_uploads(&self, idle: Duration) -> Result<u64> {
        self.cache.expire_uploads(idle).await
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        match self.upstreams.route(repo) {
            Ok(target) => self.tag_list(target, options),
            Err(e) => oci_core::registry::failed_list(e),
        }
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        let target = match self.upstreams.route(repo) {
            Ok(target) => target,
            Err(e) => return oci_core::registry::failed_list(e),
        };
        let upstream = target
            .upstream
            .registry
            .referrers(&target.name, subject, artifact_type);
        let cache = self.cache.clone();
        let (subject, artifact_type) = (subject.clone(), artifact_type.map(str::to_owned));
        let shown = format!("referrers of {subject}");
        listing(
            target,
            "referrers",
            subject.to_string(),
            shown,
            upstream,
            move |repo| cache.referrers(repo, &subject, artifact_type.as_deref()),
        )
    }

    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        self.cache.repositories(options)
    }
}
