//! [`download_to_file`]: a big blob written to a file chunk by chunk, at
//! each chunk's offset, as the parallel range requests finish.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use oci_core::{Descriptor, Error, Registry, RepoName, Result, Verifier};

use crate::download::whole_blob;
use crate::offload::{blocking, hash};
use crate::options::DownloadOptions;
use crate::source::{ChunkSource, Completed};

/// Downloads the blob `descriptor` of `repo` into a new file at `path`.
///
/// Chunks are fetched as by [`download`](crate::download) and written at
/// their offsets as they arrive; they are hashed in order, so a chunk
/// that finished early is held (with at most `options.concurrency` chunks
/// held or in flight) until the ones before it are hashed. On any failure,
/// including content that does not match the digest, the file is removed.
pub async fn download_to_file(
    reg: Arc<dyn Registry>,
    repo: &RepoName,
    descriptor: &Descriptor,
    path: &Path,
    options: DownloadOptions,
) -> Result<()> {
    let file = Arc::new(
        blocking({
            let path = path.to_owned();
            move || File::create(&path).map_err(Error::from)
        })
        .await?,
    );
    let written = fill(reg, repo, descriptor, &file, options).await;
    let synced = match written {
        Ok(()) => {
            let file = Arc::clone(&file);
            blocking(move || file.sync_all().map_err(Error::from)).await
        }
        Err(err) => Err(err),
    };
    if let Err(err) = synced {
        drop(file);
        let path = path.to_owned();
        if let Err(e) = blocking(move || std::fs::remove_file(&path).map_err(Error::from)).await {
            tracing::warn!(%e, "could not remove the file of a failed download");
        }
        return Err(err);
    }
    Ok(())
}

/// Writes the blob into `file` and checks it.
async fn fill(
    reg: Arc<dyn Registry>,
    repo: &RepoName,
    descriptor: &Descriptor,
    file: &Arc<File>,
    options: DownloadOptions,
) -> Result<()> {
    let size = descriptor.size;
    if size == 0 {
        return copy_whole(reg, repo, descriptor, file).await;
    }
    let mut source = ChunkSource::new(
        Arc::clone(&reg),
        repo.clone(),
        descriptor.digest.clone(),
        size,
        options,
    );
    let mut verifier = Verifier::new(descriptor.digest.clone(), Some(size));
    let mut ready: BTreeMap<u64, Bytes> = BTreeMap::new();
    let mut hashed = 0u64;
    while hashed < size {
        if let Some(data) = ready.remove(&hashed) {
            hashed += data.len() as u64;
            verifier = hash(verifier, data).await?;
            continue;
        }
        match source.next(ready.len()).await {
            Some(Ok(Completed::Chunk { offset, data })) if offset == hashed => {
                // The next in order: write and hash it at the same time.
                let len = data.len() as u64;
                let (written, hashed_now) =
                    futures::join!(write_at(file, offset, data.clone()), hash(verifier, data));
                written?;
                verifier = hashed_now?;
                hashed += len;
            }
            Some(Ok(Completed::Chunk { offset, data })) => {
                write_at(file, offset, data.clone()).await?;
                ready.insert(offset, data);
            }
            Some(Ok(Completed::NoRanges)) => {
                return copy_whole(reg, repo, descriptor, file).await;
            }
            Some(Err(err)) => return Err(err),
            None => return Err(Error::internal("the download ended before the blob did")),
        }
    }
    verifier.finish()
}

/// Reads the blob with one `get_blob` into `file`, in order.
async fn copy_whole(
    reg: Arc<dyn Registry>,
    repo: &RepoName,
    descriptor: &Descriptor,
    file: &Arc<File>,
) -> Result<()> {
    let mut stream = whole_blob(reg, repo.clone(), descriptor.clone());
    let mut offset = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece?;
        let len = piece.len() as u64;
        write_at(file, offset, piece).await?;
        offset += len;
    }
    Ok(())
}

/// Writes `data` at `offset` off the async threads.
async fn write_at(file: &Arc<File>, offset: u64, data: Bytes) -> Result<()> {
    let file = Arc::clone(file);
    blocking(move || file.write_all_at(&data, offset).map_err(Error::from)).await
}
