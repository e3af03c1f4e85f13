//! [`VerifyStream`]: a byte stream checked against a digest and size as it
//! passes. For large content the hashing runs on a helper thread, in
//! parallel with whatever the consumer does with the bytes (writing them to
//! a file, sending them on), with a bounded amount of data queued for it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures::Stream;

use crate::digest::{Digest, Verifier};
use crate::error::{Error, ErrorCode, Result};

/// Content at least this large is hashed on a helper thread.
pub const BACKGROUND_HASH_MIN: u64 = 4 << 20;

/// At most this many bytes wait for the helper thread; the stream pauses
/// when they do.
const QUEUE_LIMIT: usize = 8 << 20;

/// An idle helper is woken once this much is queued (or at the end): fewer,
/// larger hand-overs cost fewer thread wake-ups.
const WAKE_BATCH: usize = 1 << 20;

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
        let verifier = Verifier::new(digest, size);
        let state = match size {
            Some(size) if size >= BACKGROUND_HASH_MIN => {
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

/// What the stream and the helper thread share.
#[derive(Default)]
struct Queue {
    chunks: VecDeque<Bytes>,
    queued: usize,
    /// Bytes handed over so far, to fail early on overlong content.
    sent: u64,
    /// No more chunks will come (end of stream, or the stream was dropped).
    closed: bool,
    /// The helper's verdict, once it has one.
    result: Option<Result<()>>,
    /// The task waiting for room or for the verdict.
    waker: Option<Waker>,
    /// The helper is asleep waiting for chunks (only then is it signalled).
    idle: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The stream's side of the helper thread.
struct Background {
    shared: Arc<Shared>,
    size: Option<u64>,
    inner_done: bool,
}

impl Background {
    /// Starts the helper thread; `None` if the system has no thread to give.
    fn spawn(verifier: Verifier) -> Option<Background> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
        });
        let size = verifier.expected_size();
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("oci-verify".into())
            .spawn(move || hash_queue(&worker, verifier))
            .ok()?;
        Some(Background {
            shared,
            size,
            inner_done: false,
        })
    }

    /// Ready when the queue has room (or the helper already failed).
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut q = self.shared.lock();
        if q.queued < QUEUE_LIMIT || q.result.is_some() {
            Poll::Ready(())
        } else {
            q.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Hands a chunk to the helper; fails at once on overlong content or
    /// an earlier verdict.
    fn send(&self, chunk: Bytes) -> Result<()> {
        let mut q = self.shared.lock();
        if let Some(Err(e)) = &q.result {
            return Err(e.clone());
        }
        q.sent += chunk.len() as u64;
        if let Some(size) = self.size
            && q.sent > size
        {
            return Err(Error::new(
                ErrorCode::SizeInvalid,
                format!("content is longer than its size {size}"),
            ));
        }
        q.queued += chunk.len();
        q.chunks.push_back(chunk);
        let wake = q.idle && q.queued >= WAKE_BATCH;
        drop(q);
        if wake {
            self.shared.ready.notify_one();
        }
        Ok(())
    }

    fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
    }

    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut q = self.shared.lock();
        match q.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                q.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Lets the helper finish if the stream is dropped half-read.
        self.close();
    }
}

/// The helper thread: hashes queued chunks in order until closed, taking
/// everything queued at each turn.
fn hash_queue(shared: &Shared, mut verifier: Verifier) {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let mut q = shared.lock();
        while q.chunks.is_empty() && !q.closed {
            q.idle = true;
            q = shared.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
            q.idle = false;
        }
        if q.chunks.is_empty() {
            // Closed and drained.
            q.result = Some(verifier.finish());
            if let Some(w) = q.waker.take() {
                w.wake();
            }
            return;
        }
        batch.extend(q.chunks.drain(..));
        drop(q);
        let mut hashed = 0;
        let mut outcome = Ok(());
        for chunk in batch.drain(..) {
            hashed += chunk.len();
            outcome = verifier.update(&chunk);
            if outcome.is_err() {
                break;
            }
        }
        batch.clear();
        let mut q = shared.lock();
        q.queued = q.queued.saturating_sub(hashed);
        if let Err(e) = outcome {
            q.result = Some(Err(e));
            q.chunks.clear();
            q.queued = 0;
            if let Some(w) = q.waker.take() {
                w.wake();
            }
            return;
        }
        if let Some(w) = q.waker.take() {
            w.wake();
        }
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
