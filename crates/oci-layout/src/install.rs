//! Putting a blob in place: into the shared store, verified, and linked
//! into a repository's layout. Nothing already on disk is trusted because
//! it is there: a store file this process has not verified (by file
//! identity, see [`crate::verified`]) is hashed before a push or mount
//! counts on it, and one that does not match its digest is replaced by
//! the verified bytes being pushed.
//!
//! While it links, a push holds a shared `flock` on the store file; a
//! garbage collection (in this process or another) takes it exclusively
//! before removing a file no repository links, so a file is never removed
//! between the moment a push finds it and the moment it is linked.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use oci_core::{Digest, Error, ErrorCode, RepoName, Result};

use crate::durable;
use crate::error::{LayoutError, join_err};
use crate::paths::Paths;
use crate::store::Inner;
use crate::verified::Verified;

/// Where the bytes of a blob being put in place come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A synced file the caller has verified holds exactly the blob.
    Verified(PathBuf),
    /// The shared store's own file, which must be there and intact.
    Store,
    /// The shared store's own file, verified and held (a shared `flock`)
    /// since before the push began, so no collection removed it meanwhile.
    Held {
        /// Kept for its lock.
        _file: HeldFile,
    },
}

/// A store file kept open with a shared `flock` for as long as it lives.
#[derive(Debug, Clone)]
pub(crate) struct HeldFile {
    _lock: Arc<File>,
}

/// How many times a link is retried when the store file changes under it.
const ATTEMPTS: usize = 4;

/// The piece size used to hash a stored file.
const HASH_PIECE: usize = 1024 * 1024;

/// Puts `digest` into the shared store (from `source`) and links it into
/// `repo`'s layout. `BLOB_UNKNOWN` when the source is the store and the
/// store does not hold the blob intact.
pub(crate) async fn settle(
    inner: &Inner,
    source: Source,
    repo: &RepoName,
    digest: &Digest,
    size: Option<u64>,
) -> Result<()> {
    let paths = inner.paths.clone();
    let verified = inner.verified.clone();
    let linked = paths.repo_blob(repo, digest);
    let digest = digest.clone();
    tokio::task::spawn_blocking(move || {
        settle_blocking(&paths, &verified, &source, &linked, &digest, size)
    })
    .await
    .map_err(join_err)?
}

/// `BLOB_UNKNOWN` for a blob the store does not hold intact.
fn not_held(digest: &Digest) -> Error {
    Error::new(
        ErrorCode::BlobUnknown,
        format!("the store does not hold an intact copy of blob {digest}"),
    )
}

/// The blocking body of [`settle`].
fn settle_blocking(
    paths: &Paths,
    verified: &Verified,
    source: &Source,
    linked: &Path,
    digest: &Digest,
    size: Option<u64>,
) -> Result<()> {
    let target = paths.store_blob(digest);
    for _ in 0..ATTEMPTS {
        if let Source::Verified(src) = source {
            durable::link(src, &target)?;
        }
        let file = match File::open(&target) {
            Ok(f) => f,
            // Collected since: link it again (or report it gone).
            Err(e) if e.kind() == ErrorKind::NotFound => match source {
                Source::Verified(_) => continue,
                Source::Store | Source::Held { .. } => return Err(not_held(digest)),
            },
            Err(e) => return Err(LayoutError::io("open", &target, e).into()),
        };
        file.lock_shared()
            .map_err(|e| LayoutError::io("lock", &target, e))?;
        let meta = file
            .metadata()
            .map_err(|e| LayoutError::io("stat", &target, e))?;
        if !same_file(&target, &meta) {
            continue;
        }
        // A file this call just linked from the verified source needs no check.
        let ours = matches!(source, Source::Verified(src) if same_file(src, &meta));
        if !ours && !verified.trusted(&meta, digest) && !holds(&file, &target, digest, size)? {
            tracing::error!(
                %digest,
                path = %target.display(),
                "a stored blob does not match its digest"
            );
            match source {
                Source::Verified(src) => {
                    replace(src, &target, &paths.tmp_file())?;
                    tracing::warn!(%digest, "corrupt stored blob replaced by a verified push");
                    continue;
                }
                Source::Store | Source::Held { .. } => return Err(not_held(digest)),
            }
        }
        link_replacing(&file, &target, &meta, linked, &paths.tmp_file())?;
        // The source's own name goes now, not after the stamp is taken:
        // removing a name changes the file's status time, and a stamp
        // taken before would have the first read hash the blob again.
        if let Source::Verified(src) = source
            && same_file(src, &meta)
        {
            let _ = std::fs::remove_file(src);
        }
        let meta = file
            .metadata()
            .map_err(|e| LayoutError::io("stat", &target, e))?;
        verified.record(&meta, digest);
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::Unknown,
        format!("blob {digest} kept changing in the store while it was linked; try again"),
    ))
}

