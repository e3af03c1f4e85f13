//! [`VerifyStream`]: a byte stream checked against a digest and size as it
//! passes. For large content the hashing runs on a helper thread, in
//! parallel with whatever the consumer does with the bytes (writing them to
//! a file, sending them on), with a bounded amount of data queued for it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;

use crate::digest::{Digest, Verifier};
use crate::error::{Error, ErrorCode, Result};
use crate::pipe::Pipe;

/// Content at least this large is hashed on a helper thread.
pub const BACKGROUND_HASH_MIN: u64 = 4 << 20;

/// A stream of bytes checked against a digest and size: it yields the data
/// as it comes and ends with an error instead of `None` if either is wrong.
/// A stream longer than its size fails as soon as it is.
pub struct VerifyStream<S> {
    inner: S,
    state: State,
}

enum State {
    /// Hashing in the polling task.
    Inline(Box<Verifier>),
    /// Hashing on a helper thread.
    Background(Background),
    /// Finished or failed.
    Done,
}

impl<S> VerifyStream<S> {
    /// Wraps `inner`, which must hash to `digest` and be `size` bytes long.
    pub fn new(inner: S, digest: Digest, size: Option<u64>) -> VerifyStream<S> {
        VerifyStream::continuing(inner, Verifier::new(digest, size))
    }

    /// Wraps `inner`, the rest of content whose first bytes `verifier`
    /// has seen already (a download resumed after them).
    pub fn continuing(inner: S, verifier: Verifier) -> VerifyStream<S> {
        let rest = verifier
            .expected_size()
            .map(|size| size.saturating_sub(verifier.seen()));
        let state = match rest {
            Some(rest) if rest >= BACKGROUND_HASH_MIN => {
                match Background::spawn(verifier.clone()) {
                    Some(bg) => State::Background(bg),
                    None => State::Inline(Box::new(verifier)),
                }
            }
            _ => State::Inline(Box::new(verifier)),
        };
        VerifyStream { inner, state }
    }
}

impl<S> Stream for VerifyStream<S>
where
    S: Stream<Item = Result<Bytes>> + Unpin,
{
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match &mut this.state {
            State::Done => Poll::Ready(None),
            State::Inline(verifier) => match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => match verifier.update(&chunk) {
                    Ok(()) => Poll::Ready(Some(Ok(chunk))),
                    Err(e) => this.fail(e),
                },
                Poll::Ready(Some(Err(e))) => this.fail(e),
                Poll::Ready(None) => match std::mem::replace(&mut this.state, State::Done) {
                    State::Inline(v) => match v.finish() {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(Err(e))),
                    },
                    _ => Poll::Ready(None),
                },
            },
            State::Background(bg) => {
                if bg.inner_done {
                    return match bg.poll_result(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(Ok(())) => {
                            this.state = State::Done;
                            Poll::Ready(None)
                        }
                        Poll::Ready(Err(e)) => this.fail(e),
                    };
                }
                if bg.poll_room(cx).is_pending() {
                    return Poll::Pending;
                }
                match Pin::new(&mut this.inner).poll_next(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Some(Ok(chunk))) => match bg.send(chunk.clone()) {
                        Ok(()) => Poll::Ready(Some(Ok(chunk))),
                        Err(e) => this.fail(e),
                    },
                    Poll::Ready(Some(Err(e))) => this.fail(e),
                    Poll::Ready(None) => {
                        bg.close();
                        bg.inner_done = true;
                        match bg.poll_result(cx) {
                            Poll::Pending => Poll::Pending,
                            Poll::Ready(Ok(())) => {
                                this.state = State::Done;
                                Poll::Ready(None)
                            }
                            Poll::Ready(Err(e)) => this.fail(e),
                        }
                    }
                }
            }
        }
    }
}

impl<S> VerifyStream<S> {
    fn fail(&mut self, err: Error) -> Poll<Option<Result<Bytes>>> {
        self.state = State::Done;
        Poll::Ready(Some(Err(err)))
    }
}

