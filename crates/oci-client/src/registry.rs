//! [`oci_core::Registry`] for [`Client`]: each method delegates to the
//! module that speaks that part of the protocol.

use async_trait::async_trait;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Descriptor, Digest, ListOptions, ListStream, Manifest,
    RangeRequest, Registry, RepoName, Result, Tag,
};

use crate::client::Client;
use crate::writer::ChunkedWriter;

#[async_trait]
impl Registry for Client {
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        self.read_blob(repo, digest).await
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        self.read_blob_range(repo, digest, range).await
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.head_blob(repo, digest).await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        self.fetch_manifest(repo, &digest.to_string(), Some(digest))
            .await
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        self.fetch_manifest(repo, tag.as_str(), None).await
    }

    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.head_manifest(repo, &digest.to_string(), Some(digest))
            .await
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        self.head_manifest(repo, tag.as_str(), None).await
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<Descriptor> {
        self.upload_blob(repo, digest, size, body).await
    }

    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        let session = self.start_upload(repo).await?;
        Ok(Box::new(ChunkedWriter::new(
            self.clone(),
            repo.clone(),
            session,
        )))
    }

    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        let writer = ChunkedWriter::resume(self.clone(), repo.clone(), id).await?;
        Ok(Box::new(writer))
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Descriptor> {
        self.mount(repo, from, digest).await
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        self.put_manifest(repo, manifest, tags).await
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        self.remove_blob(repo, digest).await
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        self.remove_manifest(repo, digest).await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        self.remove_tag(repo, tag).await
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        self.list_tags(repo, options)
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        self.list_referrers(repo, subject, artifact_type)
    }

    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        self.list_repositories(options)
    }
}
