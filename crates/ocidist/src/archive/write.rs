//! Writes a [`Plan`] to disk — as one tar file or as a directory tree —
//! downloading its blobs in parallel straight to their final place.
//!
//! Everything goes to a hidden partial directory beside the target and is
//! renamed into place only when complete, so an interrupted or failed pull
//! leaves nothing half-written at the target path; run again, it resumes
//! from what that directory holds ([`crate::resume`]).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use oci_core::{Descriptor, Error, ErrorCode, Registry, RepoName, Result};

use super::tar::{self, Plan, Source};
use crate::progress::Progress;
use crate::resume::{Partial, Resumed, open_for_writing, reopen};
use crate::staged::io_err;

/// How much of a blob is gathered (as the network's own buffers, not
/// copied) before one hand-over to a writing thread.
const WRITE_CHUNK: usize = 1 << 20;

/// What shape the output takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One tar file.
    Tar,
    /// A directory tree.
    Dir,
}

/// Where blobs come from and how many download at once.
#[derive(Clone)]
pub struct BlobSource {
    /// The registry.
    pub registry: Arc<dyn Registry>,
    /// The repository.
    pub repo: RepoName,
    /// Parallel downloads.
    pub concurrency: usize,
    /// Progress display.
    pub progress: Progress,
    /// Blobs at least this large are fetched as parallel range requests
    /// (`oci_large::download`); `None` reads every blob as one stream.
    pub ranged_above: Option<u64>,
}

/// Writes `plan` to `target`; refuses an existing target unless `force`.
/// Returns the number of blob bytes downloaded.
pub async fn write(
    plan: &Plan,
    from: &BlobSource,
    target: &Path,
    shape: Shape,
    force: bool,
) -> Result<u64> {
    let partial = Partial::open(target, plan, force)?;
    let written = match shape {
        Shape::Tar => write_tar(plan, from, &partial).await,
        Shape::Dir => write_dir(plan, from, &partial).await,
    };
    match written {
        Ok(downloaded) => {
            partial.persist()?;
            Ok(downloaded)
        }
        Err(e) => Err(partial.failed(e)),
    }
}

/// A blob to download: its descriptor, the file and offset it goes to,
/// and its plan entry's index (where its progress is recorded).
type Job = (Descriptor, Arc<File>, u64, usize);

async fn write_tar(plan: &Plan, from: &BlobSource, partial: &Partial) -> Result<u64> {
    let path = &partial.path();
    let file = open_for_writing(path)?;
    file.set_len(plan.total_size())
        .map_err(|e| io_err(path, e))?;
    let file = Arc::new(file);
    let mut jobs = Vec::new();
    for (slot, entry) in plan.entries().iter().enumerate() {
        let header = tar::header(
            &entry.path,
            entry.size(),
            matches!(entry.source, Source::Directory),
        )?;
        file.write_all_at(&header, entry.header_offset)
            .map_err(|e| io_err(path, e))?;
        match &entry.source {
            Source::Inline(bytes) => file
                .write_all_at(bytes, entry.data_offset())
                .map_err(|e| io_err(path, e))?,
            Source::Blob(d) => {
                jobs.push(((**d).clone(), Arc::clone(&file), entry.data_offset(), slot))
            }
            Source::Directory => {}
        }
    }
    let total = download_all(from, jobs, partial).await?;
    let file = Arc::clone(&file);
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || file.sync_all().map_err(|e| io_err(&p, e)))
        .await
        .map_err(|e| Error::internal(format!("sync task failed: {e}")))??;
    Ok(total)
}

async fn write_dir(plan: &Plan, from: &BlobSource, partial: &Partial) -> Result<u64> {
    let root = &partial.path();
    std::fs::create_dir_all(root).map_err(|e| io_err(root, e))?;
    let mut jobs = Vec::new();
    for (slot, entry) in plan.entries().iter().enumerate() {
        let path = root.join(entry.path.trim_end_matches('/'));
        match &entry.source {
            Source::Directory => std::fs::create_dir_all(&path).map_err(|e| io_err(&path, e))?,
            Source::Inline(bytes) => std::fs::write(&path, bytes).map_err(|e| io_err(&path, e))?,
            Source::Blob(d) => {
                let file = open_for_writing(&path)?;
                jobs.push(((**d).clone(), Arc::new(file), 0, slot));
            }
        }
    }
    download_all(from, jobs, partial).await
}

