//! Garbage collection that runs beside serving servers: unlinks from each
//! repository the blobs none of its manifests references, deletes the
//! bytes of blobs no repository links, removes repositories that hold
//! nothing any more, and removes idle uploads.
//!
//! What makes it safe while pushes run on any number of servers:
//! - one collection at a time: it holds `_gc/lock` (created with
//!   `PutMode::Create`; one left by a collection that died is taken over
//!   after [`crate::fence::STALE_AFTER`]);
//! - it deletes only while `_gc/state` says it runs, and every push that
//!   makes something reachable checks that state before and after (see
//!   [`crate::fence`]), so a push that overlapped a collection checks its
//!   work again and fails rather than acknowledging what was removed;
//! - a grace period: a link or blob written (or written again, which a
//!   re-push does) less than `grace` ago is kept even when unreferenced,
//!   so a client may push its blobs and then, within the grace period,
//!   the manifest that references them;
//! - before a blob's bytes go, its links are listed once more.
//!
//! It also removes a repository's blob index entries
//! (`repos/<repo>/blobs/<alg>-<hex>`) that no link stands behind: a push
//! writes the entry first and the link next, so one interrupted between
//! the two leaves an entry that would keep an otherwise empty repository
//! in the catalog for ever. Such an entry is debris of a push, as an idle
//! upload is: it goes once older than `upload_age` (not the grace period,
//! which may be zero while pushes run: a push between its entry and its
//! link would lose the entry) and only if the link is still absent when it
//! is checked again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use oci_core::{Digest, Error, ErrorCode, ParsedManifest, RepoName, Result};

use crate::fence::{self, GcState};
use crate::keys;
use crate::store::{Inner, Put};
use crate::uploads;

pub use oci_core::gc::{GcOptions, GcReport};

/// One blob as listed: its bytes' object and its links.
#[derive(Default)]
struct BlobEntry {
    data: Option<object_store::ObjectMeta>,
    links: Vec<(RepoName, object_store::ObjectMeta)>,
}

/// Runs one collection.
pub(crate) async fn collect(inner: &Inner, options: &GcOptions) -> Result<GcReport> {
    let run = format!("{:032x}", rand::random::<u128>());
    acquire(inner, &run).await?;
    let result = sweep(inner, &run, options).await;
    let ended = release(inner, &run).await;
    let report = result?;
    ended?;
    tracing::info!(?report, "garbage collected");
    Ok(report)
}

/// Takes the collection lock and marks the state running.
async fn acquire(inner: &Inner, run: &str) -> Result<()> {
    let lock = keys::gc_lock();
    let mine = GcState::new(true, run).to_bytes();
    if let Put::Conflict = inner.create(&lock, mine.clone()).await? {
        let held = inner.head(&lock).await?;
        let age = held.map_or(0, |m| {
            fence::now_secs()
                .saturating_sub(u64::try_from(m.last_modified.timestamp()).unwrap_or(0))
        });
        if age <= fence::STALE_AFTER.as_secs() {
            return Err(Error::new(
                ErrorCode::Denied,
                "another garbage collection is running on this store",
            ));
        }
        tracing::warn!(
            age_secs = age,
            "taking over the lock of a collection that died"
        );
        inner.put(&lock, mine.clone()).await?;
    }
    inner.put(&keys::gc_state(), mine).await
}

/// Marks the state idle and drops the lock.
async fn release(inner: &Inner, run: &str) -> Result<()> {
    inner
        .put(&keys::gc_state(), GcState::new(false, run).to_bytes())
        .await?;
    inner.delete(&keys::gc_lock()).await
}

/// Whether an object was written at least `grace` ago.
fn old(meta: &object_store::ObjectMeta, grace: Duration) -> bool {
    let written = u64::try_from(meta.last_modified.timestamp()).unwrap_or(0);
    fence::now_secs().saturating_sub(written) >= grace.as_secs()
}

/// What the listing of `repos/` found.
#[derive(Default)]
struct Repos {
    /// The digests each repository's manifests reference (its manifests
    /// themselves and their blobs).
    keep: HashMap<RepoName, HashSet<Digest>>,
    /// Every repository seen.
    seen: HashSet<RepoName>,
    /// Every blob index entry: its repository, blob and object.
    index: Vec<(RepoName, Digest, object_store::ObjectMeta)>,
}

