//! [`upload`]: a big blob pushed as a chunked upload, each chunk retried
//! by resuming the upload where the store says it stands.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use oci_core::{
    BlobStream, BlobWriter, Descriptor, Digest, Error, ErrorCode, Registry, RepoName, Result,
};
use tokio::io::AsyncReadExt;

use oci_core::retry::Retrier;

use crate::options::{UploadOptions, wait};

/// Bytes read from a file per read.
const FILE_READ: usize = 256 * 1024;

/// Uploads `body`, which must hash to `digest`, to `repo` in chunks of
/// `options.chunk` bytes.
///
/// A chunk that fails with a retryable error is retried after resuming
/// the upload by id: the store's reported size says how much of the chunk
/// it already has, and only the rest is sent again. At most one chunk is
/// held in memory. The commit itself is not retried. A failed upload is
/// cancelled (best effort) so the store can free it.
pub async fn upload(
    reg: &dyn Registry,
    repo: &RepoName,
    body: BlobStream,
    digest: &Digest,
    options: &UploadOptions,
) -> Result<Descriptor> {
    let mut writer = reg.push_blob_chunked(repo).await?;
    let chunk = options.chunk.max(writer.chunk_min().unwrap_or(0)).max(1);
    let mut chunks = rechunk(body, chunk as usize);
    while let Some(data) = chunks.next().await {
        let data = match data {
            Ok(data) => data,
            Err(err) => {
                if let Err(e) = writer.cancel().await {
                    tracing::debug!(%e, "cancelling the failed upload failed");
                }
                return Err(err);
            }
        };
        let id = writer.id().to_owned();
        writer = match write_chunk(reg, repo, writer, data, options).await {
            Ok(writer) => writer,
            Err(err) => {
                abandon(reg, repo, &id).await;
                return Err(err);
            }
        };
    }
    writer.commit(digest).await
}

/// Best effort: cancels upload `id` so the store can free what it holds.
async fn abandon(reg: &dyn Registry, repo: &RepoName, id: &str) {
    let cancelled = match reg.push_blob_chunked_resume(repo, id).await {
        Ok(writer) => writer.cancel().await,
        Err(err) => Err(err),
    };
    if let Err(err) = cancelled {
        tracing::debug!(upload = %id, %err, "cancelling the failed upload failed");
    }
}

/// Uploads the file at `path`, which must hash to `digest`, as [`upload`] does.
pub async fn upload_file(
    reg: &dyn Registry,
    repo: &RepoName,
    path: &Path,
    digest: &Digest,
    options: &UploadOptions,
) -> Result<Descriptor> {
    let file = tokio::fs::File::open(path).await?;
    let body = futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = BytesMut::with_capacity(FILE_READ);
        match file.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buf.freeze()), Some(file))),
            Err(err) => Some((Err(Error::from(err)), None)),
        }
    })
    .boxed();
    upload(reg, repo, body, digest, options).await
}

/// Writes one chunk, resuming and retrying on retryable failures; returns
/// the writer to go on with.
async fn write_chunk(
    reg: &dyn Registry,
    repo: &RepoName,
    mut writer: Box<dyn BlobWriter>,
    data: Bytes,
    options: &UploadOptions,
) -> Result<Box<dyn BlobWriter>> {
    let start = writer.size();
    let end = start + data.len() as u64;
    let mut retrier = Retrier::new(&options.retry_config());
    loop {
        let have = writer.size();
        if have < start || have > end {
            return Err(Error::new(
                ErrorCode::BlobUploadInvalid,
                format!(
                    "upload {} stands at {have} bytes, outside the chunk {start}..{end} being sent",
                    writer.id()
                ),
            ));
        }
        if have == end {
            return Ok(writer);
        }
        // `have - start` is within the chunk, so it fits a usize.
        let rest = data.slice((have - start) as usize..);
        let id = writer.id().to_owned();
        match writer.write(rest).await {
            Ok(()) => return Ok(writer),
            Err(err) => match retrier.delay_after(&err, None) {
                Some(delay) => {
                    tracing::debug!(upload = %id, offset = have, %err, "retrying chunk");
                    wait(delay).await;
                    writer = resume(reg, repo, &id, &mut retrier).await?;
                }
                None => return Err(retrier.give_up(err)),
            },
        }
    }
}

/// Reopens upload `id`, itself retried within the chunk's budget.
async fn resume(
    reg: &dyn Registry,
    repo: &RepoName,
    id: &str,
    retrier: &mut Retrier,
) -> Result<Box<dyn BlobWriter>> {
    loop {
        match reg.push_blob_chunked_resume(repo, id).await {
            Ok(writer) => return Ok(writer),
            Err(err) => match retrier.delay_after(&err, None) {
                Some(delay) => {
                    tracing::debug!(upload = %id, %err, "retrying resume");
                    wait(delay).await;
                }
                None => return Err(retrier.give_up(err)),
            },
        }
    }
}

/// `body` cut into pieces of exactly `chunk` bytes (the last may be
/// shorter); holds at most one chunk plus one incoming piece.
fn rechunk(body: BlobStream, chunk: usize) -> BlobStream {
    let state = (body, BytesMut::new(), false);
    futures::stream::unfold(state, move |(mut body, mut buf, mut ended)| async move {
        while !ended && buf.len() < chunk {
            match body.next().await {
                Some(Ok(piece)) => buf.extend_from_slice(&piece),
                Some(Err(err)) => return Some((Err(err), (body, BytesMut::new(), true))),
                None => ended = true,
            }
        }
        if buf.is_empty() {
            return None;
        }
        let take = chunk.min(buf.len());
        let out = buf.split_to(take).freeze();
        Some((Ok(out), (body, buf, ended)))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_core::registry::{bytes_stream, collect_list};

    #[tokio::test]
    async fn rechunk_cuts_exact_pieces() {
        let data = Bytes::from((0..10_000u32).map(|i| i as u8).collect::<Vec<_>>());
        let pieces = collect_list(rechunk(bytes_stream(data.clone(), 333), 4096))
            .await
            .unwrap();
        let sizes: Vec<_> = pieces.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [4096, 4096, 1808]);
        assert_eq!(pieces.concat(), data);
    }
}
