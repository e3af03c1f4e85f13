//! [`Traced`]: the wrapper and its `Registry` implementation.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use oci_core::{
    BlobReader, BlobStream, BlobWriter, Descriptor, Digest, ListOptions, ListStream, Manifest,
    RangeRequest, Registry, RepoName, Result, Tag,
};

use crate::call::Call;
use crate::streams::{CountedRead, count_body, traced_list};
use crate::writer::trace_writer;

/// A registry whose every call is traced with `tracing`, then delegated.
///
/// Named `Traced` rather than `Debug` so it never reads as the standard
/// `Debug` trait.
pub struct Traced {
    inner: Arc<dyn Registry>,
}

impl Traced {
    /// Traces the calls made to `inner`.
    pub fn new(inner: Arc<dyn Registry>) -> Traced {
        Traced { inner }
    }

    /// The wrapped registry.
    pub fn inner(&self) -> &Arc<dyn Registry> {
        &self.inner
    }
}

/// A reader whose stream reports its bytes at the end, if traced.
fn traced_reader(call: Call, opened: Result<BlobReader>) -> Result<BlobReader> {
    call.finish("blob opened", &opened, None);
    match opened {
        Ok(mut reader) if call.is_on() => {
            let stream = std::mem::replace(&mut reader.stream, futures::stream::empty().boxed());
            reader.stream = CountedRead::new(stream, call).boxed();
            Ok(reader)
        }
        other => other,
    }
}

#[async_trait]
impl Registry for Traced {
    // Every method is overridden, to be traced; a method added to the
    // trait later is forwarded untraced until it is.
    fn forward_to(&self) -> Option<&dyn Registry> {
        Some(self.inner.as_ref())
    }

    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        let call = Call::start("get_blob").repo(repo).digest(digest);
        traced_reader(call, self.inner.get_blob(repo, digest).await)
    }

    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        let call = Call::start("get_blob_range").repo(repo).digest(digest);
        let opened = self.inner.get_blob_range(repo, digest, range).await;
        traced_reader(call, opened)
    }

    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        let call = Call::start("resolve_blob").repo(repo).digest(digest);
        call.run(self.inner.resolve_blob(repo, digest)).await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        let call = Call::start("get_manifest").repo(repo).digest(digest);
        call.run(self.inner.get_manifest(repo, digest)).await
    }

    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        let call = Call::start("get_tag").repo(repo).tag(tag);
        call.run(self.inner.get_tag(repo, tag)).await
    }

    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        let call = Call::start("resolve_manifest").repo(repo).digest(digest);
        call.run(self.inner.resolve_manifest(repo, digest)).await
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        let call = Call::start("resolve_tag").repo(repo).tag(tag);
        call.run(self.inner.resolve_tag(repo, tag)).await
    }

    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<Descriptor> {
        let call = Call::start("push_blob").repo(repo).digest(digest);
        if !call.is_on() {
            return self.inner.push_blob(repo, digest, size, body).await;
        }
        let (body, counter) = count_body(body);
        let result = self.inner.push_blob(repo, digest, size, body).await;
        call.finish("call", &result, Some(counter.load(Ordering::Relaxed)));
        result
    }

    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        let call = Call::start("push_blob_chunked").repo(repo);
        let opened = self.inner.push_blob_chunked(repo).await;
        call.finish("call", &opened, None);
        trace_writer(&call, repo, opened)
    }

    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        let call = Call::start("push_blob_chunked_resume")
            .repo(repo)
            .upload(id);
        let opened = self.inner.push_blob_chunked_resume(repo, id).await;
        call.finish("call", &opened, None);
        trace_writer(&call, repo, opened)
    }

    async fn expire_uploads(&self, idle: Duration) -> Result<u64> {
        let call = Call::start("expire_uploads");
        call.run(self.inner.expire_uploads(idle)).await
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Descriptor> {
        let call = Call::start("mount_blob")
            .repo(repo)
            .from(from)
            .digest(digest);
        call.run(self.inner.mount_blob(repo, from, digest)).await
    }

    async fn push_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        let mut call = Call::start("push_manifest")
            .repo(repo)
            .digest(manifest.digest());
        if let [tag] = tags {
            call = call.tag(tag);
        }
        let result = self.inner.push_manifest(repo, manifest, tags).await;
        call.finish("call", &result, Some(manifest.bytes.len() as u64));
        result
    }

    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let call = Call::start("delete_blob").repo(repo).digest(digest);
        call.run(self.inner.delete_blob(repo, digest)).await
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let call = Call::start("delete_manifest").repo(repo).digest(digest);
        call.run(self.inner.delete_manifest(repo, digest)).await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        let call = Call::start("delete_tag").repo(repo).tag(tag);
        call.run(self.inner.delete_tag(repo, tag)).await
    }

    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        let call = Call::start("tags").repo(repo);
        traced_list(self.inner.tags(repo, options), call, |t| t)
    }

    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        let call = Call::start("referrers").repo(repo).digest(subject);
        let list = self.inner.referrers(repo, subject, artifact_type);
        traced_list(list, call, |d| &d.digest)
    }

    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        let call = Call::start("repositories");
        traced_list(self.inner.repositories(options), call, |r| r)
    }
}
