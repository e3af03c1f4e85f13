//! When a connection is idle or too slow: [`Watched`], a transport that
//! notes when bytes last moved, and [`Activity`], which also counts the
//! requests being handled and the responses being sent, and tells when the
//! connection should be closed. Plain atomics on the request path; the
//! only timer is the one watchdog per connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::body::ResponseBody;

/// The shortest nap of the watchdog, so it never spins.
const MIN_NAP: Duration = Duration::from_millis(10);

/// A connection's activity.
#[derive(Debug)]
pub(crate) struct Activity {
    origin: Instant,
    /// Milliseconds from `origin` to the last byte moved.
    moved: AtomicU64,
    /// Milliseconds from `origin` to when a request or response last ended
    /// (or the connection opened).
    quiet_since: AtomicU64,
    /// Requests whose handler is running.
    handling: AtomicUsize,
    /// Responses whose body is still being sent.
    sending: AtomicUsize,
}

/// Why the watchdog closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// No request arrived in time since the connection went quiet.
    NoRequest,
    /// No byte moved for the idle timeout.
    Idle,
}

/// One of a connection's counts, taken back when dropped.
pub(crate) struct Held {
    activity: Arc<Activity>,
    sending: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        let count = if self.sending {
            &self.activity.sending
        } else {
            &self.activity.handling
        };
        count.fetch_sub(1, Ordering::AcqRel);
        let now = self.activity.now();
        self.activity.quiet_since.store(now, Ordering::Release);
    }
}

impl Activity {
    /// A connection that just opened.
    pub(crate) fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            moved: AtomicU64::new(0),
            quiet_since: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
            sending: AtomicUsize::new(0),
        }
    }

    /// Milliseconds since the connection opened.
    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Notes that bytes moved.
    fn moved(&self) {
        self.moved.store(self.now(), Ordering::Relaxed);
    }

    /// Marks a request being handled, until the mark is dropped.
    pub(crate) fn handling(self: &Arc<Self>) -> Held {
        self.handling.fetch_add(1, Ordering::AcqRel);
        Held {
            activity: self.clone(),
            sending: false,
        }
    }

    /// Marks a response being sent, until the mark is dropped.
    fn sending(self: &Arc<Self>) -> Held {
        self.sending.fetch_add(1, Ordering::AcqRel);
        Held {
            activity: self.clone(),
            sending: true,
        }
    }

    /// A response body that keeps the connection marked as sending until
    /// it has been sent or dropped.
    pub(crate) fn watch_body(self: &Arc<Self>, body: ResponseBody) -> WatchedBody {
        WatchedBody {
            inner: body,
            _sending: self.sending(),
        }
    }

    /// Completes when the connection should be closed: no request has
    /// started within `first_request` of it going quiet (no request
    /// handled, no response being sent), or no byte has moved for `idle`
    /// while no request was being handled. A running handler is never cut
    /// off; a stalled request body is the body timeout's business.
    pub(crate) async fn watch(
        &self,
        first_request: Option<Duration>,
        idle: Option<Duration>,
    ) -> Closing {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (first_request, idle) = (first_request.map(ms), idle.map(ms));
        // While a handler runs, look again after the shortest limit.
        let shortest = match (first_request, idle) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(u64::MAX),
        };
        loop {
            let now = self.now();
            let mut nap = shortest;
            if self.handling.load(Ordering::Acquire) == 0 {
                if let Some(limit) = idle {
                    let quiet = now.saturating_sub(self.moved.load(Ordering::Relaxed));
                    if quiet >= limit {
                        return Closing::Idle;
                    }
                    nap = nap.min(limit - quiet);
                }
                if let Some(limit) = first_request
                    && self.sending.load(Ordering::Acquire) == 0
                {
                    let waiting = now.saturating_sub(self.quiet_since.load(Ordering::Acquire));
                    if waiting >= limit {
                        return Closing::NoRequest;
                    }
                    nap = nap.min(limit - waiting);
                }
            }
            if nap == u64::MAX {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(nap).max(MIN_NAP)).await;
        }
    }
}

/// A response body whose connection counts it as being sent.
pub(crate) struct WatchedBody {
    inner: ResponseBody,
    _sending: Held,
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = oci_core::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, oci_core::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
