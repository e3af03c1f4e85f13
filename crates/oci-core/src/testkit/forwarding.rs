//! Whether a wrapper lets every call through: a [`Recorder`] to wrap,
//! and [`lost_calls`] to call every method of the stack once.
//!
//! A wrapper may answer a call itself (`DENIED` for a write to a
//! read-only registry); what it must not do is lose one, answering
//! `UNSUPPORTED` for something the registry it wraps supports. The
//! recorder supports everything, so over it any `UNSUPPORTED` answer is
//! a lost call.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, ErrorCode, Result};
use crate::manifest::Manifest;
use crate::reference::{RepoName, Tag};
use crate::registry::{
    BlobReader, BlobStream, BlobWriter, ListOptions, ListStream, RangeRequest, Registry,
    bytes_stream, failed_list,
};

/// Every call [`lost_calls`] makes: the `Registry` methods, then
/// the `BlobWriter` methods (prefixed `writer.`).
pub const ALL_CALLS: &[&str] = &[
    "get_blob",
    "get_blob_range",
    "resolve_blob",
    "get_manifest",
    "get_tag",
    "resolve_manifest",
    "resolve_tag",
    "push_blob",
    "push_blob_chunked",
    "push_blob_chunked_resume",
    "expire_uploads",
    "mount_blob",
    "push_manifest",
    "delete_blob",
    "delete_manifest",
    "delete_tag",
    "tags",
    "referrers",
    "repositories",
    "writer.chunk_min",
    "writer.write",
    "writer.commit",
    "writer.cancel",
    "writer.close",
];

/// The minimum chunk size a [`Recorder`]'s writers ask for.
pub const RECORDER_CHUNK_MIN: u64 = 7;

/// A registry that notes every call it receives and answers it with an
/// `UNKNOWN` error naming the method, except that uploads open: its
/// writers note their calls too.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    seen: Arc<Mutex<Vec<&'static str>>>,
}

impl Recorder {
    /// A recorder that has seen nothing.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// The calls received so far, in order (writer calls prefixed
    /// `writer.`).
    pub fn seen(&self) -> Vec<&'static str> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Notes `call` and returns the error it is answered with.
    fn note(&self, call: &'static str) -> Error {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call);
        Error::new(ErrorCode::Unknown, format!("the recorder saw {call}"))
    }

    fn writer(&self) -> Box<dyn BlobWriter> {
        Box::new(RecordingWriter(self.clone()))
    }
}

#[async_trait::async_trait]
impl Registry for Recorder {
    async fn get_blob(&self, _: &RepoName, _: &Digest) -> Result<BlobReader> {
        Err(self.note("get_blob"))
    }

    async fn get_blob_range(
        &self,
        _: &RepoName,
        _: &Digest,
        _: RangeRequest,
    ) -> Result<BlobReader> {
        Err(self.note("get_blob_range"))
    }

    async fn resolve_blob(&self, _: &RepoName, _: &Digest) -> Result<Descriptor> {
        Err(self.note("resolve_blob"))
    }

    async fn get_manifest(&self, _: &RepoName, _: &Digest) -> Result<Manifest> {
        Err(self.note("get_manifest"))
    }

    async fn get_tag(&self, _: &RepoName, _: &Tag) -> Result<Manifest> {
        Err(self.note("get_tag"))
    }

    async fn resolve_manifest(&self, _: &RepoName, _: &Digest) -> Result<Descriptor> {
        Err(self.note("resolve_manifest"))
    }

    async fn resolve_tag(&self, _: &RepoName, _: &Tag) -> Result<Descriptor> {
        Err(self.note("resolve_tag"))
    }

    async fn push_blob(
        &self,
        _: &RepoName,
        _: &Digest,
        _: Option<u64>,
        _: BlobStream,
    ) -> Result<Descriptor> {
        Err(self.note("push_blob"))
    }

    async fn push_blob_chunked(&self, _: &RepoName) -> Result<Box<dyn BlobWriter>> {
        self.note("push_blob_chunked");
        Ok(self.writer())
    }