/// Whether the file at `path` is (still) the one `meta` describes.
pub(crate) fn same_file(path: &Path, meta: &std::fs::Metadata) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
}

/// Whether `file` holds exactly `digest` (and `size` bytes, if given),
/// reading it from where it stands (blocking).
pub(crate) fn holds(
    mut file: &File,
    path: &Path,
    digest: &Digest,
    size: Option<u64>,
) -> std::result::Result<bool, LayoutError> {
    let mut hasher = digest.algorithm().hasher();
    let mut buf = vec![0u8; HASH_PIECE];
    let mut seen = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(LayoutError::io("read", path, e)),
        };
        hasher.update(&buf[..n]);
        seen += n as u64;
    }
    Ok(size.is_none_or(|s| s == seen) && hasher.finish() == *digest)
}

/// Replaces `target` by a link to `src`, atomically, durably.
fn replace(src: &Path, target: &Path, tmp: &Path) -> std::result::Result<(), LayoutError> {
    std::fs::hard_link(src, tmp).map_err(|e| LayoutError::io("link", tmp, e))?;
    if let Err(e) = std::fs::rename(tmp, target) {
        let _ = std::fs::remove_file(tmp);
        return Err(LayoutError::io("rename into place", target, e));
    }
    if let Some(parent) = target.parent() {
        durable::sync_dir(parent)?;
    }
    Ok(())
}

/// Links the store file `store` (open as `file`, described by `meta`) as
/// `dst`. An existing `dst` that is the same file is touched instead, so
/// that garbage collection sees the blob as freshly pushed; one that is
/// another file (an older, possibly corrupt copy) is replaced.
fn link_replacing(
    file: &File,
    store: &Path,
    meta: &std::fs::Metadata,
    dst: &Path,
    tmp: &Path,
) -> std::result::Result<(), LayoutError> {
    if durable::link(store, dst)? {
        return Ok(());
    }
    if same_file(dst, meta) {
        // Best effort (a file owned by another user cannot be touched):
        // the blob is there either way, only its grace period is shorter.
        if let Err(e) = file.set_modified(SystemTime::now()) {
            tracing::debug!(path = %dst.display(), error = %e, "cannot touch a re-pushed blob");
        }
        return Ok(());
    }
    replace(store, dst, tmp)
}

/// The store's file of `digest`, held (a shared `flock`, so no collection
/// removes it) when it is one this process has verified (by its
/// identity): a push of it then need not write the bytes again.
pub(crate) async fn hold_trusted(inner: &Inner, digest: &Digest) -> Option<HeldFile> {
    let path = inner.paths.store_blob(digest);
    let verified = inner.verified.clone();
    let digest = digest.clone();
    tokio::task::spawn_blocking(move || {
        let file = File::open(&path).ok()?;
        file.lock_shared().ok()?;
        let meta = file.metadata().ok()?;
        (same_file(&path, &meta) && verified.trusted(&meta, &digest)).then(|| HeldFile {
            _lock: Arc::new(file),
        })
    })
    .await
    .ok()
    .flatten()
}
