//! Reading, pushing, mounting and deleting blobs. A repository holds a
//! blob when its layout has the file `blobs/<alg>/<hex>`, a hard link to
//! the shared store.

use oci_core::{
    BlobReader, BlobStream, Descriptor, Digest, Error, ErrorCode, RangeRequest, RepoName, Result,
};

use crate::content;
use crate::durable;
use crate::error::join_err;
use crate::install::{self, Source};
use crate::store::Inner;

/// Streams a blob, or part of it.
pub(crate) async fn get(
    inner: &Inner,
    repo: &RepoName,
    digest: &Digest,
    range: Option<RangeRequest>,
) -> Result<BlobReader> {
    let path = inner.paths.repo_blob(repo, digest);
    let (size, range, stream) = content::open(&inner.paths, path, digest, range, &inner.verified)
        .await?
        .ok_or_else(|| Error::blob_unknown(repo, digest))?;
    Ok(BlobReader {
        descriptor: Descriptor::blob(digest, size),
        range,
        stream,
    })
}

/// The descriptor of a blob the repository holds.
pub(crate) async fn resolve(inner: &Inner, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
    let size = content::stat(&inner.paths.repo_blob(repo, digest))
        .await?
        .ok_or_else(|| Error::blob_unknown(repo, digest))?;
    Ok(Descriptor::blob(digest, size))
}

/// Receives a whole blob into the shared store and links it into `repo`.
pub(crate) async fn push(
    inner: &Inner,
    repo: &RepoName,
    digest: &Digest,
    size: Option<u64>,
    body: BlobStream,
) -> Result<Descriptor> {
    let (len, source) = content::receive(inner, digest, size, body).await?;
    let settled = async {
        let guard = inner.repos.lock_or_create(repo).await?;
        let _fence = guard.fence().await?;
        install::settle(inner, source.clone(), repo, digest, Some(len)).await
    }
    .await;
    if let Source::Verified(tmp) = source {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    settled?;
    tracing::debug!(%repo, %digest, size = len, "blob pushed");
    Ok(Descriptor::blob(digest, len))
}

/// Links a blob of `from` into `repo` (a hard link: no bytes copied). The
/// shared store's file is linked, once known to be intact.
pub(crate) async fn mount(
    inner: &Inner,
    repo: &RepoName,
    from: &RepoName,
    digest: &Digest,
) -> Result<Descriptor> {
    let source = inner.paths.repo_blob(from, digest);
    let size = content::stat(&source)
        .await?
        .ok_or_else(|| Error::mount_source_unknown(from, digest))?;
    let guard = inner.repos.lock_or_create(repo).await?;
    let _fence = guard.fence().await?;
    let store = inner.paths.store_blob(digest);
    if content::stat(&store).await?.is_none() {
        // A layout put here by hand: its file joins the store, to be
        // verified before it is linked.
        content::adopt(source, store).await?;
    }
    install::settle(inner, Source::Store, repo, digest, Some(size))
        .await
        .map_err(|e| {
            if e.is(ErrorCode::BlobUnknown) {
                Error::new(
                    ErrorCode::BlobUnknown,
                    format!("cannot mount {digest}: repository {from} holds no intact copy"),
                )
            } else {
                e
            }
        })?;
    tracing::debug!(%repo, %from, %digest, "blob mounted");
    Ok(Descriptor::blob(digest, size))
}

/// Unlinks a blob from a repository. The bytes stay in the shared store
/// until [`crate::LayoutRegistry::gc`]. A manifest's own file is not a blob
/// to delete: that is what `delete_manifest` is for.
pub(crate) async fn delete(inner: &Inner, repo: &RepoName, digest: &Digest) -> Result<()> {
    let mut guard = inner
        .repos
        .lock(repo)
        .await
        .map_err(|_| Error::blob_unknown(repo, digest))?;
    if guard.state().await?.manifests.contains_key(digest) {
        return Err(Error::manifest_is_not_a_blob(repo, digest));
    }
    let path = inner.paths.repo_blob(repo, digest);
    let removed = tokio::task::spawn_blocking(move || durable::remove(&path))
        .await
        .map_err(join_err)??;
    if !removed {
        return Err(Error::blob_unknown(repo, digest));
    }
    tracing::debug!(%repo, %digest, "blob deleted");
    Ok(())
}
