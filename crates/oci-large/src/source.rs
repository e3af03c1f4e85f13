//! [`ChunkSource`]: range requests for consecutive chunks of a blob,
//! run as parallel tasks, each retried on its own, handed back as they
//! finish.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use oci_core::{ByteRange, Digest, Error, ErrorCode, RangeRequest, Registry, RepoName, Result};
use tokio::task::JoinSet;
// tokio's clock, so that tests with a paused clock see simulated speeds.
use tokio::time::Instant;

use oci_core::retry::{Retrier, RetryConfig};

use crate::options::{DownloadOptions, wait};
use crate::tuner::ChunkTuner;

/// A finished piece of work.
#[derive(Debug)]
pub(crate) enum Completed {
    /// The bytes of one chunk starting at `offset`.
    Chunk {
        /// Where the chunk starts in the blob.
        offset: u64,
        /// Its bytes.
        data: Bytes,
    },
    /// The first range request was not honoured: read the blob whole.
    NoRanges,
}

/// What one range request brought.
enum Fetched {
    /// The bytes asked for, and how long they took.
    Data(Bytes, Duration),
    /// The registry does not serve ranges (or served something else).
    NoRanges,
}

/// Where a blob's chunks come from.
pub(crate) struct ChunkSource {
    reg: Arc<dyn Registry>,
    repo: RepoName,
    digest: Digest,
    size: u64,
    options: DownloadOptions,
    tuner: ChunkTuner,
    next_offset: u64,
    tasks: JoinSet<(u64, Result<Fetched>)>,
    ranges_work: bool,
}

impl ChunkSource {
    /// A source for the blob `digest` of `size` bytes in `repo`.
    pub(crate) fn new(
        reg: Arc<dyn Registry>,
        repo: RepoName,
        digest: Digest,
        size: u64,
        options: DownloadOptions,
    ) -> ChunkSource {
        let tuner = ChunkTuner::new(&options);
        ChunkSource {
            reg,
            repo,
            digest,
            size,
            options,
            tuner,
            next_offset: 0,
            tasks: JoinSet::new(),
            ranges_work: false,
        }
    }

    /// The next chunk to finish, in completion order. The caller holds
    /// `held` finished chunks it has not let go of yet; requests start
    /// only while those plus the running ones stay under the concurrency
    /// (just one until the first shows that ranges work). `None` once
    /// every chunk was handed out.
    pub(crate) async fn next(&mut self, held: usize) -> Option<Result<Completed>> {
        self.launch(held);
        let (offset, fetched) = match self.tasks.join_next().await? {
            Ok(done) => done,
            Err(err) => return Some(Err(Error::internal(format!("chunk task failed: {err}")))),
        };
        Some(match fetched {
            Ok(Fetched::Data(data, elapsed)) => {
                self.ranges_work = true;
                self.tuner.observe(data.len() as u64, elapsed);
                Ok(Completed::Chunk { offset, data })
            }
            Ok(Fetched::NoRanges) if !self.ranges_work => {
                tracing::debug!(digest = %self.digest, "ranges not honoured, reading the blob whole");
                self.tasks.abort_all();
                self.next_offset = self.size;
                Ok(Completed::NoRanges)
            }
            Ok(Fetched::NoRanges) => Err(Error::new(
                ErrorCode::RangeInvalid,
                format!("the registry stopped honouring ranges at offset {offset}"),
            )),
            Err(err) => Err(err),
        })
    }

    /// Stops every request in flight.
    pub(crate) fn abort(&mut self) {
        self.tasks.abort_all();
        self.next_offset = self.size;
    }

    /// Starts range requests while there is room.
    fn launch(&mut self, held: usize) {
        let limit = if self.ranges_work {
            self.options.concurrency.max(1)
        } else {
            1
        };
        while self.tasks.len() + held < limit && self.next_offset < self.size {
            let len = self.tuner.size().min(self.size - self.next_offset);
            let range = ByteRange {
                start: self.next_offset,
                end: self.next_offset + len - 1,
            };
            self.next_offset += len;
            let (reg, repo, digest) = (
                Arc::clone(&self.reg),
                self.repo.clone(),
                self.digest.clone(),
            );
            let retry = self.options.retry_config();
            self.tasks.spawn(async move {
                let fetched = fetch(reg.as_ref(), &repo, &digest, range, &retry).await;
                (range.start, fetched)
            });
        }
    }
}

/// One chunk, retried within its budget on transient failures that the
/// registry did not retry itself.
async fn fetch(
    reg: &dyn Registry,
    repo: &RepoName,
    digest: &Digest,
    range: ByteRange,
    retry: &RetryConfig,
) -> Result<Fetched> {
    let mut retrier = Retrier::new(retry);
    loop {
        match fetch_once(reg, repo, digest, range).await {
            Err(err) => match retrier.delay_after(&err, None) {
                Some(delay) => {
                    tracing::debug!(%digest, start = range.start, %err, "retrying chunk");
                    wait(delay).await;
                }
                None => return Err(retrier.give_up(err)),
            },
            done => return done,
        }
    }
}

/// One range request, read to its end.
async fn fetch_once(
    reg: &dyn Registry,
    repo: &RepoName,
    digest: &Digest,
    range: ByteRange,
) -> Result<Fetched> {
    let started = Instant::now();
    let request = RangeRequest::bounded(range.start, range.end);
    let reader = match reg.get_blob_range(repo, digest, request).await {
        Err(err) if err.is(ErrorCode::Unsupported) => return Ok(Fetched::NoRanges),
        other => other?,
    };
    if reader.range != Some(range) {
        return Ok(Fetched::NoRanges);
    }
    // A chunk is at most `max_chunk` bytes: it fits memory by design.
    let len = range.len() as usize;
    let mut buf = BytesMut::with_capacity(len);
    let mut stream = reader.stream;
    while let Some(piece) = stream.next().await {
        let piece = piece?;
        if buf.len() + piece.len() > len {
            return Err(Error::transient(format!(
                "range {}-{} of {digest} brought more than {len} bytes",
                range.start, range.end
            )));
        }
        buf.extend_from_slice(&piece);
    }
    if buf.len() != len {
        return Err(Error::transient(format!(
            "range {}-{} of {digest} ended after {} of {len} bytes",
            range.start,
            range.end,
            buf.len()
        )));
    }
    Ok(Fetched::Data(buf.freeze(), started.elapsed()))
}
