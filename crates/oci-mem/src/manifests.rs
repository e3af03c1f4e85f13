//! Pushing, reading, tagging and deleting manifests.

use oci_core::{
    Descriptor, Digest, Error, Manifest, ParsedManifest, RepoName, Required, Result, Tag,
};

use crate::state::{Repo, Shared, StoredManifest};

/// A manifest by digest.
pub(crate) fn get(shared: &Shared, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
    let state = shared.read();
    state
        .repo(repo)?
        .manifests
        .get(digest)
        .map(|stored| stored.manifest.clone())
        .ok_or_else(|| Error::manifest_unknown(repo, digest))
}

/// The manifest a tag points at.
pub(crate) fn get_tag(shared: &Shared, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
    let state = shared.read();
    let r = state.repo(repo)?;
    r.tags
        .get(tag)
        .and_then(|digest| r.manifests.get(digest))
        .map(|stored| stored.manifest.clone())
        .ok_or_else(|| Error::manifest_unknown(repo, tag))
}

/// `MANIFEST_BLOB_UNKNOWN` unless everything `parsed` references is in
/// `repo`: an image's config and layers (but not foreign layers, which
/// carry `urls`), an index's child manifests. The subject need not exist.
fn check_references(repo: Option<&Repo>, parsed: &ParsedManifest) -> Result<()> {
    for required in parsed.required() {
        let present = repo.is_some_and(|r| match required {
            Required::Blob(d) => r.blobs.contains_key(&d.digest),
            Required::Manifest(d) => r.manifests.contains_key(&d.digest),
        });
        if !present {
            return Err(required.missing());
        }
    }
    Ok(())
}

/// Stores a manifest after checking its digest, its content and its
/// references, and points `tags` at it.
pub(crate) fn push(
    shared: &Shared,
    repo: &RepoName,
    manifest: &Manifest,
    tags: &[Tag],
) -> Result<Descriptor> {
    let parsed = manifest.verify()?;
    let descriptor = manifest.descriptor.plain();
    let stored = StoredManifest {
        manifest: Manifest {
            descriptor: descriptor.clone(),
            bytes: manifest.bytes.clone(),
        },
        subject: parsed.subject().map(|s| s.digest.clone()),
        blobs: parsed
            .blobs()
            .into_iter()
            .map(|d| d.digest.clone())
            .collect(),
    };

    let mut state = shared.write();
    check_references(state.repos.get(repo), &parsed)?;
    let r = state.repo_or_create(repo);
    if let Some(subject) = &stored.subject {
        r.referrers.entry(subject.clone()).or_default().insert(
            descriptor.digest.clone(),
            parsed.referrer_descriptor(&descriptor),
        );
    }
    r.manifests.insert(descriptor.digest.clone(), stored);
    for tag in tags {
        r.tags.insert(tag.clone(), descriptor.digest.clone());
    }
    drop(state);
    tracing::debug!(%repo, digest = %descriptor.digest, ?tags, "manifest pushed");
    Ok(descriptor)
}

/// Deletes a manifest, the tags that point at it and its referrer entry.
pub(crate) fn delete(shared: &Shared, repo: &RepoName, digest: &Digest) -> Result<()> {
    let mut state = shared.write();
    let r = state.repo_mut(repo)?;
    let stored = r
        .manifests
        .remove(digest)
        .ok_or_else(|| Error::manifest_unknown(repo, digest))?;
    r.tags.retain(|_, target| target != digest);
    if let Some(subject) = &stored.subject
        && let Some(entries) = r.referrers.get_mut(subject)
    {
        entries.remove(digest);
        if entries.is_empty() {
            r.referrers.remove(subject);
        }
    }
    state.prune(repo);
    drop(state);
    tracing::debug!(%repo, %digest, "manifest deleted");
    Ok(())
}

/// Deletes a tag, leaving the manifest.
pub(crate) fn delete_tag(shared: &Shared, repo: &RepoName, tag: &Tag) -> Result<()> {
    let mut state = shared.write();
    state
        .repo_mut(repo)?
        .tags
        .remove(tag)
        .ok_or_else(|| Error::manifest_unknown(repo, tag))?;
    drop(state);
    tracing::debug!(%repo, %tag, "tag deleted");
    Ok(())
}
