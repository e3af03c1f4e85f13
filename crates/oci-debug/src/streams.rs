//! Streams that count what passes and report at the end: blob bodies
//! read or pushed, and listings item by item.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use oci_core::{BlobStream, Error, ErrorCode, ListStream, Result};

use crate::call::{Call, TARGET};

/// A blob read being streamed: counts bytes and reports once, when the
/// stream ends, fails, or is dropped unfinished.
pub(crate) struct CountedRead {
    inner: BlobStream,
    call: Call,
    bytes: u64,
    reported: bool,
}

impl CountedRead {
    /// Wraps a reader's stream; `call` reports at the end.
    pub(crate) fn new(inner: BlobStream, call: Call) -> CountedRead {
        CountedRead {
            inner,
            call,
            bytes: 0,
            reported: false,
        }
    }

    fn report(&mut self, result: &Result<()>) {
        if !self.reported {
            self.reported = true;
            self.call
                .finish("blob stream end", result, Some(self.bytes));
        }
    }
}

impl Stream for CountedRead {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = this.inner.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => this.bytes += chunk.len() as u64,
            Poll::Ready(Some(Err(err))) => this.report(&Err(err.clone())),
            Poll::Ready(None) => this.report(&Ok(())),
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for CountedRead {
    fn drop(&mut self) {
        if !self.reported {
            let dropped = Error::new(ErrorCode::Unknown, "the reader was dropped before the end");
            self.report(&Err(dropped));
        }
    }
}

/// Counts the bytes of a body handed to a push; read the count from the
/// returned counter after the push.
pub(crate) fn count_body(body: BlobStream) -> (BlobStream, Arc<AtomicU64>) {
    let counter = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&counter);
    let body = body
        .inspect(move |item| {
            if let Ok(chunk) = item {
                seen.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        })
        .boxed();
    (body, counter)
}

/// How a listed item is named in its event.
pub(crate) type Label<T> = for<'a> fn(&'a T) -> &'a dyn fmt::Display;

/// A listing traced item by item (TRACE) and at its end (DEBUG, with the
/// number of items).
/// `label` names an item in its event.
pub(crate) fn traced_list<T>(list: ListStream<T>, call: Call, label: Label<T>) -> ListStream<T>
where
    T: Send + 'static,
{
    if !call.is_on() {
        return list;
    }
    let state = (list, call, 0u64, false);
    futures::stream::unfold(state, move |(mut list, call, count, done)| async move {
        if done {
            return None;
        }
        match list.next().await {
            Some(Ok(item)) => {
                tracing::trace!(target: TARGET, item = %display(label(&item)), "listed");
                Some((Ok(item), (list, call, count + 1, false)))
            }
            Some(Err(err)) => {
                call.finish_listing(&Err(err.clone()), count);
                Some((Err(err), (list, call, count, true)))
            }
            None => {
                call.finish_listing(&Ok(()), count);
                None
            }
        }
    })
    .boxed()
}
