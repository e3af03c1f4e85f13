//! Expiry of idle uploads: by the data file's modification time, so that
//! sessions from before a restart count too, and never under a request
//! using the upload (in this process its slot is busy; in any process its
//! data file's `flock` is held).

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use oci_core::{Error, Result};

use crate::error::LayoutError;
use crate::store::{Inner, UploadState};
use crate::uploads::{blocking, forget, remove_upload_dir};

/// Cancels the uploads whose data has not changed for `idle` (by the data
/// file's modification time, so uploads from before a restart count too);
/// returns how many. An upload in use at that moment is left alone.
pub(crate) async fn expire(inner: &Inner, idle: Duration) -> Result<u64> {
    let dir = inner.paths.uploads_dir();
    let now = SystemTime::now();
    let candidates = blocking(move || stale_uploads(&dir, now, idle).map_err(Error::from)).await?;
    let mut expired = 0;
    for id in candidates {
        let slot = inner
            .uploads()
            .entry(id.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(UploadState::Unloaded)))
            .clone();
        // An upload some request is using is not idle.
        let Ok(mut state) = slot.try_lock() else {
            continue;
        };
        let dir = inner.paths.uploads_dir().join(&id);
        let removed =
            blocking(move || remove_if_stale(&dir, now, idle).map_err(Error::from)).await?;
        if removed {
            *state = UploadState::Ended;
            drop(state);
            forget(inner, &id, &slot);
            expired += 1;
            tracing::debug!(id, "idle upload expired");
        }
    }
    Ok(expired)
}

/// The ids of uploads whose data is older than `idle` (blocking).
pub(crate) fn stale_uploads(
    dir: &Path,
    now: SystemTime,
    idle: Duration,
) -> std::result::Result<Vec<String>, LayoutError> {
    let mut stale = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(stale),
        Err(e) => return Err(LayoutError::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| LayoutError::io("list", dir, e))?;
        if idle_for(&entry.path(), now) >= Some(idle) {
            stale.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(stale)
}

/// How long an upload directory's data has been unchanged; `None` if the
/// upload is gone.
fn idle_for(dir: &Path, now: SystemTime) -> Option<Duration> {
    let touched = std::fs::metadata(dir.join("data"))
        .or_else(|_| std::fs::metadata(dir))
        .and_then(|m| m.modified())
        .ok()?;
    Some(now.duration_since(touched).unwrap_or_default())
}

/// Removes an upload directory if, under the data file's lock, it is still
/// idle for `idle` (blocking). A writer in another request or process
/// holds that lock while it works, and finds the upload gone afterwards.
pub(crate) fn remove_if_stale(
    dir: &Path,
    now: SystemTime,
    idle: Duration,
) -> std::result::Result<bool, LayoutError> {
    let data = dir.join("data");
    let _lock = match File::open(&data) {
        Ok(file) => match file.try_lock() {
            Ok(()) => Some(file),
            Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(LayoutError::io("lock", &data, e));
            }
        },
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(LayoutError::io("open", &data, e)),
    };
    if idle_for(dir, now).is_none_or(|age| age < idle) {
        return Ok(false);
    }
    remove_upload_dir(dir)?;
    Ok(true)
}
