//! When a repository exists: from its first blob or manifest until it
//! holds neither (as in `oci-mem`; `oci-layout` drops such a repository
//! at its next garbage collection). A repository exists while any object
//! is under `repos/<repo>/` (the catalog lists those "directories"), so
//! one that holds nothing any more has every object there removed: the
//! empty objects of untagged tags, referrer entries left by an
//! interrupted delete.
//!
//! Whether it holds anything is one listing of `repos/<repo>/`: its
//! manifests are there, and so is an index entry of every blob it links
//! (`repos/<repo>/blobs/`, written before the link and removed after it).

use oci_core::{RepoName, Result};

use crate::error::store_err;
use crate::keys;
use crate::store::Inner;

/// Whether `repo` exists: anything is stored under its key prefix.
pub(crate) async fn exists(inner: &Inner, repo: &RepoName) -> Result<bool> {
    let dir = keys::repo_dir(repo);
    let found = inner
        .store
        .list_with_delimiter(Some(&dir))
        .await
        .map_err(store_err("list", &dir))?;
    Ok(!found.objects.is_empty() || !found.common_prefixes.is_empty())
}

/// Removes what is left of `repo` if it holds no manifest and no blob;
/// whether it did. Only the objects listed are deleted, so a push landing
/// meanwhile keeps what it wrote after the listing (its blob's index
/// entry or manifest keeps the repository listed).
pub(crate) async fn remove_if_empty(inner: &Inner, repo: &RepoName) -> Result<bool> {
    let dir = keys::repo_dir(repo);
    let (manifests, blobs) = (keys::manifests(repo), keys::repo_blobs(repo));
    let listed = inner.list(&dir).await?;
    if listed.iter().any(|meta| {
        meta.location.prefix_matches(&manifests) || meta.location.prefix_matches(&blobs)
    }) {
        return Ok(false);
    }
    for meta in &listed {
        inner.delete(&meta.location).await?;
    }
    if !listed.is_empty() {
        tracing::debug!(%repo, "empty repository removed");
    }
    Ok(true)
}
