//! Pushing, reading, tagging and deleting manifests. A manifest is stored
//! at `repos/<repo>/manifests/<alg>/<hex>` as its media type, a newline,
//! then its exact bytes; a tag is `repos/<repo>/tags/<tag>` holding the
//! digest it points at; a referrer is an object under
//! `repos/<repo>/referrers/<subject>/` holding its descriptor.
//!
//! Nothing here reads, changes and writes back a shared object, except
//! untagging on delete: a tag move is one atomic put (the last push wins,
//! as in any registry), a referrer is one object of its own. Untagging
//! a deleted manifest's tags is a conditional write (`PutMode::Update`)
//! of an empty body, retried on conflict, so a tag moved meanwhile by
//! another server keeps its new target.

use bytes::{Bytes, BytesMut};
use object_store::{PutMode, UpdateVersion};
use oci_core::{
    Descriptor, Digest, Error, ErrorCode, Manifest, ParsedManifest, RepoName, Required, Result, Tag,
};

use crate::error::ObjError;
use crate::fence;
use crate::keys;
use crate::store::{Inner, Put};

/// How often an untag is retried when the tag keeps changing under it.
const UNTAG_TRIES: usize = 16;

/// The stored form of a manifest.
fn encode(manifest: &Manifest) -> Bytes {
    let mut out = BytesMut::with_capacity(manifest.bytes.len() + 64);
    out.extend_from_slice(manifest.media_type().as_bytes());
    out.extend_from_slice(b"\n");
    out.extend_from_slice(&manifest.bytes);
    out.freeze()
}

/// A manifest read back from its stored form, checked against `digest`.
fn decode(key: &object_store::path::Path, digest: &Digest, stored: Bytes) -> Result<Manifest> {
    let Some(newline) = stored.iter().position(|b| *b == b'\n') else {
        return Err(ObjError::corrupt(key, "a manifest object without a media type").into());
    };
    let media_type = std::str::from_utf8(&stored[..newline])
        .map_err(|_| ObjError::corrupt(key, "a manifest's media type is not text"))?
        .to_owned();
    let bytes = stored.slice(newline + 1..);
    if !digest.matches(&bytes) {
        return Err(ObjError::corrupt(
            key,
            format!("a stored manifest does not match its digest {digest}"),
        )
        .into());
    }
    let size = bytes.len() as u64;
    Ok(Manifest {
        descriptor: Descriptor::new(media_type, digest.clone(), size),
        bytes,
    })
}

/// A manifest by digest, verified.
pub(crate) async fn get(inner: &Inner, repo: &RepoName, digest: &Digest) -> Result<Manifest> {
    let key = keys::manifest(repo, digest);
    let (stored, _) = inner
        .get_small(&key)
        .await?
        .ok_or_else(|| Error::manifest_unknown(repo, digest))?;
    decode(&key, digest, stored)
}

/// The digest a tag points at, with the tag object's version.
async fn read_tag(
    inner: &Inner,
    repo: &RepoName,
    tag: &Tag,
) -> Result<Option<(Digest, UpdateVersion)>> {
    let key = keys::tag(repo, tag);
    let Some((body, meta)) = inner.get_small(&key).await? else {
        return Ok(None);
    };
    if body.is_empty() {
        return Ok(None);
    }
    let digest = std::str::from_utf8(&body)
        .ok()
        .and_then(|s| s.trim().parse::<Digest>().ok())
        .ok_or_else(|| Error::from(ObjError::corrupt(&key, "a tag without a digest")))?;
    let version = UpdateVersion {
        e_tag: meta.e_tag,
        version: meta.version,
    };
    Ok(Some((digest, version)))
}

/// The manifest a tag points at. The tag is read from the bucket every
/// time (a tag moved through another server is seen at once); the
/// manifest it names comes from [`Recent`] when this process read it
/// before: a manifest's bytes never change under its digest, and a
/// manifest is untagged before it is deleted, so one a tag points at
/// exists.
pub(crate) async fn get_tag(inner: &Inner, repo: &RepoName, tag: &Tag) -> Result<Manifest> {
    let (digest, _) = read_tag(inner, repo, tag)
        .await?
        .ok_or_else(|| Error::manifest_unknown(repo, tag))?;
    if let Some(manifest) = inner.recent.get(repo, &digest) {
        return Ok(manifest);
    }
    let manifest = get(inner, repo, &digest).await.map_err(|e| {
        if e.is(ErrorCode::ManifestUnknown) {
            Error::manifest_unknown(repo, tag)
        } else {
            e
        }
    })?;
    inner.recent.insert(repo, &manifest);
    Ok(manifest)
}

/// Manifests this process read through a tag, by repository and digest,
/// within a byte budget (emptied when full): a tag's read then costs one
/// request, not two.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    held: std::sync::Mutex<RecentInner>,
}

#[derive(Debug, Default)]
struct RecentInner {
    manifests: std::collections::HashMap<(RepoName, Digest), Manifest>,
    bytes: usize,
}

impl Recent {
    /// The most manifest bytes held.
    const BUDGET: usize = 4 << 20;

    fn lock(&self) -> std::sync::MutexGuard<'_, RecentInner> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The manifest `digest` of `repo`, if held.
    fn get(&self, repo: &RepoName, digest: &Digest) -> Option<Manifest> {
        self.lock()
            .manifests
            .get(&(repo.clone(), digest.clone()))
            .cloned()
    }

