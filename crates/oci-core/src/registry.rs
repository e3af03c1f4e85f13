//! The [`Registry`] trait: one async interface to any registry, and the
//! blob reader and writer types it hands out.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::reference::{ManifestRef, RepoName, Tag};

/// A stream of blob bytes.
pub type BlobStream = BoxStream<'static, Result<Bytes>>;

/// A listing: items stream in order, an error ends it.
pub type ListStream<T> = BoxStream<'static, Result<T>>;

/// A blob being read: what it is, and its bytes.
pub struct BlobReader {
    /// The whole blob's descriptor (digest and full size).
    pub descriptor: Descriptor,
    /// For a ranged read, the inclusive byte range the stream carries.
    pub range: Option<ByteRange>,
    /// The bytes.
    pub stream: BlobStream,
}

impl BlobReader {
    /// Reads the whole stream into memory. For tests and small blobs only.
    pub async fn bytes(self) -> Result<Bytes> {
        let mut out = Vec::new();
        let mut s = self.stream;
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out.into())
    }
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("descriptor", &self.descriptor)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// An inclusive byte range `start..=end` of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive.
    pub end: u64,
}

impl ByteRange {
    /// The number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never true: a range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A request for part of a blob: `start` to `end` inclusive, or to the end
/// of the blob when `end` is `None`; a suffix of `last` bytes when `start`
/// is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeRequest {
    /// First byte, or `None` for a suffix request.
    pub start: Option<u64>,
    /// Last byte inclusive (or, for a suffix request, the suffix length).
    pub end: Option<u64>,
}

impl RangeRequest {
    /// Bytes `start..=end`.
    pub fn bounded(start: u64, end: u64) -> RangeRequest {
        RangeRequest {
            start: Some(start),
            end: Some(end),
        }
    }

    /// Bytes from `start` to the end.
    pub fn from(start: u64) -> RangeRequest {
        RangeRequest {
            start: Some(start),
            end: None,
        }
    }

    /// The concrete range within a blob of `size` bytes, or `RANGE_INVALID`.
    pub fn resolve(&self, size: u64) -> Result<ByteRange> {
        let bad = || {
            Error::new(
                crate::ErrorCode::RangeInvalid,
                format!("range {self} cannot be satisfied for a blob of {size} bytes"),
            )
        };
        let r = match (self.start, self.end) {
            (Some(start), end) => {
                let end = end.unwrap_or(u64::MAX).min(size.saturating_sub(1));
                if start >= size || end < start {
                    return Err(bad());
                }
                ByteRange { start, end }
            }
            (None, Some(suffix)) => {
                if suffix == 0 || size == 0 {
                    return Err(bad());
                }
                ByteRange {
                    start: size.saturating_sub(suffix),
                    end: size - 1,
                }
            }
            (None, None) => return Err(bad()),
        };
        Ok(r)
    }
}

impl std::fmt::Display for RangeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.start, self.end) {
            (Some(s), Some(e)) => write!(f, "bytes={s}-{e}"),
            (Some(s), None) => write!(f, "bytes={s}-"),
            (None, Some(n)) => write!(f, "bytes=-{n}"),
            (None, None) => write!(f, "bytes=-"),
        }
    }
}

