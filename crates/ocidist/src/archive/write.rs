//! Writes a [`Plan`] to disk — as one tar file or as a directory tree —
//! downloading its blobs in parallel straight to their final place.
//!
//! Everything goes to a temporary path beside the target and is renamed
//! into place only when complete, so an interrupted or failed pull leaves
//! nothing half-written at the target path.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use oci_core::{Descriptor, Error, ErrorCode, Registry, RepoName, Result};

use super::tar::{self, Plan, Source};
use crate::progress::Progress;
use crate::staged::{Staged, io_err};

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
    let staged = Staged::new(target, shape == Shape::Dir, force)?;
    let downloaded = match shape {
        Shape::Tar => write_tar(plan, from, staged.path()).await,
        Shape::Dir => write_dir(plan, from, staged.path()).await,
    }
    .map_err(|e| staged.hide_temp(e))?;
    staged.persist()?;
    Ok(downloaded)
}

async fn write_tar(plan: &Plan, from: &BlobSource, path: &Path) -> Result<u64> {
    let file = File::create(path).map_err(|e| io_err(path, e))?;
    file.set_len(plan.total_size())
        .map_err(|e| io_err(path, e))?;
    let file = Arc::new(file);
    let mut jobs = Vec::new();
    for entry in plan.entries() {
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
            Source::Blob(d) => jobs.push(((**d).clone(), Arc::clone(&file), entry.data_offset())),
            Source::Directory => {}
        }
    }
    let total = download_all(from, jobs).await?;
    let file = Arc::clone(&file);
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || file.sync_all().map_err(|e| io_err(&p, e)))
        .await
        .map_err(|e| Error::internal(format!("sync task failed: {e}")))??;
    Ok(total)
}

async fn write_dir(plan: &Plan, from: &BlobSource, root: &Path) -> Result<u64> {
    std::fs::create_dir_all(root).map_err(|e| io_err(root, e))?;
    let mut jobs = Vec::new();
    for entry in plan.entries() {
        let path = root.join(entry.path.trim_end_matches('/'));
        match &entry.source {
            Source::Directory => std::fs::create_dir_all(&path).map_err(|e| io_err(&path, e))?,
            Source::Inline(bytes) => std::fs::write(&path, bytes).map_err(|e| io_err(&path, e))?,
            Source::Blob(d) => {
                let file = File::create(&path).map_err(|e| io_err(&path, e))?;
                jobs.push(((**d).clone(), Arc::new(file), 0));
            }
        }
    }
    download_all(from, jobs).await
}

async fn download_all(from: &BlobSource, jobs: Vec<(Descriptor, Arc<File>, u64)>) -> Result<u64> {
    let sizes: Vec<u64> = jobs.iter().map(|j| j.0.size).collect();
    let from = &BlobSource {
        progress: from.progress.with_total(sizes.iter().sum()),
        ..from.clone()
    };
    futures::stream::iter(jobs)
        .map(|(d, file, offset)| download(from, d, file, offset))
        .buffer_unordered(from.concurrency.max(1))
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(sizes.iter().sum())
}

/// Streams one blob into `file` at `offset`, checking its length.
async fn download(from: &BlobSource, d: Descriptor, file: Arc<File>, offset: u64) -> Result<()> {
    let bar = from.progress.blob(&d);
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
    let mut stream = reader.stream;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batched = 0;
    let mut at = offset;
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        written += chunk.len() as u64;
        if written > d.size {
            return Err(Error::new(
                ErrorCode::SizeInvalid,
                format!("blob {} is longer than {} bytes", d.digest, d.size),
            ));
        }
        bar.advance(chunk.len() as u64);
        batched += chunk.len();
        batch.push(chunk);
        if batched >= WRITE_CHUNK {
            at = write_at(&file, std::mem::take(&mut batch), at).await?;
            batched = 0;
        }
    }
    if !batch.is_empty() {
        write_at(&file, batch, at).await?;
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
    bar.finish();
    Ok(())
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
