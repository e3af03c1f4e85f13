//! [`Pipe`]: the work done on every chunk of a blob (hashing it, writing
//! it to a file) moved to a helper thread, so that it runs on another core
//! beside the task receiving the chunks. The queue between them is bounded
//! in bytes: the task waits for room rather than buffering a blob.
//!
//! ```
//! use bytes::Bytes;
//! use oci_core::pipe::Pipe;
//! use oci_core::{Algorithm, Digest};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> oci_core::Result<()> {
//! let mut pipe = Pipe::spawn(Algorithm::Sha256.hasher()).unwrap_or_else(|_| unreachable!());
//! pipe.push(Bytes::from_static(b"hello ")).await?;
//! pipe.push(Bytes::from_static(b"world")).await?;
//! let hasher = pipe.finish().await?;
//! assert_eq!(hasher.finish(), Digest::sha256(b"hello world"));
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::digest::{Hasher, Verifier};
use crate::error::{Error, Result};

/// At most this many bytes wait for the helper thread; the sender waits
/// for room when they do.
pub const QUEUE_LIMIT: usize = 4 << 20;

/// An idle helper is woken once this much is queued (or at the end):
/// fewer, larger hand-overs cost fewer thread wake-ups.
const WAKE_BATCH: usize = 1 << 20;

/// What a [`Pipe`]'s helper thread does with each chunk, in order.
pub trait ChunkSink: Send + 'static {
    /// Takes the next chunk; an error ends the pipe with it.
    fn take(&mut self, chunk: &[u8]) -> Result<()>;

    /// Called once after the last chunk, before the sink is given back:
    /// a sink that gathers chunks writes out what it holds.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

impl ChunkSink for Hasher {
    fn take(&mut self, chunk: &[u8]) -> Result<()> {
        self.update(chunk);
        Ok(())
    }
}

impl ChunkSink for Verifier {
    fn take(&mut self, chunk: &[u8]) -> Result<()> {
        self.update(chunk)
    }
}

/// Chunks handed to a helper thread that feeds them, in order, to a
/// [`ChunkSink`]; [`finish`](Pipe::finish) gives the sink back once every
/// chunk was taken. Dropping an unfinished pipe stops the helper without
/// feeding it what is still queued.
pub struct Pipe<S> {
    shared: Arc<Shared<S>>,
}

/// What the sender and the helper thread share.
struct Shared<S> {
    queue: Mutex<Queue<S>>,
    ready: Condvar,
}

struct Queue<S> {
    /// The sink, until the helper takes it (handed back if no helper starts).
    sink: Option<S>,
    chunks: VecDeque<Bytes>,
    queued: usize,
    /// No more chunks will come.
    closed: bool,
    /// Stop at once, dropping what is queued.
    aborted: bool,
    /// The helper's outcome: the sink once closed and drained, or the
    /// first error.
    outcome: Option<Result<S>>,
    /// The helper's error, kept for every later call.
    failed: Option<Error>,
    /// The task waiting for room or for the outcome.
    waker: Option<Waker>,
    /// The helper is asleep waiting for chunks (only then is it signalled).
    idle: bool,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Queue<S>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: ChunkSink> Pipe<S> {
    /// Starts the helper thread; gives the sink back if the system has no
    /// thread to spare (the caller then does the work itself).
    pub fn spawn(sink: S) -> std::result::Result<Pipe<S>, S> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                sink: Some(sink),
                chunks: VecDeque::new(),
                queued: 0,
                closed: false,
                aborted: false,
                outcome: None,
                failed: None,
                waker: None,
                idle: false,
            }),
            ready: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("oci-pipe".into())
            .spawn(move || feed(&worker));
        if spawned.is_ok() {
            return Ok(Pipe { shared });
        }
        // The thread never ran, so the sink is still in the queue.
        let sink = shared.lock().sink.take();
        match sink {
            Some(sink) => Err(sink),
            None => Ok(Pipe { shared }),
        }
    }
}

