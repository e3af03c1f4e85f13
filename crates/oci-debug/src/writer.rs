//! [`TracedWriter`]: a chunked upload whose every operation is traced.

use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use oci_core::{BlobWriter, Descriptor, Digest, RepoName, Result};

use crate::call::{Call, TARGET, outcome};

/// Traces each write (TRACE, with its size and offset) and the end of the
/// session — commit, cancel or close — (DEBUG, with the bytes written
/// through this writer and the session's duration).
pub(crate) struct TracedWriter {
    inner: Box<dyn BlobWriter>,
    repo: RepoName,
    written: u64,
    started: Instant,
}

impl TracedWriter {
    /// Wraps `inner`, an upload to `repo`.
    pub(crate) fn new(inner: Box<dyn BlobWriter>, repo: RepoName) -> TracedWriter {
        TracedWriter {
            inner,
            repo,
            written: 0,
            started: Instant::now(),
        }
    }

    /// Takes the inner writer out as the session ends by `method`, with
    /// what the end's report needs.
    fn end(self, method: &'static str, digest: Option<&Digest>) -> (Box<dyn BlobWriter>, End) {
        let end = End {
            method,
            id: self.inner.id().to_owned(),
            digest: digest.cloned(),
            repo: self.repo,
            written: self.written,
            started: self.started,
        };
        (self.inner, end)
    }
}

/// The end of a session — commit, cancel or close — to report.
struct End {
    method: &'static str,
    repo: RepoName,
    id: String,
    digest: Option<Digest>,
    written: u64,
    started: Instant,
}

impl End {
    /// Reports how the session ended, and passes the result on.
    fn report<T>(self, result: Result<T>) -> Result<T> {
        tracing::debug!(
            target: TARGET,
            method = self.method,
            repo = %self.repo,
            upload = self.id,
            digest = self.digest.as_ref().map(display),
            outcome = outcome(&result),
            bytes = self.written,
            elapsed = ?self.started.elapsed(),
            error = result.as_ref().err().map(display),
            "upload {}",
            self.method,
        );
        result
    }
}

#[async_trait]
impl BlobWriter for TracedWriter {
    fn forward_to(&self) -> Option<&dyn BlobWriter> {
        Some(self.inner.as_ref())
    }

    fn forward_to_mut(&mut self) -> Option<&mut dyn BlobWriter> {
        Some(self.inner.as_mut())
    }

    fn into_forward(self: Box<Self>) -> Option<Box<dyn BlobWriter>> {
        Some(self.inner)
    }

    fn id(&self) -> &str {
        self.inner.id()
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        let (offset, len) = (self.inner.size(), data.len() as u64);
        let result = self.inner.write(data).await;
        if result.is_ok() {
            self.written += len;
        }
        tracing::trace!(
            target: TARGET,
            method = "write",
            repo = %self.repo,
            upload = self.inner.id(),
            offset,
            bytes = len,
            outcome = outcome(&result),
            "upload write",
        );
        result
    }

    async fn commit(self: Box<Self>, digest: &Digest) -> Result<Descriptor> {
        let (inner, end) = (*self).end("commit", Some(digest));
        end.report(inner.commit(digest).await)
    }

    async fn cancel(self: Box<Self>) -> Result<()> {
        let (inner, end) = (*self).end("cancel", None);
        end.report(inner.cancel().await)
    }

    async fn close(self: Box<Self>) -> Result<()> {
        let (inner, end) = (*self).end("close", None);
        end.report(inner.close().await)
    }
}

/// Wraps a writer the call opened, if tracing is on.
pub(crate) fn trace_writer(
    call: &Call,
    repo: &RepoName,
    opened: Result<Box<dyn BlobWriter>>,
) -> Result<Box<dyn BlobWriter>> {
    match opened {
        Ok(w) if call.is_on() => Ok(Box::new(TracedWriter::new(w, repo.clone()))),
        other => other,
    }
}
