//! Opening a store: taking the single-process lock, clearing what a crash
//! left half-written, and finding the repositories.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use oci_core::digest::Hasher;
use oci_core::{RepoName, Result};

use crate::durable::{self, Durable};
use crate::error::{LayoutError, join_err};
use crate::hot::{HOT_MANIFEST_BYTES, HotManifests};
use crate::paths::Paths;
use crate::repos::Repos;
use crate::verified::{Verified, VerifyReads};
use crate::{LayoutOptions, Writes};

/// What this process knows of an upload, behind the upload's own lock:
/// every write, commit, close and expiry of one upload id holds it, so
/// they never overlap, whichever writer handle (request) they come from.
pub(crate) enum UploadState {
    /// Not yet read from disk (or to be read again after a failed write).
    Unloaded,
    /// Open.
    Live(Box<LiveUpload>),
    /// Committed, cancelled or expired: every later use is
    /// `BLOB_UPLOAD_UNKNOWN`.
    Ended,
}

/// An open upload as this process knows it.
pub(crate) struct LiveUpload {
    /// The repository it belongs to.
    pub(crate) repo: RepoName,
    /// Bytes written to its data file.
    pub(crate) size: u64,
    /// The size last made durable in its `offset` file.
    pub(crate) durable: u64,
    /// A sha256 of those bytes, when every one of them passed through
    /// this process.
    pub(crate) hasher: Option<Hasher>,
}

/// One upload's lock and state, shared by every writer handle of the id.
pub(crate) type UploadSlot = Arc<tokio::sync::Mutex<UploadState>>;

/// Everything an open store shares between the registry handle and its
/// upload writers.
pub(crate) struct Inner {
    pub(crate) paths: Paths,
    pub(crate) repos: Repos,
    pub(crate) verified: Arc<Verified>,
    /// Recently read manifests, served from memory while their files are
    /// unchanged.
    pub(crate) hot: HotManifests,
    uploads: Mutex<HashMap<String, UploadSlot>>,
    /// Pushed blobs are written bypassing the page cache ([`Writes`]).
    pub(crate) direct_writes: bool,
    /// Held (locked) for as long as the store is open.
    _lock: File,
}

impl Inner {
    /// Opens (creating if need be) the store at `root` (blocking).
    pub(crate) fn open(root: PathBuf, options: LayoutOptions) -> Durable<Inner> {
        let verify = options.verify_reads;
        durable::ensure_dir(&root)?;
        let paths = Paths::new(root);
        let lock = take_lock(&paths.lock())?;
        clear_dir(&paths.tmp_dir())?;
        durable::ensure_dir(&paths.store_dir())?;
        durable::ensure_dir(&paths.uploads_dir())?;
        let repos = Repos::scan(paths.clone())?;
        Ok(Inner {
            paths,
            repos,
            verified: Arc::new(Verified::new(verify)),
            hot: HotManifests::new(match verify {
                VerifyReads::Always => 0,
                VerifyReads::WhenChanged => HOT_MANIFEST_BYTES,
            }),
            uploads: Mutex::new(HashMap::new()),
            direct_writes: options.writes == Writes::Direct,
            _lock: lock,
        })
    }

    /// The uploads this process has seen, by id.
    pub(crate) fn uploads(&self) -> MutexGuard<'_, HashMap<String, UploadSlot>> {
        // Every change to the map is a single insert or remove.
        self.uploads.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Opens a store on the blocking pool.
pub(crate) async fn open(root: PathBuf, options: LayoutOptions) -> Result<Inner> {
    tokio::task::spawn_blocking(move || Inner::open(root, options))
        .await
        .map_err(join_err)?
        .map_err(Into::into)
}

/// Opens a store on the blocking pool; `None` when another process holds it.
pub(crate) async fn open_unless_held(
    root: PathBuf,
    options: LayoutOptions,
) -> Result<Option<Inner>> {
    match tokio::task::spawn_blocking(move || Inner::open(root, options))
        .await
        .map_err(join_err)?
    {
        Ok(inner) => Ok(Some(inner)),
        Err(LayoutError::Locked { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Takes the store's exclusive lock, or fails if another process has it.
fn take_lock(path: &Path) -> Durable<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| LayoutError::io("open lock file", path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(LayoutError::Locked {
            path: path.to_owned(),
        }),
        Err(TryLockError::Error(e)) => Err(LayoutError::io("lock", path, e)),
    }
}

/// Empties the temporary directory: anything there was being written when
/// the last process stopped, and was never acknowledged.
fn clear_dir(dir: &Path) -> Durable {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(LayoutError::io("clear", dir, e)),
    }
    durable::ensure_dir(dir)
}
