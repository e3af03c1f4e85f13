//! Blob bytes in both directions with bounded memory.
//!
//! In: a [`Sink`] writes a blob object as its bytes stream in, after each
//! piece was checked by the caller's verifier: a small blob (up to
//! [`SINGLE_PUT_MAX`]) is held and written with one put at the end; a
//! larger one becomes a multipart upload of [`PART_SIZE`] parts, at most
//! two in flight, completed only once the digest matched (an S3 multipart
//! upload is invisible until completed, so a wrong or broken body leaves
//! nothing behind but an aborted upload).
//!
//! Out: a whole-blob read hashes the bytes as they stream
//! ([`oci_core::VerifyStream`]) and holds each piece back until the next
//! one came, so the last piece is sent only once the digest matched: a
//! corrupt object never reads as a complete, clean answer.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayloadMut, WriteMultipart};
use oci_core::{BlobStream, Error, ErrorCode, Result};

use crate::error::{ObjError, store_err};
use crate::store::Inner;

/// Blobs up to this size are written with one put.
pub(crate) const SINGLE_PUT_MAX: usize = 8 << 20;

/// The part size of a multipart upload (S3 wants at least 5 MiB).
pub(crate) const PART_SIZE: usize = 8 << 20;

/// Multipart parts in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// A blob object being written.
pub(crate) struct Sink {
    key: Path,
    held: PutPayloadMut,
    multipart: Option<WriteMultipart>,
}

impl Sink {
    /// Starts writing the object at `key`.
    pub(crate) fn new(key: Path) -> Sink {
        Sink {
            key,
            held: PutPayloadMut::new(),
            multipart: None,
        }
    }

    /// Adds verified bytes.
    pub(crate) async fn write(&mut self, inner: &Inner, chunk: Bytes) -> Result<()> {
        match self.multipart.as_mut() {
            Some(upload) => {
                upload
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(store_err("upload a part of", &self.key))?;
                upload.put(chunk);
            }
            None => {
                self.held.push(chunk);
                if self.held.content_length() > SINGLE_PUT_MAX {
                    let upload = inner
                        .store
                        .put_multipart(&self.key)
                        .await
                        .map_err(store_err("start a multipart upload of", &self.key))?;
                    let mut upload = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                    let held = std::mem::take(&mut self.held).freeze();
                    for piece in &held {
                        upload.put(piece.clone());
                    }
                    self.multipart = Some(upload);
                }
            }
        }
        Ok(())
    }

    /// Makes the object visible: every byte was written and verified, so
    /// the object (by the ETag the store gives it) is recorded as intact.
    pub(crate) async fn finish(self, inner: &Inner) -> Result<()> {
        let put = match self.multipart {
            Some(upload) => upload
                .finish()
                .await
                .map_err(store_err("complete the multipart upload of", &self.key))?,
            None => inner
                .store
                .put(&self.key, self.held.freeze())
                .await
                .map_err(store_err("put", &self.key))?,
        };
        inner.record_verified(&self.key, put.e_tag.as_deref());
        Ok(())
    }

    /// Abandons the object: nothing becomes visible.
    pub(crate) async fn abort(self) {
        if let Some(upload) = self.multipart
            && let Err(err) = upload.abort().await
        {
            tracing::warn!(key = %self.key, error = %err, "cannot abort a multipart upload");
        }
    }
}

/// A stream that passes on each item only once the next one came (or the
/// stream ended cleanly): an error at the end replaces the last item.
pub(crate) struct HoldLast<S> {
    inner: S,
    held: Option<Bytes>,
    done: bool,
}

impl<S> HoldLast<S> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: S) -> HoldLast<S> {
        HoldLast {
            inner,
            held: None,
            done: false,
        }
    }
}

impl<S> Stream for HoldLast<S>
where
    S: Stream<Item = Result<Bytes>> + Unpin,
{
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.inner.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    if let Some(previous) = this.held.replace(chunk) {
                        return Poll::Ready(Some(Ok(previous)));
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    this.done = true;
                    this.held = None;
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(this.held.take().map(Ok));
                }
            }
        }
    }
}

/// `stream`, which must carry exactly `size` bytes: a longer one fails as
/// soon as it is, a shorter one ends with an error instead of `None`.
pub(crate) fn exactly(
    stream: impl Stream<Item = Result<Bytes>> + Send + Unpin + 'static,
    size: u64,
) -> BlobStream {
    let seen = Arc::new(AtomicU64::new(0));
    let counted = stream.map({
        let seen = seen.clone();
        move |item| {
            let chunk = item?;
            let now = seen.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            if now > size {
                return Err(size_mismatch(size, now));
            }
            Ok(chunk)
        }
    });
    let end = futures::stream::once(async move {
        let total = seen.load(Ordering::Relaxed);
        (total != size).then(|| size_mismatch(size, total))
    })
    .filter_map(|short| async move { short.map(Err) });
    counted.chain(end).boxed()
}

