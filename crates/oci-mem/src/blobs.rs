//! Reading, pushing, mounting and deleting blobs.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use oci_core::registry::bytes_stream;
use oci_core::{
    BlobReader, BlobStream, Descriptor, Digest, Error, ErrorCode, RangeRequest, RepoName, Result,
    Verifier, media,
};

use crate::state::Shared;

/// The size of the pieces a blob is streamed out in.
const READ_CHUNK: usize = 64 * 1024;

/// The most a push reserves up front from a declared size; a larger blob
/// grows its buffer as its bytes arrive.
const MAX_RESERVE: u64 = 16 * 1024 * 1024;

/// The descriptor of a blob the registry holds (it keeps no media types).
pub(crate) fn blob_descriptor(digest: &Digest, size: u64) -> Descriptor {
    Descriptor::new(media::OCTET_STREAM, digest.clone(), size)
}

/// Streams a whole blob.
pub(crate) fn get(shared: &Shared, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
    let data = shared.read().blob(repo, digest)?;
    Ok(BlobReader {
        descriptor: blob_descriptor(digest, data.len() as u64),
        range: None,
        stream: bytes_stream(data, READ_CHUNK),
    })
}

/// Streams part of a blob.
pub(crate) fn get_range(
    shared: &Shared,
    repo: &RepoName,
    digest: &Digest,
    request: RangeRequest,
) -> Result<BlobReader> {
    let data = shared.read().blob(repo, digest)?;
    let size = data.len() as u64;
    let range = request.resolve(size)?;
    // `resolve` keeps the range inside the blob, whose length fits a usize.
    let part = data.slice(range.start as usize..=range.end as usize);
    Ok(BlobReader {
        descriptor: blob_descriptor(digest, size),
        range: Some(range),
        stream: bytes_stream(part, READ_CHUNK),
    })
}

/// The descriptor of a blob the repository links.
pub(crate) fn resolve(shared: &Shared, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
    let size = shared.read().blob(repo, digest)?.len() as u64;
    Ok(blob_descriptor(digest, size))
}

/// Receives a whole blob, checking digest and size as it streams in;
/// nothing is stored unless both match.
pub(crate) async fn push(
    shared: &Shared,
    repo: &RepoName,
    digest: &Digest,
    size: Option<u64>,
    mut body: BlobStream,
) -> Result<Descriptor> {
    let mut verifier = Verifier::new(digest.clone(), size);
    let mut data = BytesMut::with_capacity(size.unwrap_or(0).min(MAX_RESERVE) as usize);
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        verifier.update(&chunk)?;
        data.extend_from_slice(&chunk);
    }
    verifier.finish()?;
    let data: Bytes = data.freeze();
    let len = data.len() as u64;
    shared.write().link_blob(repo, digest, data);
    tracing::debug!(%repo, %digest, size = len, "blob pushed");
    Ok(blob_descriptor(digest, len))
}

/// Links a blob of `from` into `repo` without copying it.
pub(crate) fn mount(
    shared: &Shared,
    repo: &RepoName,
    from: &RepoName,
    digest: &Digest,
) -> Result<Descriptor> {
    let mut state = shared.write();
    let data = state.blob(from, digest).map_err(|_| {
        Error::new(
            ErrorCode::BlobUnknown,
            format!("cannot mount {digest}: repository {from} does not hold it"),
        )
    })?;
    let size = data.len() as u64;
    state.link_blob(repo, digest, data);
    tracing::debug!(%repo, %from, %digest, "blob mounted");
    Ok(blob_descriptor(digest, size))
}

/// Unlinks a blob from a repository.
pub(crate) fn delete(shared: &Shared, repo: &RepoName, digest: &Digest) -> Result<()> {
    shared.write().unlink_blob(repo, digest)?;
    tracing::debug!(%repo, %digest, "blob deleted");
    Ok(())
}
