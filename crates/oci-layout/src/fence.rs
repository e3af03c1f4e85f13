//! The lock a repository's directory carries against garbage collection,
//! across processes: every change that makes a repository reference or
//! hold a blob (linking a blob, pushing a manifest) holds a shared `flock`
//! on the directory until the change is durable; a collection holds it
//! exclusively while it re-reads the repository's `index.json` and unlinks
//! what nothing references. So a blob linked, or a manifest listed, after
//! a collection looked is never removed under it.

use std::fs::{File, TryLockError};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use oci_core::Result;

use crate::durable::Durable;
use crate::error::{LayoutError, join_err};

/// A shared hold on a repository directory; released when dropped.
#[derive(Debug)]
pub(crate) struct Fence {
    _dir: File,
}

/// Takes a shared hold on the repository directory `dir`, waiting while a
/// collection holds it.
pub(crate) async fn shared(dir: PathBuf) -> Result<Fence> {
    let file = File::open(&dir).map_err(|e| LayoutError::io("open", &dir, e))?;
    match file.try_lock_shared() {
        Ok(()) => return Ok(Fence { _dir: file }),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => return Err(LayoutError::io("lock", &dir, e).into()),
    }
    tokio::task::spawn_blocking(move || {
        file.lock_shared()
            .map_err(|e| LayoutError::io("lock", &dir, e))?;
        Ok(Fence { _dir: file })
    })
    .await
    .map_err(join_err)?
}

/// Takes the exclusive hold a collection needs on `dir` (blocking); `None`
/// when the directory is gone.
pub(crate) fn exclusive(dir: &Path) -> Durable<Option<File>> {
    let file = match File::open(dir) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LayoutError::io("open", dir, e)),
    };
    file.lock().map_err(|e| LayoutError::io("lock", dir, e))?;
    Ok(Some(file))
}
