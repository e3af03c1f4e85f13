//! Garbage collection, run only when asked, safe while the store is in
//! use, by this process or by a server in another: unlinks from each
//! repository the blobs none of its manifests reference, removes from the
//! shared store the blobs no repository links any more, and removes stale
//! uploads.
//!
//! What makes it safe online (see [`crate::fence`] and
//! [`crate::install`]): a repository is swept under the exclusive `flock`
//! of its directory, from its `index.json` as read under that lock, which
//! every blob link and manifest push holds shared until durable; a blob
//! file younger than the grace period (by its status-change time, which a
//! new link or a re-push also moves) is kept; a store file is removed only
//! under its own exclusive `flock`, which a push holds shared while it
//! links it, after checking again that no repository links it; an upload
//! only under its data file's `flock`, after checking again that it is
//! idle. Repositories left empty are removed only by a collection that
//! has the store to itself (run in the process that holds it, or with no
//! server running).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use std::fs::{File, TryLockError};

use oci_core::{Digest, RepoName, Result};

use crate::durable::{self, Durable};
use crate::error::{LayoutError, join_err};
use crate::index::RepoState;
use crate::install;
use crate::paths::Paths;
use crate::repos::Repos;
use crate::store::Inner;
use crate::{expiry, fence};

pub use oci_core::gc::{GcOptions, GcReport};

/// Collects garbage in the store this process holds open.
pub(crate) async fn collect(inner: &Inner, options: &GcOptions) -> Result<GcReport> {
    let mut report = GcReport::default();
    let old = older_than(options.grace);
    for repo in inner.repos.names(&oci_core::ListOptions::all()) {
        let dir = inner.paths.repo_dir(&repo);
        let swept = tokio::task::spawn_blocking(move || sweep_repo(&dir, old))
            .await
            .map_err(join_err)??;
        report.links_removed += swept.removed;
        if swept.empty {
            remove_if_empty(inner, &repo, &mut report).await?;
        }
    }
    let store = inner.paths.store_dir();
    let (removed, bytes) = tokio::task::spawn_blocking(move || sweep_store(&store, old))
        .await
        .map_err(join_err)??;
    report.blobs_removed = removed;
    report.bytes_freed = bytes;
    report.uploads_removed =
        usize::try_from(expiry::expire(inner, options.upload_age).await?).unwrap_or(usize::MAX);
    tracing::info!(?report, "garbage collected");
    Ok(report)
}

/// Collects garbage in the store at `root` while another process (a
/// server) holds it open: everything [`collect`] does except removing
/// empty repositories, which that process may be about to use.
pub(crate) fn collect_outside(paths: &Paths, options: &GcOptions) -> Durable<GcReport> {
    let mut report = GcReport::default();
    let old = older_than(options.grace);
    let repos = Repos::scan(paths.clone())?;
    for repo in repos.names(&oci_core::ListOptions::all()) {
        report.links_removed += sweep_repo(&paths.repo_dir(&repo), old)?.removed;
    }
    let (removed, bytes) = sweep_store(&paths.store_dir(), old)?;
    report.blobs_removed = removed;
    report.bytes_freed = bytes;
    let now = SystemTime::now();
    let uploads = paths.uploads_dir();
    for id in expiry::stale_uploads(&uploads, now, options.upload_age)? {
        if expiry::remove_if_stale(&uploads.join(id), now, options.upload_age)? {
            report.uploads_removed += 1;
        }
    }
    tracing::info!(
        ?report,
        "garbage collected beside the process holding the store"
    );
    Ok(report)
}

/// Whether a file's last change (its status-change time: writes, links
/// and touches all move it) is at least `grace` ago.
fn older_than(grace: Duration) -> impl Fn(&std::fs::Metadata) -> bool + Copy + Send + 'static {
    move |meta: &std::fs::Metadata| {
        let changed = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(meta.ctime()).unwrap_or_default());
        SystemTime::now()
            .duration_since(changed)
            .unwrap_or_default()
            >= grace
    }
}