fn size_mismatch(size: u64, seen: u64) -> Error {
    Error::new(
        ErrorCode::SizeInvalid,
        format!("the object holds {seen} bytes or more, {size} expected"),
    )
}

/// `stream`, calling `done` once it ended without an error (not if it
/// failed, nor if it is dropped before its end).
pub(crate) fn on_clean_end(
    stream: impl Stream<Item = Result<Bytes>> + Send + Unpin + 'static,
    done: impl FnOnce() + Send + 'static,
) -> BlobStream {
    let failed = Arc::new(AtomicBool::new(false));
    let watched = stream.inspect({
        let failed = failed.clone();
        move |item| {
            if item.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
        }
    });
    let end = futures::stream::once(async move {
        if !failed.load(Ordering::Relaxed) {
            done();
        }
    })
    .filter_map(|()| async { None });
    watched.chain(end).boxed()
}

/// The error a read of a corrupt blob object ends with (the details are
/// logged, not sent).
pub(crate) fn corrupt(key: &Path, err: &Error) -> Error {
    if err.is(ErrorCode::DigestInvalid) || err.is(ErrorCode::SizeInvalid) {
        ObjError::corrupt(
            key,
            format!(
                "a stored blob does not match its digest ({}); push it again",
                err.message()
            ),
        )
        .into()
    } else {
        err.clone()
    }
}

/// Maps a backend byte stream into core results, naming `key` in errors.
pub(crate) fn bytes_of(
    key: &Path,
    stream: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
) -> BlobStream {
    let key = key.clone();
    stream
        .map(move |item| item.map_err(|e| store_err("read", &key)(e)))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    #[tokio::test]
    async fn the_last_piece_is_held_until_the_end_is_clean() {
        let ok: Vec<Result<Bytes>> =
            vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd"))];
        let out: Vec<_> = HoldLast::new(stream::iter(ok)).collect().await;
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|r| r.is_ok()));

        let bad: Vec<Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"ab")),
            Ok(Bytes::from_static(b"cd")),
            Err(Error::new(ErrorCode::DigestInvalid, "mismatch")),
        ];
        let out: Vec<_> = HoldLast::new(stream::iter(bad)).collect().await;
        // "ab" passes; "cd", the last piece, is replaced by the error.
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().unwrap(), &Bytes::from_static(b"ab"));
        assert!(out[1].is_err());
    }

    fn pieces(parts: &[&'static [u8]]) -> BlobStream {
        let items: Vec<Result<Bytes>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        stream::iter(items).boxed()
    }

    #[tokio::test]
    async fn a_trusted_object_must_still_have_its_size() {
        let out: Vec<_> = exactly(pieces(&[b"ab", b"cd"]), 4).collect().await;
        assert!(out.len() == 2 && out.iter().all(|r| r.is_ok()));
        // Cut short: ends with an error, not None.
        let out: Vec<_> = exactly(pieces(&[b"ab"]), 4).collect().await;
        assert!(out.last().is_some_and(|r| r.is_err()), "{out:?}");
        // Too long: fails as soon as it is.
        let out: Vec<_> = exactly(pieces(&[b"ab", b"cde"]), 4).collect().await;
        assert!(out[1].as_ref().is_err_and(|e| e.is(ErrorCode::SizeInvalid)));
    }

    #[tokio::test]
    async fn only_a_clean_end_is_recorded() {
        let seen = Arc::new(AtomicBool::new(false));
        let mark = |seen: &Arc<AtomicBool>| {
            let seen = seen.clone();
            move || seen.store(true, Ordering::Relaxed)
        };
        let _: Vec<_> = on_clean_end(pieces(&[b"ab"]), mark(&seen)).collect().await;
        assert!(seen.load(Ordering::Relaxed));
        let seen = Arc::new(AtomicBool::new(false));
        let bad = exactly(pieces(&[b"ab"]), 4);
        let _: Vec<_> = on_clean_end(bad, mark(&seen)).collect().await;
        assert!(!seen.load(Ordering::Relaxed), "a failed read was recorded");
        let seen = Arc::new(AtomicBool::new(false));
        let mut dropped = on_clean_end(pieces(&[b"ab", b"cd"]), mark(&seen));
        let _ = dropped.next().await;
        drop(dropped);
        assert!(
            !seen.load(Ordering::Relaxed),
            "a read dropped early was recorded"
        );
    }
}