/// Lists the repositories: what their manifests reference, and their blob
/// index entries.
async fn referenced(inner: &Inner) -> Result<Repos> {
    let mut found = Repos::default();
    for meta in inner.list(&keys::repos_root()).await? {
        let parts: Vec<_> = meta.location.parts().collect();
        if let Some(repo) = parts
            .get(1)
            .and_then(|p| keys::repo_from_segment(p.as_ref()))
        {
            found.seen.insert(repo);
        }
        // repos/<repo>/blobs/<alg>-<hex>
        if let [_, repo, kind, entry] = parts.as_slice()
            && kind.as_ref() == "blobs"
            && let (Some(repo), Some(digest)) = (
                keys::repo_from_segment(repo.as_ref()),
                keys::digest_from_segment(entry.as_ref()),
            )
        {
            found.index.push((repo, digest, meta));
            continue;
        }
        // repos/<repo>/manifests/<alg>/<hex>
        let [_, repo, kind, alg, hex] = parts.as_slice() else {
            continue;
        };
        if kind.as_ref() != "manifests" {
            continue;
        }
        let (Some(repo), Ok(digest)) = (
            keys::repo_from_segment(repo.as_ref()),
            format!("{}:{}", alg.as_ref(), hex.as_ref()).parse::<Digest>(),
        ) else {
            continue;
        };
        let keep = found.keep.entry(repo.clone()).or_default();
        keep.insert(digest.clone());
        match crate::manifests::get(inner, &repo, &digest).await {
            Ok(manifest) => {
                if let Ok(parsed) = manifest.parse() {
                    keep.extend(blobs_of(&parsed));
                }
            }
            // Deleted meanwhile: it references nothing.
            Err(e) if e.is(ErrorCode::ManifestUnknown) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// The blobs a manifest references.
fn blobs_of(parsed: &ParsedManifest) -> impl Iterator<Item = Digest> + '_ {
    parsed.blobs().into_iter().map(|d| d.digest.clone())
}

/// Every blob with its bytes' object and links.
async fn blobs(inner: &Inner) -> Result<HashMap<Digest, BlobEntry>> {
    let mut out: HashMap<Digest, BlobEntry> = HashMap::new();
    for meta in inner.list(&keys::blobs_root()).await? {
        let parts: Vec<String> = meta
            .location
            .parts()
            .map(|p| p.as_ref().to_owned())
            .collect();
        let (alg, hex) = match parts.as_slice() {
            [_, alg, hex, ..] => (alg, hex),
            _ => continue,
        };
        let Ok(digest) = format!("{alg}:{hex}").parse::<Digest>() else {
            continue;
        };
        let entry = out.entry(digest).or_default();
        match parts.as_slice() {
            [_, _, _, data] if data == "data" => entry.data = Some(meta),
            [_, _, _, links, repo] if links == "links" => {
                if let Some(repo) = keys::repo_from_segment(repo) {
                    entry.links.push((repo, meta));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Removes the blob index entries older than `age` with no link behind
/// them (see the module docs); how many.
async fn stray_index_entries(
    inner: &Inner,
    blobs: &HashMap<Digest, BlobEntry>,
    index: Vec<(RepoName, Digest, object_store::ObjectMeta)>,
    age: Duration,
) -> Result<usize> {
    let mut removed = 0;
    for (repo, digest, meta) in index {
        let listed = blobs
            .get(&digest)
            .is_some_and(|entry| entry.links.iter().any(|(linked, _)| *linked == repo));
        if listed || !old(&meta, age) {
            continue;
        }
        // A push finishing meanwhile has written its link by now.
        if inner
            .head(&keys::blob_link(&digest, &repo))
            .await?
            .is_some()
        {
            continue;
        }
        inner.delete(&meta.location).await?;
        removed += 1;
        tracing::debug!(%repo, %digest, "blob index entry without a link removed");
    }
    Ok(removed)
}

/// The mark and the sweep, while the state says running.
async fn sweep(inner: &Inner, _run: &str, options: &GcOptions) -> Result<GcReport> {
    let mut report = GcReport::default();
    let Repos { keep, seen, index } = referenced(inner).await?;
    let empty = HashSet::new();
    let blobs = blobs(inner).await?;
    let strays = stray_index_entries(inner, &blobs, index, options.upload_age).await?;
    if strays > 0 {
        tracing::info!(strays, "blob index entries of interrupted pushes removed");
    }
    for (digest, entry) in blobs {
        let mut linked = 0;
        for (repo, link) in &entry.links {
            let kept = keep.get(repo).unwrap_or(&empty).contains(&digest);
            if kept || !old(link, options.grace) {
                linked += 1;
                continue;
            }
            inner.delete(&link.location).await?;
            inner.delete(&keys::repo_blob(repo, &digest)).await?;
            report.links_removed += 1;
            tracing::debug!(%repo, %digest, "unreferenced blob unlinked");
        }
        let Some(data) = entry.data else {
            continue;
        };
        if linked > 0 || !old(&data, options.grace) {
            continue;
        }
        // Listed again just before the delete: a link made since the
        // listing above keeps the blob.
        if !inner.list(&keys::blob_links(&digest)).await?.is_empty() {
            continue;
        }
        match inner.head(&data.location).await? {
            Some(now) if old(&now, options.grace) => {}
            _ => continue,
        }
        inner.delete(&data.location).await?;
        report.blobs_removed += 1;
        report.bytes_freed += data.size;
        tracing::debug!(%digest, "unlinked blob deleted");
    }
    // Repositories without manifests may hold nothing any more.
    for repo in seen.iter().filter(|repo| !keep.contains_key(*repo)) {
        if crate::repos::remove_if_empty(inner, repo).await? {
            report.repositories_removed += 1;
        }
    }
    report.uploads_removed =
        usize::try_from(uploads::expire(inner, options.upload_age).await?).unwrap_or(usize::MAX);
    Ok(report)
}