/// An upload in progress. Written in order; `commit` checks the digest and
/// makes the blob visible; dropping it without commit or cancel leaves the
/// upload resumable by id with [`Registry::push_blob_chunked_resume`].
///
/// A writer that wraps another names it three times — by reference
/// ([`forward_to`](BlobWriter::forward_to)), by mutable reference
/// ([`forward_to_mut`](BlobWriter::forward_to_mut)) and by value
/// ([`into_forward`](BlobWriter::into_forward)), one for each kind of
/// receiver — and every method it does not override then reaches the
/// inner writer. `id` and `size` have no sensible answer of their own, so
/// every writer states them. A writer that wraps nothing answers the
/// methods it does not override `UNSUPPORTED` (`close`: `Ok`, nothing to
/// keep; `chunk_min`: no minimum).
///
/// ```
/// use bytes::Bytes;
/// use oci_core::{BlobWriter, Result};
///
/// /// Counts the bytes written; everything else is the inner writer's.
/// struct Counting {
///     inner: Box<dyn BlobWriter>,
///     bytes: u64,
/// }
///
/// #[oci_core::async_trait]
/// impl BlobWriter for Counting {
///     fn forward_to(&self) -> Option<&dyn BlobWriter> {
///         Some(self.inner.as_ref())
///     }
///     fn forward_to_mut(&mut self) -> Option<&mut dyn BlobWriter> {
///         Some(self.inner.as_mut())
///     }
///     fn into_forward(self: Box<Self>) -> Option<Box<dyn BlobWriter>> {
///         Some(self.inner)
///     }
///     fn id(&self) -> &str {
///         self.inner.id()
///     }
///     fn size(&self) -> u64 {
///         self.inner.size()
///     }
///     async fn write(&mut self, data: Bytes) -> Result<()> {
///         self.bytes += data.len() as u64;
///         self.inner.write(data).await
///     }
/// }
/// ```
#[async_trait]
pub trait BlobWriter: Send {
    /// The writer this one wraps, if any: the `&self` methods it does not
    /// override are forwarded to it. Name the same writer as
    /// [`forward_to_mut`](BlobWriter::forward_to_mut) and
    /// [`into_forward`](BlobWriter::into_forward).
    fn forward_to(&self) -> Option<&dyn BlobWriter> {
        None
    }

    /// The wrapped writer, for the `&mut self` methods not overridden.
    fn forward_to_mut(&mut self) -> Option<&mut dyn BlobWriter> {
        None
    }

    /// The wrapped writer taken out, for the methods that end the upload
    /// (`commit`, `cancel`, `close`) when not overridden.
    fn into_forward(self: Box<Self>) -> Option<Box<dyn BlobWriter>> {
        None
    }

    /// The upload's id, for resuming.
    fn id(&self) -> &str;

    /// Bytes received so far: the offset the next write continues at.
    fn size(&self) -> u64;

    /// The minimum chunk size the store wants (except for the last), if any.
    fn chunk_min(&self) -> Option<u64> {
        self.forward_to().and_then(|inner| inner.chunk_min())
    }

    /// Appends bytes.
    async fn write(&mut self, data: Bytes) -> Result<()> {
        match self.forward_to_mut() {
            Some(inner) => inner.write(data).await,
            None => Err(Error::unsupported("upload write")),
        }
    }

    /// Finishes the upload; the content must hash to `digest`.
    async fn commit(self: Box<Self>, digest: &Digest) -> Result<Descriptor> {
        match self.into_forward() {
            Some(inner) => inner.commit(digest).await,
            None => Err(Error::unsupported("upload commit")),
        }
    }

    /// Abandons the upload and frees what it holds.
    async fn cancel(self: Box<Self>) -> Result<()> {
        match self.into_forward() {
            Some(inner) => inner.cancel().await,
            None => Err(Error::unsupported("upload cancel")),
        }
    }

    /// Stops writing for now, keeping the upload resumable.
    async fn close(self: Box<Self>) -> Result<()> {
        match self.into_forward() {
            Some(inner) => inner.close().await,
            None => Ok(()),
        }
    }
}

/// Pagination of a listing: items after `last`, at most `n` of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Start after this item (exclusive).
    pub last: Option<String>,
    /// Return at most this many items.
    pub n: Option<usize>,
}

impl ListOptions {
    /// No pagination: everything.
    pub fn all() -> ListOptions {
        ListOptions::default()
    }