/// Downloads every job; returns the bytes fetched.
async fn download_all(from: &BlobSource, jobs: Vec<Job>, partial: &Partial) -> Result<u64> {
    let total = jobs.iter().map(|j| j.0.size).sum();
    let from = &BlobSource {
        progress: from.progress.with_total(total),
        ..from.clone()
    };
    futures::stream::iter(jobs)
        .map(|job| download(from, job, partial))
        .buffer_unordered(from.concurrency.max(1))
        .try_fold(0, |sum, n| async move { Ok(sum + n) })
        .await
}

/// Streams one blob into its file at its offset, checking its length,
/// recording its progress; an earlier run's bytes are re-used (hashed
/// again, the rest asked for by range). Returns the bytes fetched.
async fn download(from: &BlobSource, job: Job, partial: &Partial) -> Result<u64> {
    let (d, file, offset, slot) = job;
    let bar = from.progress.blob(&d);
    let to = Place {
        file: &file,
        offset,
        partial,
        slot,
    };
    match reopen(from, &d, &file, offset, partial, slot).await? {
        Resumed::Nothing => {}
        Resumed::Complete => {
            bar.advance(d.size);
            bar.finish();
            return Ok(0);
        }
        Resumed::Rest(rest) => {
            bar.advance(rest.done);
            match write_stream(rest.stream, &d, &to, rest.done, Some(rest.verifier), &bar).await {
                Ok(fetched) => {
                    bar.finish();
                    return Ok(fetched);
                }
                Err(e) if e.is(ErrorCode::DigestInvalid) => {
                    tracing::warn!(digest = %d.digest, "the resumed blob did not verify; downloading it whole");
                    partial.record(slot, 0)?;
                }
                Err(e) => return Err(e),
            }
        }
    }
    let reader = from.registry.get_blob(&from.repo, &d.digest).await?;
    if reader.descriptor.size != d.size {
        return Err(Error::new(
            ErrorCode::SizeInvalid,
            format!(
                "blob {} is {} bytes in the registry, the manifest says {}",
                d.digest, reader.descriptor.size, d.size
            ),
        ));
    }
    let fetched = write_stream(reader.stream, &d, &to, 0, None, &bar).await?;
    bar.finish();
    Ok(fetched)
}

/// Where a blob's bytes go: its file, its offset there, and the plan
/// entry its progress is recorded for.
struct Place<'a> {
    file: &'a Arc<File>,
    offset: u64,
    partial: &'a Partial,
    slot: usize,
}

/// Writes `stream` (the blob from byte `start` on) into place, recording
/// progress after each write; checks the length, and with `verifier` the
/// digest of the whole. Returns the bytes fetched.
async fn write_stream(
    mut stream: oci_core::BlobStream,
    d: &Descriptor,
    to: &Place<'_>,
    start: u64,
    mut verifier: Option<oci_core::Verifier>,
    bar: &crate::progress::BlobBar,
) -> Result<u64> {
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batched = 0;
    let mut at = to.offset + start;
    let mut written = start;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        written += chunk.len() as u64;
        if written > d.size {
            return Err(Error::new(
                ErrorCode::SizeInvalid,
                format!("blob {} is longer than {} bytes", d.digest, d.size),
            ));
        }
        if let Some(v) = verifier.as_mut() {
            v.update(&chunk)?;
        }
        bar.advance(chunk.len() as u64);
        batched += chunk.len();
        batch.push(chunk);
        if batched >= WRITE_CHUNK {
            at = write_at(to.file, std::mem::take(&mut batch), at).await?;
            to.partial.record(to.slot, at - to.offset)?;
            batched = 0;
        }
    }
    if !batch.is_empty() {
        at = write_at(to.file, batch, at).await?;
    }
    if written != d.size {
        return Err(Error::new(
            ErrorCode::SizeInvalid,
            format!(
                "blob {} ended after {written} of {} bytes",
                d.digest, d.size
            ),
        ));
    }
    if let Some(v) = verifier {
        v.finish()?;
    }
    to.partial.record(to.slot, at - to.offset)?;
    Ok(written - start)
}

/// Writes `chunks` one after another from `at`; returns the offset after.
async fn write_at(file: &Arc<File>, chunks: Vec<Bytes>, at: u64) -> Result<u64> {
    let file = Arc::clone(file);
    let end = tokio::task::spawn_blocking(move || {
        let mut at = at;
        for chunk in &chunks {
            file.write_all_at(chunk, at)?;
            at += chunk.len() as u64;
        }
        Ok::<u64, std::io::Error>(at)
    })
    .await
    .map_err(|e| Error::internal(format!("write task failed: {e}")))??;
    Ok(end)
}
