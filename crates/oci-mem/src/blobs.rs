//! Reading, pushing, mounting and deleting blobs.

use futures::StreamExt;
use oci_core::{
    BlobReader, BlobStream, Descriptor, Digest, Error, RangeRequest, RepoName, Result, Verifier,
};

use oci_core::pipe::Feeder;

use crate::data::Chunks;
use crate::state::Shared;

/// Streams a whole blob.
pub(crate) fn get(shared: &Shared, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
    let data = shared.read().blob(repo, digest)?;
    Ok(BlobReader {
        descriptor: Descriptor::blob(digest, data.len()),
        range: None,
        stream: data.stream(None),
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
    let size = data.len();
    let range = request.resolve(size)?;
    Ok(BlobReader {
        descriptor: Descriptor::blob(digest, size),
        range: Some(range),
        stream: data.stream(Some(range)),
    })
}

/// The descriptor of a blob the repository links.
pub(crate) fn resolve(shared: &Shared, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
    let size = shared.read().blob(repo, digest)?.len();
    Ok(Descriptor::blob(digest, size))
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
    // Large content is hashed on a helper thread beside its receiving.
    let mut verifier = Feeder::new(Verifier::new(digest.clone(), size), 1 << 20);
    let mut pieces = Chunks::default();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        verifier.push(chunk.clone()).await?;
        pieces.push(chunk);
    }
    verifier.finish().await?.finish()?;
    let data = pieces.finish();
    let len = data.len();
    shared.write().link_blob(repo, digest, data);
    tracing::debug!(%repo, %digest, size = len, "blob pushed");
    Ok(Descriptor::blob(digest, len))
}

/// Links a blob of `from` into `repo` without copying it.
pub(crate) fn mount(
    shared: &Shared,
    repo: &RepoName,
    from: &RepoName,
    digest: &Digest,
) -> Result<Descriptor> {
    let mut state = shared.write();
    let data = state
        .blob(from, digest)
        .map_err(|_| Error::mount_source_unknown(from, digest))?;
    let size = data.len();
    state.link_blob(repo, digest, data);
    tracing::debug!(%repo, %from, %digest, "blob mounted");
    Ok(Descriptor::blob(digest, size))
}

/// Unlinks a blob from a repository.
pub(crate) fn delete(shared: &Shared, repo: &RepoName, digest: &Digest) -> Result<()> {
    let freed = shared.write().unlink_blob(repo, digest)?;
    tracing::debug!(%repo, %digest, ?freed, "blob deleted");
    Ok(())
}