    /// Applies these options to a sorted iterator of names.
    pub fn apply<T, I>(&self, sorted: I) -> Vec<T>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let after = sorted
            .into_iter()
            .filter(|item| self.last.as_deref().is_none_or(|last| item.as_ref() > last));
        match self.n {
            Some(n) => after.take(n).collect(),
            None => after.collect(),
        }
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for RepoName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// The registry `registry` forwards `method` to, or `UNSUPPORTED`.
fn forwarded<'a, R>(registry: &'a R, method: &str) -> Result<&'a dyn Registry>
where
    R: Registry + ?Sized,
{
    registry
        .forward_to()
        .ok_or_else(|| Error::unsupported(method))
}

/// A listing that fails at once with `err`.
pub fn failed_list<T: Send + 'static>(err: Error) -> ListStream<T> {
    stream::once(async move { Err(err) }).boxed()
}

/// A listing computed whole by one future (a store that reads its index,
/// then yields the items): its items, or its one error.
pub fn list_from<T, F>(items: F) -> ListStream<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<Vec<T>>> + Send + 'static,
{
    stream::once(items)
        .flat_map(|found| match found {
            Ok(items) => stream::iter(items.into_iter().map(Ok)).left_stream(),
            Err(err) => stream::iter(vec![Err(err)]).right_stream(),
        })
        .boxed()
}

/// A referrers listing from what a store found for one subject: those of
/// `artifact_type` (all when `None`), in order of digest, as every store
/// answers.
pub fn referrers_from<F>(artifact_type: Option<&str>, found: F) -> ListStream<Descriptor>
where
    F: std::future::Future<Output = Result<Vec<Descriptor>>> + Send + 'static,
{
    let artifact_type = artifact_type.map(str::to_owned);
    list_from(async move {
        let mut found = found.await?;
        found.retain(|d| {
            artifact_type
                .as_deref()
                .is_none_or(|want| d.artifact_type.as_deref() == Some(want))
        });
        found.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(found)
    })
}

/// One interface to any registry: memory, disk, HTTP, or a stack of
/// wrappers over them.
///
/// Every method has a default body, so an implementation overrides what
/// it supports and new methods never break implementors. A store's
/// defaults answer `UNSUPPORTED`. A wrapper names the registry it wraps
/// with [`forward_to`](Registry::forward_to), and every method it does
/// not override — including methods added to the trait later — is
/// forwarded there: a wrapper is the methods it changes.
///
/// ```
/// use oci_core::{Registry, RepoName, Digest, ErrorCode};
/// struct Nothing;
/// #[async_trait::async_trait]
/// impl Registry for Nothing {}
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let repo: RepoName = "a/b".parse().unwrap();
/// let err = Nothing.resolve_blob(&repo, &Digest::sha256(b"")).await.unwrap_err();
/// assert!(err.is(ErrorCode::Unsupported));
/// # }
/// ```
///
/// A wrapper that changes one thing:
///
/// ```
/// use std::sync::Arc;
/// use oci_core::{Registry, RepoName, Digest, Error, ErrorCode, Result};
///
/// /// Every registry call goes to `inner`, except that blobs cannot be deleted.
/// struct KeepBlobs(Arc<dyn Registry>);
///
/// #[async_trait::async_trait]
/// impl Registry for KeepBlobs {
///     fn forward_to(&self) -> Option<&dyn Registry> {
///         Some(self.0.as_ref())
///     }
///
///     async fn delete_blob(&self, _: &RepoName, _: &Digest) -> Result<()> {
///         Err(Error::new(ErrorCode::Denied, "blobs are kept"))
///     }
/// }
/// ```
#[async_trait]
pub trait Registry: Send + Sync {
    /// The registry this one wraps, if it is a wrapper: every method not
    /// overridden is forwarded to it. `None` (the default) for a store,
    /// whose methods not overridden answer `UNSUPPORTED`.
    fn forward_to(&self) -> Option<&dyn Registry> {
        None
    }

    // ----- read -----

