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

    /// Reports the end of the session.
    fn end<T>(
        method: &'static str,
        repo: &RepoName,
        id: &str,
        digest: Option<&Digest>,
        written: u64,
        started: Instant,
        result: &Result<T>,
    ) {
        tracing::debug!(
            target: TARGET,
            method,
            repo = %repo,
            upload = id,
            digest = digest.map(display),
            outcome = outcome(result),
            bytes = written,
            elapsed = ?started.elapsed(),
            error = result.as_ref().err().map(display),
            "upload {method}",
        );
    }
}

#[async_trait]
impl BlobWriter for TracedWriter {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn chunk_min(&self) -> Option<u64> {
        self.inner.chunk_min()
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
        let TracedWriter {
            inner,
            repo,
            written,
            started,
        } = *self;
        let id = inner.id().to_owned();
        let result = inner.commit(digest).await;
        Self::end(
            "commit",
            &repo,
            &id,
            Some(digest),
            written,
            started,
            &result,
        );
        result
    }

    async fn cancel(self: Box<Self>) -> Result<()> {
        let TracedWriter {
            inner,
            repo,
            written,
            started,
        } = *self;
        let id = inner.id().to_owned();
        let result = inner.cancel().await;
        Self::end("cancel", &repo, &id, None, written, started, &result);
        result
    }

    async fn close(self: Box<Self>) -> Result<()> {
        let TracedWriter {
            inner,
            repo,
            written,
            started,
        } = *self;
        let id = inner.id().to_owned();
        let result = inner.close().await;
        Self::end("close", &repo, &id, None, written, started, &result);
        result
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