impl<S> Pipe<S> {
    /// Ready when the queue has room (or the helper already failed).
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut q = self.shared.lock();
        if q.queued < QUEUE_LIMIT || failure(&mut q).is_some() {
            Poll::Ready(())
        } else {
            q.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Queues a chunk without waiting for room (see
    /// [`poll_room`](Pipe::poll_room)); fails with the helper's error if
    /// it failed already.
    pub fn send(&self, chunk: Bytes) -> Result<()> {
        let mut q = self.shared.lock();
        if let Some(e) = failure(&mut q) {
            return Err(e);
        }
        if chunk.is_empty() {
            return Ok(());
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

    /// Waits for room, then queues a chunk.
    pub async fn push(&mut self, chunk: Bytes) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_room(cx)).await;
        self.send(chunk)
    }

    /// Says no more chunks will come.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
    }

    /// Ready with the sink once everything queued was taken (after
    /// [`close`](Pipe::close)), or with the helper's error.
    pub fn poll_done(&self, cx: &mut Context<'_>) -> Poll<Result<S>> {
        let mut q = self.shared.lock();
        if let Some(e) = failure(&mut q) {
            return Poll::Ready(Err(e));
        }
        match q.outcome.take() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                q.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Closes the pipe and waits until the helper took every chunk; gives
    /// the sink back.
    pub async fn finish(self) -> Result<S> {
        self.close();
        std::future::poll_fn(|cx| self.poll_done(cx)).await
    }
}

/// A [`ChunkSink`] fed either in the calling task or, once more than
/// `inline_up_to` bytes came, through a [`Pipe`] on a helper thread: small
/// content costs no thread, large content is worked on beside its
/// receiving. Falls back to feeding inline if no thread can be had.
pub struct Feeder<S> {
    way: Way<S>,
    fed: u64,
    inline_up_to: u64,
}

enum Way<S> {
    Inline(S),
    Piped(Pipe<S>),
    /// Only while switching (or after a failed switch).
    Gone,
}

impl<S: ChunkSink> Feeder<S> {
    /// Feeds `sink`, in the calling task until `inline_up_to` bytes were
    /// fed (0: on a helper thread from the first byte).
    pub fn new(sink: S, inline_up_to: u64) -> Feeder<S> {
        Feeder {
            way: Way::Inline(sink),
            fed: 0,
            inline_up_to,
        }
    }

    /// Feeds the next chunk, waiting for room in the pipe if need be.
    pub async fn push(&mut self, chunk: Bytes) -> Result<()> {
        self.fed += chunk.len() as u64;
        if self.fed > self.inline_up_to && matches!(self.way, Way::Inline(_)) {
            self.way = match std::mem::replace(&mut self.way, Way::Gone) {
                Way::Inline(sink) => match Pipe::spawn(sink) {
                    Ok(pipe) => Way::Piped(pipe),
                    Err(sink) => Way::Inline(sink),
                },
                other => other,
            };
        }
        match &mut self.way {
            Way::Inline(sink) => sink.take(&chunk),
            Way::Piped(pipe) => pipe.push(chunk).await,
            Way::Gone => Err(Error::internal("a chunk feeder was used after it failed")),
        }
    }

    /// Waits until every chunk was taken; gives the sink back.
    pub async fn finish(self) -> Result<S> {
        match self.way {
            Way::Inline(mut sink) => sink.close().map(|()| sink),
            Way::Piped(pipe) => pipe.finish().await,
            Way::Gone => Err(Error::internal("a chunk feeder was used after it failed")),
        }
    }
}

/// The helper's error, once it failed (kept for every later call).
fn failure<S>(q: &mut Queue<S>) -> Option<Error> {
    if q.failed.is_none()
        && matches!(q.outcome, Some(Err(_)))
        && let Some(Err(e)) = q.outcome.take()
    {
        q.failed = Some(e);
    }
    q.failed.clone()
}

impl<S> Drop for Pipe<S> {
    fn drop(&mut self) {
        let mut q = self.shared.lock();
        if !(q.closed && q.chunks.is_empty()) {
            q.aborted = true;
            q.chunks.clear();
        }
        q.closed = true;
        drop(q);
        self.shared.ready.notify_one();
    }
}

/// The helper thread: takes the sink, feeds it the queued chunks in order
/// until the pipe is closed and drained (or aborted), and leaves the sink
/// (or the error) as the outcome.
fn feed<S: ChunkSink>(shared: &Shared<S>) {
    let Some(mut sink) = shared.lock().sink.take() else {
        return;
    };
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let mut q = shared.lock();
        while q.chunks.is_empty() && !q.closed {
            q.idle = true;
            q = shared.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
            q.idle = false;
        }
        if q.aborted {
            return;
        }
        if q.chunks.is_empty() {
            // Closed and drained.
            drop(q);
            let closed = sink.close().map(|()| sink);
            let mut q = shared.lock();
            q.outcome = Some(closed);
            if let Some(w) = q.waker.take() {
                w.wake();
            }
            return;
        }
        batch.extend(q.chunks.drain(..));
        drop(q);
        let mut taken = 0;
        let mut outcome = Ok(());
        for chunk in batch.drain(..) {
            taken += chunk.len();
            outcome = sink.take(&chunk);
            if outcome.is_err() {
                break;
            }
        }
        batch.clear();
        let mut q = shared.lock();
        q.queued = q.queued.saturating_sub(taken);
        if let Err(e) = outcome {
            q.outcome = Some(Err(e));
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
    use crate::digest::{Algorithm, Digest};
    use crate::error::ErrorCode;

    /// A sink that keeps what it was fed, failing past a length.
    struct Collect {
        data: Vec<u8>,
        max: usize,
    }

    impl ChunkSink for Collect {
        fn take(&mut self, chunk: &[u8]) -> Result<()> {
            self.data.extend_from_slice(chunk);
            if self.data.len() > self.max {
                return Err(Error::new(ErrorCode::SizeInvalid, "too long"));
            }
            Ok(())
        }
    }

    fn spawned<S: ChunkSink>(sink: S) -> Pipe<S> {
        Pipe::spawn(sink).unwrap_or_else(|_| panic!("no thread"))
    }

    #[tokio::test]
    async fn every_chunk_reaches_the_sink_in_order_past_the_queue_limit() {
        let data: Vec<u8> = (0..(3 * QUEUE_LIMIT as u32 + 77))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut pipe = spawned(Collect {
            data: Vec::new(),
            max: usize::MAX,
        });
        let mut hashing = spawned(Algorithm::Sha256.hasher());
        for piece in data.chunks(100_000) {
            pipe.push(Bytes::copy_from_slice(piece)).await.unwrap();
            hashing.push(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        assert_eq!(pipe.finish().await.unwrap().data, data);
        assert_eq!(
            hashing.finish().await.unwrap().finish(),
            Digest::sha256(&data)
        );
    }

    #[tokio::test]
    async fn the_sinks_error_reaches_the_sender() {
        let mut pipe = spawned(Collect {
            data: Vec::new(),
            max: 10,
        });
        let mut failed = None;
        for _ in 0..200 {
            if let Err(e) = pipe.push(Bytes::from(vec![0u8; 64 * 1024])).await {
                failed = Some(e);
                break;
            }
        }
        let err = match failed {
            Some(e) => e,
            None => pipe.finish().await.err().unwrap(),
        };
        assert!(err.is(ErrorCode::SizeInvalid), "{err}");
    }

    #[tokio::test]
    async fn dropping_an_unfinished_pipe_stops_its_helper() {
        let mut pipe = spawned(Algorithm::Sha256.hasher());
        pipe.push(Bytes::from(vec![1u8; 2 << 20])).await.unwrap();
        drop(pipe);
    }
}