    /// Streams a blob.
    async fn get_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        forwarded(self, "get_blob")?.get_blob(repo, digest).await
    }

    /// Streams part of a blob.
    async fn get_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        forwarded(self, "get_blob_range")?
            .get_blob_range(repo, digest, range)
            .await
    }

    /// The descriptor of a blob, if the repository has it.
    async fn resolve_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        forwarded(self, "resolve_blob")?
            .resolve_blob(repo, digest)
            .await
    }

    /// A manifest by digest.
    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
        forwarded(self, "get_manifest")?
            .get_manifest(repo, digest)
            .await
    }

    /// The manifest a tag points at.
    async fn get_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
        forwarded(self, "get_tag")?.get_tag(repo, tag).await
    }

    /// The descriptor of a manifest by digest.
    async fn resolve_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        forwarded(self, "resolve_manifest")?
            .resolve_manifest(repo, digest)
            .await
    }

    /// The descriptor of the manifest a tag points at.
    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
        forwarded(self, "resolve_tag")?.resolve_tag(repo, tag).await
    }

    // ----- write -----

    /// Pushes a whole blob that must hash to `digest` (and be `size` bytes
    /// long, when given).
    async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<Descriptor> {
        forwarded(self, "push_blob")?
            .push_blob(repo, digest, size, body)
            .await
    }

    /// Starts a chunked upload.
    async fn push_blob_chunked(&self, repo: &RepoName) -> Result<Box<dyn BlobWriter>> {
        forwarded(self, "push_blob_chunked")?
            .push_blob_chunked(repo)
            .await
    }

    /// Resumes a chunked upload by id; `BLOB_UPLOAD_UNKNOWN` if there is none.
    async fn push_blob_chunked_resume(
        &self,
        repo: &RepoName,
        id: &str,
    ) -> Result<Box<dyn BlobWriter>> {
        forwarded(self, "push_blob_chunked_resume")?
            .push_blob_chunked_resume(repo, id)
            .await
    }

    /// Cancels every upload that has received nothing for at least `idle`
    /// and frees what it held; returns how many were cancelled. Servers
    /// call it periodically so abandoned sessions do not pile up.
    async fn expire_uploads(&self, idle: std::time::Duration) -> Result<u64> {
        forwarded(self, "expire_uploads")?
            .expire_uploads(idle)
            .await
    }

    /// Makes a blob of `from` available in `repo` without copying its
    /// bytes; `BLOB_UNKNOWN` when it cannot.
    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Descriptor> {
        forwarded(self, "mount_blob")?
            .mount_blob(repo, from, digest)
            .await
    }

    /// Pushes a manifest and points each of `tags` at it. Blobs and child
    /// manifests it references must exist (`MANIFEST_BLOB_UNKNOWN`).
    async fn push_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        forwarded(self, "push_manifest")?
            .push_manifest(repo, manifest, tags)
            .await
    }

    // ----- delete -----

    /// Deletes a blob from a repository.
    async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        forwarded(self, "delete_blob")?
            .delete_blob(repo, digest)
            .await
    }

    /// Deletes a manifest and every tag that points at it.
    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        forwarded(self, "delete_manifest")?
            .delete_manifest(repo, digest)
            .await
    }

    /// Deletes a tag, leaving the manifest.
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        forwarded(self, "delete_tag")?.delete_tag(repo, tag).await
    }

    // ----- list -----

    /// The repository's tags in lexical order; `NAME_UNKNOWN` if it does not exist.
    fn tags(&self, repo: &RepoName, options: &ListOptions) -> ListStream<Tag> {
        match self.forward_to() {
            Some(inner) => inner.tags(repo, options),
            None => failed_list(Error::unsupported("tags")),
        }
    }

    /// The manifests whose `subject` is `subject`, as referrer descriptors,
    /// optionally only those of one artifact type.
    fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ListStream<Descriptor> {
        match self.forward_to() {
            Some(inner) => inner.referrers(repo, subject, artifact_type),
            None => failed_list(Error::unsupported("referrers")),
        }
    }

    /// The registry's repositories in lexical order.
    fn repositories(&self, options: &ListOptions) -> ListStream<RepoName> {
        match self.forward_to() {
            Some(inner) => inner.repositories(options),
            None => failed_list(Error::unsupported("repositories")),
        }
    }
}

