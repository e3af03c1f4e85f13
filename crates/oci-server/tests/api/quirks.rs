//! The server over registries that lack features or fail: what it answers
//! is decided by the registry's errors, never a blanket 500.

use std::sync::Arc;

use bytes::Bytes;
use oci_core::{
    BlobReader, BlobWriter, Descriptor, Digest, Error, ListOptions, ListStream, Registry, RepoName,
    Result, Tag, async_trait, registry::failed_list,
};

use crate::support::Harness;

/// Blobs and uploads of the inner registry, with a minimum chunk size; no
/// ranged reads; tag listings that fail internally.
struct Quirky(Arc<dyn Registry>);

struct MinChunk(Box<dyn BlobWriter>);

#[async_trait]
impl BlobWriter for MinChunk {
    fn id(&self) -> &str {
        self.0.id()
    }
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn chunk_min(&self) -> Option<u64> {
        Some(1024)
    }
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.0.write(data).await
    }
    async fn commit(self: Box<Self>, digest: &Digest) -> Result<Descriptor> {
        self.0.commit(digest).await
    }
    async fn cancel(self: Box<Self>) -> Result<()> {
        self.0.cancel().await
    }
    async fn close(self: Box<Self>) -> Result<()> {
        self.0.close().await
    }
}

#[async_trait]
impl Registry for Quirky {
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        self.0.get_blob(repo, digest).await
    }
    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        self.0.resolve_blob(repo, digest).await
    }
    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(MinChunk(self.0.push_blob_chunked(repo).await?)))
    }
    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(MinChunk(
            self.0.push_blob_chunked_resume(repo, id).await?,
        )))
    }
    fn tags(&self, _repo: &RepoName, _options: &ListOptions) -> ListStream<Tag> {
        failed_list(Error::internal("the tag index is corrupt"))
    }
}

async fn harness() -> Harness {
    Harness::wrapped(|mem| Arc::new(Quirky(mem))).await
}

#[tokio::test]
async fn upload_sessions_announce_the_minimum_chunk() {
    let h = harness().await;
    let r = h.send("POST", "/v2/a/blobs/uploads/", &[], "").await;
    assert_eq!(r.status, 202);
    assert_eq!(r.header("oci-chunk-min-length"), Some("1024"));
}

#[tokio::test]
async fn ranges_fall_back_to_the_whole_blob_without_ranged_reads() {
    let h = harness().await;
    let digest = h.blob("a", b"0123456789").await;
    let r = h
        .send(
            "GET",
            &format!("/v2/a/blobs/{digest}"),
            &[("range", "bytes=2-3")],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-range").is_none());
    assert_eq!(&r.body[..], b"0123456789");
}

#[tokio::test]
async fn missing_operations_are_405_and_failures_500() {
    let h = harness().await;
    h.image("a", &["v1"], "").await;
    // Quirky does not serve manifests at all.
    h.get("/v2/a/manifests/v1")
        .await
        .assert_error(405, "UNSUPPORTED");
    h.get("/v2/_catalog").await.assert_error(405, "UNSUPPORTED");
    h.get("/v2/a/tags/list").await.assert_error(500, "UNKNOWN");
    h.get("/v2/a/tags/list?n=1")
        .await
        .assert_error(500, "UNKNOWN");
}

/// A registry whose repository listing fails after `names` names.
struct BreaksMidList {
    names: usize,
}

#[async_trait]
impl Registry for BreaksMidList {
    fn repositories(&self, _options: &ListOptions) -> ListStream<RepoName> {
        let names = (0..self.names).map(|i| Ok(format!("repository-{i:06}").parse().unwrap()));
        let failure = Err(Error::internal("the repository index is corrupt"));
        Box::pin(futures::stream::iter(names.chain([failure])))
    }
}

#[tokio::test]
async fn a_listing_that_fails_early_answers_with_the_error() {
    let h = Harness::wrapped(|_| Arc::new(BreaksMidList { names: 2 })).await;
    h.get("/v2/_catalog?n=10")
        .await
        .assert_error(500, "UNKNOWN");
    h.get("/v2/_catalog").await.assert_error(500, "UNKNOWN");
}

#[tokio::test]
async fn a_long_listing_that_fails_midway_never_reads_as_complete() {
    // 20000 names of 17 bytes: well past what is gathered before the
    // status goes out.
    let h = Harness::wrapped(|_| Arc::new(BreaksMidList { names: 20_000 })).await;
    h.get("/v2/_catalog?n=100000")
        .await
        .assert_error(500, "UNKNOWN");
    // Streamed, the failure breaks the exchange off, so a client cannot
    // take the names that came for the whole list.
    if let Ok((status, body)) = h.get_fallible("/v2/_catalog").await {
        panic!(
            "a broken listing read as whole: {status}, {} bytes",
            body.len()
        );
    }
}

/// A registry whose repository listing is a stream that must not be polled
/// after its end (as `futures::stream::unfold` streams are).
struct StrictStream;

#[async_trait]
impl Registry for StrictStream {
    fn repositories(&self, _options: &ListOptions) -> ListStream<RepoName> {
        Box::pin(futures::stream::unfold(0, |i| async move {
            (i < 3).then(|| (Ok(format!("r{i}").parse().unwrap()), i + 1))
        }))
    }
}

#[tokio::test]
async fn listings_are_not_polled_past_their_end() {
    let h = Harness::wrapped(|_| Arc::new(StrictStream)).await;
    let r = h.get("/v2/_catalog").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["repositories"],
        serde_json::json!(["r0", "r1", "r2"])
    );
}