/// The stream's side of the helper thread: a [`Pipe`] into a verifier,
/// and the length seen so far (the verifier's own and what was handed
/// over since), to fail early on overlong content.
struct Background {
    pipe: Pipe<Verifier>,
    size: Option<u64>,
    sent: u64,
    inner_done: bool,
}

impl Background {
    /// Starts the helper thread; `None` if the system has no thread to give.
    fn spawn(verifier: Verifier) -> Option<Background> {
        let size = verifier.expected_size();
        let sent = verifier.seen();
        let pipe = Pipe::spawn(verifier).ok()?;
        Some(Background {
            pipe,
            size,
            sent,
            inner_done: false,
        })
    }

    /// Ready when the queue has room (or the helper already failed).
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.pipe.poll_room(cx)
    }

    /// Hands a chunk to the helper; fails at once on overlong content or
    /// an earlier verdict.
    fn send(&mut self, chunk: Bytes) -> Result<()> {
        self.sent += chunk.len() as u64;
        if let Some(size) = self.size
            && self.sent > size
        {
            return Err(Error::new(
                ErrorCode::SizeInvalid,
                format!("content is longer than its size {size}"),
            ));
        }
        self.pipe.send(chunk)
    }

    fn close(&self) {
        self.pipe.close();
    }

    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.pipe
            .poll_done(cx)
            .map(|r| r.and_then(Verifier::finish))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn chunks(data: &[u8], n: usize) -> Vec<Result<Bytes>> {
        data.chunks(n)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    }

    async fn run(data: &[u8], digest: Digest, size: u64) -> Vec<Result<Bytes>> {
        VerifyStream::new(
            futures::stream::iter(chunks(data, 64 * 1024)),
            digest,
            Some(size),
        )
        .collect()
        .await
    }

    #[tokio::test]
    async fn small_content_fails_at_the_end() {
        let good = run(b"abcd", Digest::sha256(b"abcd"), 4).await;
        assert!(good.iter().all(|r| r.is_ok()));
        let bad = run(b"abcd", Digest::sha256(b"abce"), 4).await;
        assert!(
            bad.last()
                .unwrap()
                .as_ref()
                .unwrap_err()
                .is(ErrorCode::DigestInvalid)
        );
    }

    #[tokio::test]
    async fn large_content_is_verified_in_the_background() {
        let data: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 253) as u8).collect();
        let size = data.len() as u64;
        let good = run(&data, Digest::sha256(&data), size).await;
        let total: usize = good.iter().map(|r| r.as_ref().unwrap().len()).sum();
        assert_eq!(total as u64, size);

        let bad = run(&data, Digest::sha256(b"other"), size).await;
        assert!(
            bad.last()
                .unwrap()
                .as_ref()
                .unwrap_err()
                .is(ErrorCode::DigestInvalid)
        );
        assert_eq!(bad.iter().filter(|r| r.is_err()).count(), 1);

        let short = run(&data[..data.len() - 1], Digest::sha256(&data), size).await;
        assert!(
            short
                .last()
                .unwrap()
                .as_ref()
                .unwrap_err()
                .is(ErrorCode::SizeInvalid)
        );

        let long = run(&data, Digest::sha256(&data), size - 10).await;
        assert!(
            long.last()
                .unwrap()
                .as_ref()
                .unwrap_err()
                .is(ErrorCode::SizeInvalid)
        );
    }

    #[tokio::test]
    async fn dropping_half_read_stops_the_helper() {
        let data = vec![1u8; 8 << 20];
        let mut s = VerifyStream::new(
            futures::stream::iter(chunks(&data, 1 << 20)),
            Digest::sha256(&data),
            Some(data.len() as u64),
        );
        assert!(s.next().await.unwrap().is_ok());
        drop(s);
    }

    #[tokio::test]
    async fn an_error_from_the_source_ends_the_stream() {
        let items = vec![
            Ok(Bytes::from_static(b"ab")),
            Err(Error::internal("dropped")),
        ];
        let out: Vec<_> = VerifyStream::new(
            futures::stream::iter(items),
            Digest::sha256(b"abcd"),
            Some(4),
        )
        .collect()
        .await;
        assert_eq!(out.len(), 2);
        assert!(out[1].is_err());
    }
}
