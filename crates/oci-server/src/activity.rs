//! What makes a connection idle: [`Watched`], a transport that notes when
//! bytes last moved, and [`Activity`], which also counts the requests in
//! progress and tells when the connection has been idle long enough to be
//! closed.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When a connection last moved bytes, and how many of its requests are
/// being handled. Plain atomics: touched on every read and write.
#[derive(Debug)]
pub(crate) struct Activity {
    origin: Instant,
    /// Milliseconds from `origin` to the last movement.
    moved: AtomicU64,
    busy: AtomicUsize,
}

/// A request in progress; the connection is busy until it is dropped.
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    /// A connection that just opened.
    pub(crate) fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            moved: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    /// Notes that bytes moved.
    fn moved(&self) {
        let since = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.moved.store(since, Ordering::Relaxed);
    }

    /// Marks a request in progress.
    pub(crate) fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// Completes once no request has been in progress and no byte has
    /// moved for `limit`.
    pub(crate) async fn idle_for(&self, limit: Duration) {
        loop {
            let moved = self.origin + Duration::from_millis(self.moved.load(Ordering::Relaxed));
            let quiet = moved.elapsed();
            if self.busy.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(limit).await;
            } else if quiet >= limit {
                return;
            } else {
                tokio::time::sleep(limit - quiet).await;
            }
        }
    }
}

/// A transport that notes in an [`Activity`] whenever bytes move.
#[derive(Debug)]
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Watched<S> {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.moved();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.moved();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.moved();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
