//! Durable file operations (blocking): a change is on disk, file and
//! directory entry alike, before the call returns.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::error::LayoutError;

/// The result of a durable operation.
pub(crate) type Durable<T = ()> = std::result::Result<T, LayoutError>;

/// Flushes a directory's entries to disk.
pub(crate) fn sync_dir(dir: &Path) -> Durable {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LayoutError::io("sync directory", dir, e))
}

/// Creates `dir` (and its parents) if missing, durably.
pub(crate) fn ensure_dir(dir: &Path) -> Durable {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_dir(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(LayoutError::io("create directory", dir, e)),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Writes `bytes` to `tmp`, syncs it and renames it over `target`, then
/// syncs `target`'s directory: readers see the old file or the new one.
pub(crate) fn write_atomic(tmp: &Path, target: &Path, bytes: &[u8]) -> Durable {
    let written = File::create(tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| LayoutError::io("write", tmp, e));
    if let Err(e) = written {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    if let Err(e) = fs::rename(tmp, target) {
        let _ = fs::remove_file(tmp);
        return Err(LayoutError::io("rename into place", target, e));
    }
    sync_parent(target)
}

/// Hard-links `src` as `dst` (creating `dst`'s directory), durably.
/// Returns false when `dst` already existed (and was left alone).
pub(crate) fn link(src: &Path, dst: &Path) -> Durable<bool> {
    if let Some(parent) = dst.parent() {
        ensure_dir(parent)?;
    }
    match fs::hard_link(src, dst) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(LayoutError::io("link", dst, e)),
    }
    sync_parent(dst)?;
    Ok(true)
}

/// Hard-links `src` as `dst` (creating `dst`'s directory durably) without
/// syncing `dst`'s directory: the caller syncs it before anything depends
/// on the link. An existing `dst` is left alone.
pub(crate) fn link_unsynced(src: &Path, dst: &Path) -> Durable {
    if let Some(parent) = dst.parent() {
        ensure_dir(parent)?;
    }
    match fs::hard_link(src, dst) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(LayoutError::io("link", dst, e)),
    }
}

/// Removes a file if present, durably; returns whether it was there.
pub(crate) fn remove(path: &Path) -> Durable<bool> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(LayoutError::io("remove", path, e)),
    }
    sync_parent(path)?;
    Ok(true)
}

/// Syncs the directory holding `path`.
fn sync_parent(path: &Path) -> Durable {
    match path.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Writes a file's bytes as they arrive, starting the disk writes every
/// [`WRITEBACK_EVERY`] bytes, so that the sync at the end finds little
/// left to do instead of a whole blob (blocking).
pub(crate) struct Appender {
    file: File,
    written: u64,
    started: u64,
}

/// How many written bytes an [`Appender`] lets gather before it starts
/// writing them back.
const WRITEBACK_EVERY: u64 = 8 << 20;

impl Appender {
    /// Appends to `file`, which holds `at` bytes already synced or not.
    pub(crate) fn new(file: File, at: u64) -> Appender {
        Appender {
            file,
            written: at,
            started: at,
        }
    }

    /// Appends `chunk`.
    pub(crate) fn append(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.file.write_all(chunk)?;
        self.written += chunk.len() as u64;
        if self.written - self.started >= WRITEBACK_EVERY {
            start_writeback(&self.file, self.started, self.written - self.started);
            self.started = self.written;
        }
        Ok(())
    }

    /// The file.
    pub(crate) fn into_file(self) -> File {
        self.file
    }
}

/// Asks the kernel to start writing `len` bytes of `file` at `offset` to
/// disk without waiting for them; a hint, so a failure is only logged
/// (the sync that follows reports any real error).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range reads no memory of ours; the descriptor is
    // open for as long as `file` is borrowed.
    let done = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if done != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "starting writeback failed");
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) {}