    /// Holds a verified manifest of `repo`.
    fn insert(&self, repo: &RepoName, manifest: &Manifest) {
        let size = manifest.bytes.len();
        if size > Self::BUDGET / 16 {
            return;
        }
        let mut held = self.lock();
        if held.bytes + size > Self::BUDGET {
            held.manifests.clear();
            held.bytes = 0;
        }
        let key = (repo.clone(), manifest.descriptor.digest.clone());
        if held.manifests.insert(key, manifest.clone()).is_none() {
            held.bytes += size;
        }
    }

    /// Forgets the manifest `digest` of `repo` (deleted through this
    /// process).
    fn remove(&self, repo: &RepoName, digest: &Digest) {
        let mut held = self.lock();
        if let Some(gone) = held.manifests.remove(&(repo.clone(), digest.clone())) {
            held.bytes -= gone.bytes.len();
        }
    }
}

/// `MANIFEST_BLOB_UNKNOWN` unless everything `parsed` references is in
/// the repository.
async fn check_references(inner: &Inner, repo: &RepoName, parsed: &ParsedManifest) -> Result<()> {
    parsed
        .check_required(|required| async move {
            let key = match required {
                Required::Blob(d) => keys::blob_link(&d.digest, repo),
                Required::Manifest(d) => keys::manifest(repo, &d.digest),
            };
            Ok(inner.head(&key).await?.is_some())
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
    let descriptor = manifest.descriptor.plain();
    let watch = fence::watch(inner).await?;
    check_references(inner, repo, &parsed).await?;

    let key = keys::manifest(repo, &descriptor.digest);
    let created = matches!(inner.create(&key, encode(manifest)).await?, Put::Done(_));
    let referrer = parsed.subject().map(|subject| {
        let key = keys::referrer(repo, &subject.digest, &descriptor.digest);
        let entry = crate::lists::ReferrerEntry {
            subject: subject.digest.clone(),
            descriptor: parsed.referrer_descriptor(&descriptor),
        };
        let body = serde_json::to_vec(&entry).unwrap_or_default();
        (key, body)
    });
    if let Some((key, body)) = &referrer {
        inner.put(key, body.clone()).await?;
    }
    if watch.overlapped(inner).await?
        && let Err(err) = check_references(inner, repo, &parsed).await
    {
        // A collection removed what it references meanwhile: take back
        // what this push added, so nothing half-written stays visible.
        if created {
            if let Some((key, _)) = &referrer {
                inner.delete(key).await?;
            }
            inner.delete(&key).await?;
        }
        return Err(err);
    }
    for tag in tags {
        inner
            .put(&keys::tag(repo, tag), descriptor.digest.to_string())
            .await?;
    }
    tracing::debug!(%repo, digest = %descriptor.digest, ?tags, "manifest pushed");
    Ok(descriptor)
}

/// Points no tag of `repo` at `digest` any more, leaving tags moved
/// meanwhile where they point.
async fn untag_all(inner: &Inner, repo: &RepoName, digest: &Digest) -> Result<()> {
    for meta in inner.list(&keys::tags(repo)).await? {
        if meta.size == 0 {
            continue;
        }
        let Some(tag) = meta
            .location
            .filename()
            .and_then(|name| name.parse::<Tag>().ok())
        else {
            continue;
        };
        untag_if(inner, repo, &tag, digest).await?;
    }
    Ok(())
}

/// Removes `tag` if it still points at `digest`.
async fn untag_if(inner: &Inner, repo: &RepoName, tag: &Tag, digest: &Digest) -> Result<()> {
    let key = keys::tag(repo, tag);
    for _ in 0..UNTAG_TRIES {
        let Some((target, version)) = read_tag(inner, repo, tag).await? else {
            return Ok(());
        };
        if target != *digest {
            return Ok(());
        }
        if !inner.conditional.update {
            // Weaker: a move landing between the read and the delete is lost.
            return inner.delete(&key).await;
        }
        match inner
            .put_if(&key, Bytes::new(), PutMode::Update(version))
            .await?
        {
            Put::Done(_) => return Ok(()),
            Put::Conflict => continue,
        }
    }
    Err(Error::new(
        ErrorCode::Unknown,
        format!("tag {tag} of {repo} kept changing while its manifest was deleted; try again"),
    ))
}

/// Deletes a manifest, the tags that point at it and its referrer entry.
pub(crate) async fn delete(inner: &Inner, repo: &RepoName, digest: &Digest) -> Result<()> {
    let manifest = get(inner, repo, digest).await?;
    untag_all(inner, repo, digest).await?;
    inner.recent.remove(repo, digest);
    if let Ok(parsed) = manifest.parse()
        && let Some(subject) = parsed.subject()
    {
        inner
            .delete(&keys::referrer(repo, &subject.digest, digest))
            .await?;
    }
    inner.delete(&keys::manifest(repo, digest)).await?;
    crate::repos::remove_if_empty(inner, repo).await?;
    tracing::debug!(%repo, %digest, "manifest deleted");
    Ok(())
}

/// Deletes a tag, leaving the manifest.
pub(crate) async fn delete_tag(inner: &Inner, repo: &RepoName, tag: &Tag) -> Result<()> {
    if read_tag(inner, repo, tag).await?.is_none() {
        return Err(Error::manifest_unknown(repo, tag));
    }
    inner.delete(&keys::tag(repo, tag)).await?;
    tracing::debug!(%repo, %tag, "tag deleted");
    Ok(())
}