    async fn push_blob_chunked_resume(&self, _: &RepoName, _: &str) -> Result<Box<dyn BlobWriter>> {
        self.note("push_blob_chunked_resume");
        Ok(self.writer())
    }

    async fn expire_uploads(&self, _: std::time::Duration) -> Result<u64> {
        Err(self.note("expire_uploads"))
    }

    async fn mount_blob(&self, _: &RepoName, _: &RepoName, _: &Digest) -> Result<Descriptor> {
        Err(self.note("mount_blob"))
    }

    async fn push_manifest(&self, _: &RepoName, _: &Manifest, _: &[Tag]) -> Result<Descriptor> {
        Err(self.note("push_manifest"))
    }

    async fn delete_blob(&self, _: &RepoName, _: &Digest) -> Result<()> {
        Err(self.note("delete_blob"))
    }

    async fn delete_manifest(&self, _: &RepoName, _: &Digest) -> Result<()> {
        Err(self.note("delete_manifest"))
    }

    async fn delete_tag(&self, _: &RepoName, _: &Tag) -> Result<()> {
        Err(self.note("delete_tag"))
    }

    fn tags(&self, _: &RepoName, _: &ListOptions) -> ListStream<Tag> {
        failed_list(self.note("tags"))
    }

    fn referrers(&self, _: &RepoName, _: &Digest, _: Option<&str>) -> ListStream<Descriptor> {
        failed_list(self.note("referrers"))
    }

    fn repositories(&self, _: &ListOptions) -> ListStream<RepoName> {
        failed_list(self.note("repositories"))
    }
}

/// A [`Recorder`]'s upload.
struct RecordingWriter(Recorder);

#[async_trait::async_trait]
impl BlobWriter for RecordingWriter {
    fn id(&self) -> &str {
        "recorded"
    }

    fn size(&self) -> u64 {
        0
    }

    fn chunk_min(&self) -> Option<u64> {
        self.0.note("writer.chunk_min");
        Some(RECORDER_CHUNK_MIN)
    }

    async fn write(&mut self, _: Bytes) -> Result<()> {
        Err(self.0.note("writer.write"))
    }

    async fn commit(self: Box<Self>, _: &Digest) -> Result<Descriptor> {
        Err(self.0.note("writer.commit"))
    }

    async fn cancel(self: Box<Self>) -> Result<()> {
        Err(self.0.note("writer.cancel"))
    }

    async fn close(self: Box<Self>) -> Result<()> {
        Err(self.0.note("writer.close"))
    }
}