/// Fetches a manifest by tag or digest.
pub async fn get_manifest_ref(
    registry: &dyn Registry,
    repo: &RepoName,
    reference: &ManifestRef,
) -> Result<Manifest> {
    match reference {
        ManifestRef::Tag(t) => registry.get_tag(repo, t).await,
        ManifestRef::Digest(d) => registry.get_manifest(repo, d).await,
    }
}

/// Resolves a manifest by tag or digest.
pub async fn resolve_manifest_ref(
    registry: &dyn Registry,
    repo: &RepoName,
    reference: &ManifestRef,
) -> Result<Descriptor> {
    match reference {
        ManifestRef::Tag(t) => registry.resolve_tag(repo, t).await,
        ManifestRef::Digest(d) => registry.resolve_manifest(repo, d).await,
    }
}

/// Collects a listing into a vector.
pub async fn collect_list<T>(list: ListStream<T>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut list = list;
    while let Some(item) = list.next().await {
        out.push(item?);
    }
    Ok(out)
}

/// A blob stream from bytes held in memory, cut into chunks of at most
/// `chunk` bytes.
pub fn bytes_stream(data: Bytes, chunk: usize) -> BlobStream {
    let chunk = chunk.max(1);
    let mut parts = Vec::new();
    let mut rest = data;
    while rest.len() > chunk {
        parts.push(Ok(rest.split_to(chunk)));
    }
    if !rest.is_empty() {
        parts.push(Ok(rest));
    }
    stream::iter(parts).boxed()
}

/// The bytes `range` of a stream that starts at byte 0 (a whole blob);
/// stops reading once the range is complete.
pub fn slice_stream(body: BlobStream, range: ByteRange) -> BlobStream {
    stream::unfold((body, 0u64), move |(mut body, mut pos)| async move {
        while pos <= range.end {
            match body.next().await? {
                Err(e) => return Some((Err(e), (body, u64::MAX))),
                Ok(chunk) => {
                    let from = pos;
                    pos += chunk.len() as u64;
                    let start = range.start.max(from);
                    let end = (range.end + 1).min(pos);
                    if start < end {
                        let part = chunk.slice((start - from) as usize..(end - from) as usize);
                        return Some((Ok::<Bytes, Error>(part), (body, pos)));
                    }
                }
            }
        }
        None
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slices_cut_across_chunks() {
        let data = Bytes::from_static(b"0123456789");
        for (start, end) in [(0, 9), (2, 5), (3, 3), (7, 9)] {
            let s = slice_stream(bytes_stream(data.clone(), 3), ByteRange { start, end });
            let got = collect_list(s).await.unwrap().concat();
            assert_eq!(got, &data[start as usize..=end as usize]);
        }
    }

    #[test]
    fn range_resolution() {
        assert_eq!(
            RangeRequest::bounded(0, 9).resolve(5).unwrap(),
            ByteRange { start: 0, end: 4 }
        );
        assert_eq!(
            RangeRequest::from(3).resolve(5).unwrap(),
            ByteRange { start: 3, end: 4 }
        );
        let suffix = RangeRequest {
            start: None,
            end: Some(2),
        };
        assert_eq!(suffix.resolve(5).unwrap(), ByteRange { start: 3, end: 4 });
        assert!(RangeRequest::from(5).resolve(5).is_err());
        assert!(RangeRequest::bounded(3, 2).resolve(5).is_err());
        assert!(RangeRequest::from(0).resolve(0).is_err());
    }

    #[test]
    fn list_options_paginate() {
        let names = ["a", "b", "c", "d"];
        let opts = ListOptions {
            last: Some("b".into()),
            n: Some(1),
        };
        assert_eq!(opts.apply(names), vec!["c"]);
        assert_eq!(ListOptions::all().apply(names).len(), 4);
    }
}
