//! Garbage collection, run only when asked: unlinks from each repository
//! the blobs none of its manifests reference, removes from the shared
//! store the blobs no repository links any more, and removes stale uploads.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use oci_core::{Digest, Result};

use crate::durable::{self, Durable};
use crate::error::{LayoutError, join_err};
use crate::store::Inner;

/// What [`crate::LayoutRegistry::gc_with`] spares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcOptions {
    /// Blob files changed more recently than this are kept even when
    /// unreferenced (a blob pushed for a manifest not yet pushed). Zero for
    /// a store nothing else writes to while it is collected.
    pub grace: Duration,
    /// Uploads untouched for longer than this are removed.
    pub upload_age: Duration,
}

impl Default for GcOptions {
    /// No grace for blobs; uploads idle for a day are stale.
    fn default() -> GcOptions {
        GcOptions {
            grace: Duration::ZERO,
            upload_age: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// What a garbage collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blob links removed from repositories whose manifests no longer
    /// reference them.
    pub links_removed: usize,
    /// Blobs removed from the shared store (no repository linked them).
    pub blobs_removed: usize,
    /// Bytes those blobs held.
    pub bytes_freed: u64,
    /// Stale uploads removed.
    pub uploads_removed: usize,
    /// Repositories removed because they held nothing any more.
    pub repositories_removed: usize,
}

/// Collects garbage in the store.
pub(crate) async fn collect(inner: &Inner, options: &GcOptions) -> Result<GcReport> {
    let mut report = GcReport::default();
    let now = SystemTime::now();
    let grace = options.grace;
    let old = move |meta: &std::fs::Metadata| {
        let changed = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(meta.ctime()).unwrap_or_default());
        now.duration_since(changed).unwrap_or_default() >= grace
    };
    for repo in inner.repos.names(&oci_core::ListOptions::all()) {
        let Ok(mut guard) = inner.repos.lock(&repo).await else {
            continue;
        };
        let state = guard.state().await?;
        let keep: HashSet<Digest> = state
            .manifests
            .values()
            .flat_map(|info| std::iter::once(&info.descriptor.digest).chain(&info.blobs))
            .cloned()
            .collect();
        let empty_index = state.manifests.is_empty();
        let dir = inner.paths.repo_dir(&repo);
        let (unlinked, left) =
            tokio::task::spawn_blocking(move || sweep_links(&dir.join("blobs"), &keep, old))
                .await
                .map_err(join_err)??;
        report.links_removed += unlinked;
        if empty_index && left == 0 {
            let dir = inner.paths.repo_dir(&repo);
            tokio::task::spawn_blocking(move || remove_layout(&dir))
                .await
                .map_err(join_err)??;
            inner.repos.forget(&repo);
            guard.clear();
            report.repositories_removed += 1;
            tracing::debug!(%repo, "empty repository removed");
        }
    }
    let store = inner.paths.store_dir();
    let (removed, bytes) = tokio::task::spawn_blocking(move || sweep_store(&store, old))
        .await
        .map_err(join_err)??;
    report.blobs_removed = removed;
    report.bytes_freed = bytes;

    let uploads = inner.paths.uploads_dir();
    let age = options.upload_age;
    let stale = tokio::task::spawn_blocking(move || sweep_uploads(&uploads, now, age))
        .await
        .map_err(join_err)??;
    for id in &stale {
        inner.uploads().remove(id);
    }
    report.uploads_removed = stale.len();
    tracing::info!(?report, "garbage collected");
    Ok(report)
}

/// The files of a directory of `<alg>/<hex>` blobs, with their digests.
fn blob_files(blobs: &Path) -> Durable<Vec<(std::path::PathBuf, Option<Digest>)>> {
    let mut out = Vec::new();
    let algs = match std::fs::read_dir(blobs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(LayoutError::io("list", blobs, e)),
    };
    for alg in algs {
        let alg = alg.map_err(|e| LayoutError::io("list", blobs, e))?;
        let alg_path = alg.path();
        if !alg_path.is_dir() {
            continue;
        }
        let alg_name = alg.file_name().to_string_lossy().into_owned();
        let files =
            std::fs::read_dir(&alg_path).map_err(|e| LayoutError::io("list", &alg_path, e))?;
        for file in files {
            let file = file.map_err(|e| LayoutError::io("list", &alg_path, e))?;
            let name = file.file_name().to_string_lossy().into_owned();
            let digest = format!("{alg_name}:{name}").parse().ok();
            out.push((file.path(), digest));
        }
    }
    Ok(out)
}

/// Unlinks the blobs of a layout not in `keep` (and old enough); returns
/// how many went and how many files are left.
fn sweep_links(
    blobs: &Path,
    keep: &HashSet<Digest>,
    old: impl Fn(&std::fs::Metadata) -> bool,
) -> Durable<(usize, usize)> {
    let (mut removed, mut left) = (0, 0);
    for (path, digest) in blob_files(blobs)? {
        let Some(digest) = digest else {
            left += 1;
            continue;
        };
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| LayoutError::io("stat", &path, e))?;
        if keep.contains(&digest) || !old(&meta) {
            left += 1;
            continue;
        }
        durable::remove(&path)?;
        removed += 1;
    }
    Ok((removed, left))
}

/// Removes the shared store's blobs that no layout links; returns how many
/// and their bytes.
fn sweep_store(store: &Path, old: impl Fn(&std::fs::Metadata) -> bool) -> Durable<(usize, u64)> {
    let (mut removed, mut bytes) = (0, 0);
    for (path, _) in blob_files(store)? {
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| LayoutError::io("stat", &path, e))?;
        if meta.nlink() > 1 || !old(&meta) {
            continue;
        }
        if durable::remove(&path)? {
            removed += 1;
            bytes += meta.len();
        }
    }
    Ok((removed, bytes))
}

/// Removes an empty repository's layout files, and its directory unless
/// other repositories are nested in it.
fn remove_layout(dir: &Path) -> Durable {
    durable::remove(&dir.join("oci-layout"))?;
    durable::remove(&dir.join("index.json"))?;
    let blobs = dir.join("blobs");
    if let Ok(algs) = std::fs::read_dir(&blobs) {
        for alg in algs.flatten() {
            let _ = std::fs::remove_dir(alg.path());
        }
    }
    let _ = std::fs::remove_dir(&blobs);
    let _ = std::fs::remove_dir(dir);
    if let Some(parent) = dir.parent() {
        durable::sync_dir(parent)?;
    }
    Ok(())
}

/// Removes uploads whose data has not changed for `age`; returns their ids.
fn sweep_uploads(dir: &Path, now: SystemTime, age: Duration) -> Durable<Vec<String>> {
    let mut stale = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| LayoutError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LayoutError::io("list", dir, e))?;
        let path = entry.path();
        let touched = std::fs::metadata(path.join("data"))
            .or_else(|_| std::fs::metadata(&path))
            .and_then(|m| m.modified())
            .map_err(|e| LayoutError::io("stat", &path, e))?;
        if now.duration_since(touched).unwrap_or_default() < age {
            continue;
        }
        std::fs::remove_dir_all(&path).map_err(|e| LayoutError::io("remove", &path, e))?;
        stale.push(entry.file_name().to_string_lossy().into_owned());
    }
    if !stale.is_empty() {
        durable::sync_dir(dir)?;
    }
    Ok(stale)
}
