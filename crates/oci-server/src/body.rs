//! Body plumbing: the response body type, and request bodies turned into
//! blob streams or capped byte buffers. Nothing here buffers a blob.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt, future};
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, BodyStream, Empty, Full, StreamBody};
use oci_core::{BlobStream, Error, ErrorCode, Result};

/// A boxed error, what a request body's error must convert into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response: empty, a small JSON document, or a streamed
/// blob.
pub type ResponseBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Error>;

/// An empty response body.
pub(crate) fn empty() -> ResponseBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A response body held in memory (JSON documents, manifests).
pub(crate) fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response body streamed from a blob reader.
pub(crate) fn streamed(stream: BlobStream) -> ResponseBody {
    StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync()
}

/// A request body as a stream of data chunks; trailers are dropped, empty
/// chunks skipped, and a transport failure, or `idle` passing without a
/// chunk, becomes a `BLOB_UPLOAD_INVALID` error so that the upload it
/// interrupts stays resumable.
pub(crate) fn request_stream<B>(body: B, idle: Option<Duration>) -> BlobStream
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let stream = data_stream(body);
    match idle {
        Some(limit) => IdleLimited {
            inner: stream,
            limit,
            timer: None,
            armed: false,
            done: false,
        }
        .boxed(),
        None => stream,
    }
}

/// The data chunks of a request body.
fn data_stream<B>(body: B) -> BlobStream
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    BodyStream::new(body)
        .filter_map(|frame| {
            future::ready(match frame {
                Ok(frame) => frame.into_data().ok().filter(|d| !d.is_empty()).map(Ok),
                Err(e) => Some(Err(Error::new(
                    ErrorCode::BlobUploadInvalid,
                    format!("reading the request body failed: {}", e.into()),
                ))),
            })
        })
        .boxed()
}

/// A body stream that fails once it has sent nothing for `limit`. The
/// timer is made on the first wait and re-armed after each chunk, so a body
/// read without waiting costs nothing.
struct IdleLimited {
    inner: BlobStream,
    limit: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
    done: bool,
}

impl Stream for IdleLimited {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = self.inner.poll_next_unpin(cx) {
            self.armed = false;
            return Poll::Ready(item);
        }
        let deadline = tokio::time::Instant::now() + self.limit;
        let armed = self.armed;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !armed {
            timer.as_mut().reset(deadline);
        }
        let fired = timer.as_mut().poll(cx).is_ready();
        self.armed = true;
        if fired {
            self.done = true;
            return Poll::Ready(Some(Err(Error::new(
                ErrorCode::BlobUploadInvalid,
                format!(
                    "the request body sent nothing for {} s",
                    self.limit.as_secs_f64()
                ),
            ))));
        }
        Poll::Pending
    }
}

/// Reads a whole request body of at most `cap` bytes; a longer one is a 413
/// `SIZE_INVALID`, detected without holding more than `cap` bytes.
pub(crate) async fn read_capped(mut body: BlobStream, cap: usize) -> Result<Bytes> {
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > cap {
            return Err(too_large(cap));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// The request's `Content-Length`, if it sends one; a malformed one is a
/// 400 `SIZE_INVALID`.
pub(crate) fn declared_length(headers: &HeaderMap) -> Result<Option<u64>> {
    match headers.get(CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| Error::new(ErrorCode::SizeInvalid, "invalid Content-Length header")),
    }
}

/// The 413 for a body over `cap` bytes.
pub(crate) fn too_large(cap: usize) -> Error {
    Error::new(
        ErrorCode::SizeInvalid,
        format!("the body exceeds the {cap}-byte limit"),
    )
    .with_status(413)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caps_bodies() {
        let body = oci_core::registry::bytes_stream(Bytes::from(vec![1u8; 10]), 3);
        assert_eq!(read_capped(body, 10).await.unwrap().len(), 10);
        let body = oci_core::registry::bytes_stream(Bytes::from(vec![1u8; 11]), 3);
        assert_eq!(read_capped(body, 10).await.unwrap_err().status(), 413);
    }

    #[tokio::test]
    async fn request_bodies_stream_their_data() {
        let body = Full::new(Bytes::from_static(b"abc"));
        let chunks: Vec<_> = request_stream(body, None).try_collect().await.unwrap();
        assert_eq!(chunks, vec![Bytes::from_static(b"abc")]);
        let body = Empty::<Bytes>::new();
        assert!(request_stream(body, None).next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_fails() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Frame<Bytes>>>();
        let body = StreamBody::new(rx);
        let mut stream = request_stream(body, Some(Duration::from_secs(60)));
        tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"a"))))
            .unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), &b"a"[..]);
        // Chunks within the limit keep it alive...
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(50)).await;
            tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"b"))))
                .unwrap();
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(tx);
        });
        assert_eq!(stream.next().await.unwrap().unwrap(), &b"b"[..]);
        // ...and a minute of nothing ends it.
        let err = stream.next().await.unwrap().unwrap_err();
        assert!(err.is(ErrorCode::BlobUploadInvalid), "{err}");
        assert!(stream.next().await.is_none());
        sender.abort();
    }
}