/// Calls every method of `registry` once, in the order of [`ALL_CALLS`],
/// and every method of the writers it opens, and returns the calls lost
/// on the way to a [`Recorder`] underneath: those answered `UNSUPPORTED`,
/// a writer's `chunk_min` that is not [`RECORDER_CHUNK_MIN`], and a
/// writer's `close` answered `Ok` (the recorder answers it with an
/// error). Repositories are under `forwarding/`.
pub async fn lost_calls(registry: &dyn Registry) -> Vec<&'static str> {
    let repo: RepoName = parse("forwarding/app");
    let from: RepoName = parse("forwarding/from");
    let tag: Tag = parse("v1");
    let digest = Digest::sha256(b"forwarding");
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let manifest = match Manifest::from_json(body.to_vec()) {
        Ok(m) => m,
        Err(e) => panic!("the forwarding check's manifest does not parse: {e}"),
    };
    let data = Bytes::from_static(b"forwarding");
    let options = ListOptions::all();
    let range = RangeRequest::from(0);
    let answers: Vec<(&'static str, Result<()>)> = vec![
        ("get_blob", drop_ok(registry.get_blob(&repo, &digest).await)),
        (
            "get_blob_range",
            drop_ok(registry.get_blob_range(&repo, &digest, range).await),
        ),
        (
            "resolve_blob",
            drop_ok(registry.resolve_blob(&repo, &digest).await),
        ),
        (
            "get_manifest",
            drop_ok(registry.get_manifest(&repo, &digest).await),
        ),
        ("get_tag", drop_ok(registry.get_tag(&repo, &tag).await)),
        (
            "resolve_manifest",
            drop_ok(registry.resolve_manifest(&repo, &digest).await),
        ),
        (
            "resolve_tag",
            drop_ok(registry.resolve_tag(&repo, &tag).await),
        ),
        (
            "push_blob",
            drop_ok(
                registry
                    .push_blob(&repo, &digest, None, bytes_stream(data.clone(), 4))
                    .await,
            ),
        ),
        (
            "push_blob_chunked",
            drop_ok(registry.push_blob_chunked(&repo).await),
        ),
        (
            "push_blob_chunked_resume",
            drop_ok(registry.push_blob_chunked_resume(&repo, "recorded").await),
        ),
        (
            "expire_uploads",
            drop_ok(
                registry
                    .expire_uploads(std::time::Duration::from_secs(60))
                    .await,
            ),
        ),
        (
            "mount_blob",
            drop_ok(registry.mount_blob(&repo, &from, &digest).await),
        ),
        (
            "push_manifest",
            drop_ok(
                registry
                    .push_manifest(&repo, &manifest, std::slice::from_ref(&tag))
                    .await,
            ),
        ),
        (
            "delete_blob",
            drop_ok(registry.delete_blob(&repo, &digest).await),
        ),
        (
            "delete_manifest",
            drop_ok(registry.delete_manifest(&repo, &digest).await),
        ),
        (
            "delete_tag",
            drop_ok(registry.delete_tag(&repo, &tag).await),
        ),
        ("tags", first_item(registry.tags(&repo, &options)).await),
        (
            "referrers",
            first_item(registry.referrers(&repo, &digest, None)).await,
        ),
        (
            "repositories",
            first_item(registry.repositories(&options)).await,
        ),
    ];
    let mut lost: Vec<&'static str> = answers
        .into_iter()
        .filter(|(_, answer)| answer.as_ref().is_err_and(|e| e.is(ErrorCode::Unsupported)))
        .map(|(call, _)| call)
        .collect();
    lost.extend(lost_writer_calls(registry, &repo, &digest, &data).await);
    lost
}

/// The writer calls lost, on writers `registry` opens (none when it
/// opens none).
async fn lost_writer_calls(
    registry: &dyn Registry,
    repo: &RepoName,
    digest: &Digest,
    data: &Bytes,
) -> Vec<&'static str> {
    let unsupported = |r: &Result<()>| r.as_ref().is_err_and(|e| e.is(ErrorCode::Unsupported));
    let mut lost = Vec::new();
    let Ok(mut writer) = registry.push_blob_chunked(repo).await else {
        return lost;
    };
    if writer.chunk_min() != Some(RECORDER_CHUNK_MIN) {
        lost.push("writer.chunk_min");
    }
    if unsupported(&writer.write(data.clone()).await) {
        lost.push("writer.write");
    }
    if unsupported(&drop_ok(writer.commit(digest).await)) {
        lost.push("writer.commit");
    }
    let ends: [(&'static str, bool); 2] = [("writer.cancel", true), ("writer.close", false)];
    for (call, cancel) in ends {
        let Ok(writer) = registry.push_blob_chunked(repo).await else {
            continue;
        };
        let ended = if cancel {
            writer.cancel().await
        } else {
            writer.close().await
        };
        let dropped_close = !cancel && ended.is_ok();
        if unsupported(&ended) || dropped_close {
            lost.push(call);
        }
    }
    lost
}

fn parse<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Display,
{
    match s.parse() {
        Ok(v) => v,
        Err(e) => panic!("{s:?} does not parse: {e}"),
    }
}

fn drop_ok<T>(result: Result<T>) -> Result<()> {
    result.map(|_| ())
}

/// The first item of a listing, or the error that ends it.
async fn first_item<T>(list: ListStream<T>) -> Result<()> {
    use futures::StreamExt;
    let mut list = list;
    match list.next().await {
        Some(item) => item.map(|_| ()),
        None => Ok(()),
    }
}