/// What sweeping one repository did.
struct Swept {
    /// Blob links removed.
    removed: usize,
    /// Whether it lists no manifest and holds no blob any more.
    empty: bool,
}

/// Sweeps one repository under the exclusive hold of its directory
/// (blocking): its `index.json`, read under the hold, says what to keep.
fn sweep_repo(dir: &Path, old: impl Fn(&std::fs::Metadata) -> bool) -> Durable<Swept> {
    let Some(_hold) = fence::exclusive(dir)? else {
        return Ok(Swept {
            removed: 0,
            empty: false,
        });
    };
    let state = RepoState::load(dir)?;
    let keep: HashSet<Digest> = state
        .manifests
        .values()
        .flat_map(|info| std::iter::once(&info.descriptor.digest).chain(&info.blobs))
        .cloned()
        .collect();
    let (removed, left) = sweep_links(&dir.join("blobs"), &keep, old)?;
    Ok(Swept {
        removed,
        empty: state.manifests.is_empty() && left == 0,
    })
}

/// Removes a repository left empty, under its in-process lock and the
/// exclusive hold of its directory, if it is still empty then.
async fn remove_if_empty(inner: &Inner, repo: &RepoName, report: &mut GcReport) -> Result<()> {
    let Ok(mut guard) = inner.repos.lock(repo).await else {
        return Ok(());
    };
    if !guard.state().await?.manifests.is_empty() {
        return Ok(());
    }
    let dir = inner.paths.repo_dir(repo);
    let removed = tokio::task::spawn_blocking(move || -> Durable<bool> {
        let Some(_hold) = fence::exclusive(&dir)? else {
            return Ok(false);
        };
        if !blob_files(&dir.join("blobs"))?.is_empty() {
            return Ok(false);
        }
        remove_layout(&dir)?;
        Ok(true)
    })
    .await
    .map_err(join_err)??;
    if removed {
        inner.repos.forget(repo);
        guard.clear();
        report.repositories_removed += 1;
        tracing::debug!(%repo, "empty repository removed");
    }
    Ok(())
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
        let Some(meta) = stat(&path)? else {
            continue;
        };
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
/// and their bytes. Each file is removed under its own exclusive `flock`
/// (a push links it under a shared one), after checking again that it is
/// unlinked, old enough and still the file at its path.
fn sweep_store(store: &Path, old: impl Fn(&std::fs::Metadata) -> bool) -> Durable<(usize, u64)> {
    let (mut removed, mut bytes) = (0, 0);
    for (path, _) in blob_files(store)? {
        let Some(meta) = stat(&path)? else {
            continue;
        };
        if meta.nlink() > 1 || !old(&meta) {
            continue;
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(LayoutError::io("open", &path, e)),
        };
        match file.try_lock() {
            Ok(()) => {}
            // A push is linking it.
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => return Err(LayoutError::io("lock", &path, e)),
        }
        let meta = file
            .metadata()
            .map_err(|e| LayoutError::io("stat", &path, e))?;
        if meta.nlink() > 1 || !old(&meta) || !install::same_file(&path, &meta) {
            continue;
        }
        if durable::remove(&path)? {
            removed += 1;
            bytes += meta.len();
        }
    }
    Ok((removed, bytes))
}

/// A file's status; `None` if it went meanwhile (a delete running beside).
fn stat(path: &Path) -> Durable<Option<std::fs::Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LayoutError::io("stat", path, e)),
    }
}

/// Removes an empty repository's layout files, and its directory unless
/// other repositories are nested in it.
fn remove_layout(dir: &Path) -> Durable {
    durable::remove(&dir.join("oci-layout"))?;
    durable::remove(&dir.join("index.json"))?;
    durable::remove(&dir.join(crate::index::JOURNAL))?;
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
