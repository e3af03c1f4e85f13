//! Pushing, reading, tagging and deleting manifests. A manifest's bytes
//! are a blob of its repository's layout; `index.json` lists it (with a
//! ref name per tag), which is what makes it visible.

use oci_core::{
    Descriptor, Digest, Error, Manifest, ParsedManifest, RepoName, Required, Result, Tag,
};

use crate::content;
use crate::durable;
use crate::error::join_err;
use crate::index::{Change, ManifestInfo, RepoState};
use crate::store::Inner;

/// The descriptor of a listed manifest.
async fn lookup(inner: &Inner, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
    let mut guard = inner.repos.lock(repo).await?;
    guard
        .state()
        .await?
        .manifests
        .get(digest)
        .map(|info| info.descriptor.clone())
        .ok_or_else(|| Error::manifest_unknown(repo, digest))
}

/// The descriptor of a manifest by digest.
pub(crate) async fn resolve(inner: &Inner, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
    lookup(inner, repo, digest).await
}

/// The descriptor of the manifest a tag names.
pub(crate) async fn resolve_tag(inner: &Inner, repo: &RepoName, tag: &Tag) -> Result<Descriptor> {
    let mut guard = inner.repos.lock(repo).await?;
    let state = guard.state().await?;
    state
        .tags
        .get(tag)
        .and_then(|digest| state.manifests.get(digest))
        .map(|info| info.descriptor.clone())
        .ok_or_else(|| Error::manifest_unknown(repo, tag))
}

/// A manifest's bytes, read from its file and checked against its digest.
pub(crate) async fn read(
    inner: &Inner,
    repo: &RepoName,
    descriptor: Descriptor,
) -> Result<Manifest> {
    let path = inner.paths.repo_blob(repo, &descriptor.digest);
    let bytes = content::read_manifest(path, &descriptor.digest, &inner.hot).await?;
    Ok(Manifest { descriptor, bytes })
}

/// `MANIFEST_BLOB_UNKNOWN` unless everything `parsed` references is in the
/// repository: an image's config and layers (except foreign layers, which
/// carry `urls`), an index's child manifests. The subject need not exist.
async fn check_references(
    inner: &Inner,
    repo: &RepoName,
    state: &RepoState,
    parsed: &ParsedManifest,
) -> Result<()> {
    parsed
        .check_required(|required| async move {
            Ok(match required {
                Required::Blob(d) => content::stat(&inner.paths.repo_blob(repo, &d.digest))
                    .await?
                    .is_some(),
                Required::Manifest(d) => state.manifests.contains_key(&d.digest),
            })
        })
        .await
}

/// Stores a manifest after checking its digest, content and references,
/// and points `tags` at it.
pub(crate) async fn push(
    inner: &Inner,
    repo: &RepoName,
    manifest: &Manifest,
    tags: &[Tag],
) -> Result<Descriptor> {
    let parsed = manifest.verify()?;
    let info = ManifestInfo::new(manifest, &parsed);
    let descriptor = info.descriptor.clone();

    // Check against what exists before creating anything.
    if let Ok(mut guard) = inner.repos.lock(repo).await {
        let state = guard.state().await?;
        check_references(inner, repo, state, &parsed).await?;
    } else {
        check_references(inner, repo, &RepoState::default(), &parsed).await?;
    }
    let file = inner.paths.repo_blob(repo, &descriptor.digest);
    let linked =
        content::write_manifest(&inner.paths, file.clone(), manifest.bytes.clone()).await?;
    let mut guard = inner.repos.lock_or_create(repo).await?;
    // Held until the index listing the manifest is durable, so a garbage
    // collection cannot unlink what is checked here before it is listed.
    let _fence = guard.fence().await?;
    // Checked again under the lock: a child may have gone meanwhile, or a
    // collection may have unlinked the file just written.
    if content::write_manifest(&inner.paths, file, manifest.bytes.clone()).await? || linked {
        guard.linked();
    }
    check_references(inner, repo, guard.state().await?, &parsed).await?;
    guard.state().await?.add(info, tags);
    guard
        .save(Change::Add {
            descriptor: Box::new(descriptor.clone()),
            tags: tags.to_vec(),
        })
        .await?;
    tracing::debug!(%repo, digest = %descriptor.digest, ?tags, "manifest pushed");
    Ok(descriptor)
}

/// Unlists a manifest and its tags, then unlinks its file from the layout.
pub(crate) async fn delete(inner: &Inner, repo: &RepoName, digest: &Digest) -> Result<()> {
    let mut guard = inner.repos.lock(repo).await?;
    guard
        .state()
        .await?
        .remove(digest)
        .ok_or_else(|| Error::manifest_unknown(repo, digest))?;
    guard
        .save(Change::Remove {
            digest: digest.clone(),
        })
        .await?;
    let path = inner.paths.repo_blob(repo, digest);
    inner.hot.remove(&path);
    tokio::task::spawn_blocking(move || durable::remove(&path))
        .await
        .map_err(join_err)??;
    tracing::debug!(%repo, %digest, "manifest deleted");
    Ok(())
}

/// Removes a tag, leaving its manifest.
pub(crate) async fn delete_tag(inner: &Inner, repo: &RepoName, tag: &Tag) -> Result<()> {
    let mut guard = inner.repos.lock(repo).await?;
    guard
        .state()
        .await?
        .untag(tag)
        .ok_or_else(|| Error::manifest_unknown(repo, tag))?;
    guard.save(Change::Untag { tag: tag.clone() }).await?;
    tracing::debug!(%repo, %tag, "tag deleted");
    Ok(())
}
