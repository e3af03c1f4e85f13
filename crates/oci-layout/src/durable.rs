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

/// Writes a file's bytes as they arrive (blocking), so that the sync at
/// the end finds little left to do instead of a whole blob.
///
/// Where the file system allows it (Linux, a start on a block boundary),
/// the bytes go to the disk directly (`O_DIRECT`) in [`DIRECT_WRITE`]
/// pieces gathered in a reused buffer, bypassing the page cache: a blob
/// pushed once is not copied into hundreds of megabytes of fresh cache
/// pages (each page's first touch costs a fault, on a virtual machine a
/// fault in the host too), and a big push does not evict what readers
/// use. The unaligned tail is written through the cache by
/// [`finish`](Appender::finish). Elsewhere the bytes go through the page
/// cache and writeback is started every [`WRITEBACK_EVERY`] bytes.
pub(crate) struct Appender {
    file: File,
    written: u64,
    started: u64,
    direct: Option<Staging>,
}

/// How many written bytes an [`Appender`] lets gather before it starts
/// writing them back (through the page cache).
const WRITEBACK_EVERY: u64 = 8 << 20;

/// One direct write's size.
const DIRECT_WRITE: usize = 1 << 20;

/// The alignment direct writes keep for their memory, length and file
/// offset (a page: at least any disk's logical block).
const ALIGN: usize = 4096;

impl Appender {
    /// Appends to `file`, which holds `at` bytes already synced or not
    /// and whose position is its end; directly if `direct` and the file
    /// system allows it.
    pub(crate) fn new(file: File, at: u64, direct: bool) -> Appender {
        let direct = if direct && at.is_multiple_of(ALIGN as u64) && set_direct(&file, true) {
            Some(Staging::take())
        } else {
            None
        };
        Appender {
            file,
            written: at,
            started: at,
            direct,
        }
    }

    /// Appends `chunk`.
    pub(crate) fn append(&mut self, mut chunk: &[u8]) -> std::io::Result<()> {
        while let Some(staging) = self.direct.as_mut() {
            if chunk.is_empty() {
                return Ok(());
            }
            let n = staging.fill(chunk);
            chunk = &chunk[n..];
            if staging.is_full() {
                self.write_staged()?;
            }
        }
        self.file.write_all(chunk)?;
        self.written += chunk.len() as u64;
        if self.written - self.started >= WRITEBACK_EVERY {
            start_writeback(&self.file, self.started, self.written - self.started);
            self.started = self.written;
        }
        Ok(())
    }

    /// Writes out what is gathered: its whole blocks directly, the rest
    /// through the page cache; the file is then an ordinary one again.
    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        let Some(staging) = self.direct.take() else {
            return Ok(());
        };
        let whole = staging.len - staging.len % ALIGN;
        let done = self.write_direct(&staging.bytes()[..whole]);
        let rest = self.leave_direct(&staging.bytes()[done..]);
        drop(staging);
        rest
    }

    /// Writes the full staging buffer directly; falls back to the page
    /// cache for what is left and what follows if that fails.
    fn write_staged(&mut self) -> std::io::Result<()> {
        let Some(mut staging) = self.direct.take() else {
            return Ok(());
        };
        let done = self.write_direct(staging.bytes());
        if done == staging.len {
            staging.len = 0;
            self.direct = Some(staging);
            return Ok(());
        }
        let rest = self.leave_direct(&staging.bytes()[done..]);
        drop(staging);
        rest
    }

    /// Writes whole blocks from the aligned buffer directly; returns how
    /// many bytes were written (all, or as many as went before a failure,
    /// which the page cache is then asked to take).
    fn write_direct(&mut self, bytes: &[u8]) -> usize {
        let mut done = 0;
        while done < bytes.len() {
            match self.file.write(&bytes[done..]) {
                Ok(n) if n > 0 => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Ok(_) => break,
                Err(err) => {
                    tracing::debug!(error = %err, "direct write failed, writing through the page cache");
                    break;
                }
            }
            if !done.is_multiple_of(ALIGN) {
                // A short direct write: the rest is not aligned any more.
                break;
            }
        }
        self.written += done as u64;
        self.started = self.written;
        done
    }

    /// Leaves direct writing and writes `rest` through the page cache.
    fn leave_direct(&mut self, rest: &[u8]) -> std::io::Result<()> {
        if !set_direct(&self.file, false) {
            return Err(std::io::Error::other("could not leave direct writing"));
        }
        self.file.write_all(rest)?;
        self.written += rest.len() as u64;
        self.started = self.written;
        Ok(())
    }

    /// Writes out what is gathered and gives the file back.
    pub(crate) fn finish(mut self) -> std::io::Result<File> {
        self.flush()?;
        Ok(self.file)
    }
}

/// An aligned buffer gathering bytes for one direct write.
struct Staging {
    /// Holds [`DIRECT_WRITE`] bytes at an aligned offset.
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

/// Buffers given back, kept for the next writers: memory touched once and
/// reused stays cheap, a fresh buffer costs a fault per page.
static SPARE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// How many spare buffers are kept.
const SPARES_KEPT: usize = 4;

impl Staging {
    fn take() -> Staging {
        let spare = SPARE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let buf = spare.unwrap_or_else(|| vec![0; DIRECT_WRITE + ALIGN]);
        let start = buf.as_ptr().align_offset(ALIGN);
        Staging { buf, start, len: 0 }
    }

    /// Copies what fits of `chunk`; returns how much.
    fn fill(&mut self, chunk: &[u8]) -> usize {
        let n = chunk.len().min(DIRECT_WRITE - self.len);
        let at = self.start + self.len;
        self.buf[at..at + n].copy_from_slice(&chunk[..n]);
        self.len += n;
        n
    }

    fn is_full(&self) -> bool {
        self.len == DIRECT_WRITE
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl Drop for Staging {
    /// Gives the buffer back for the next writer.
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let mut spare = SPARE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if spare.len() < SPARES_KEPT {
            spare.push(buf);
        }
    }
}

/// Turns direct writing of `file` on or off; false if that failed (the
/// file system has no direct writes, or the platform none at all).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_direct(file: &File, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl with F_GETFL/F_SETFL reads and sets the flags of a
    // descriptor that is open for as long as `file` is borrowed.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return false;
        }
        let flags = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        libc::fcntl(fd, libc::F_SETFL, flags) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn set_direct(_: &File, on: bool) -> bool {
    !on
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every offset, so a misplaced piece shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Appends `content` in pieces of the given sizes (cycled) to a file
    /// that already holds `head`, then checks the file holds both.
    fn appended(head: usize, sizes: &[usize], total: usize) {
        for direct in [true, false] {
            appended_as(head, sizes, total, direct);
        }
    }

    fn appended_as(head: usize, sizes: &[usize], total: usize, direct: bool) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("data");
        let all = pattern(head + total);
        fs::write(&path, &all[..head]).unwrap_or_else(|e| panic!("{e}"));
        let file = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut appender = Appender::new(file, head as u64, direct);
        let mut at = head;
        for size in sizes.iter().cycle() {
            if at == all.len() {
                break;
            }
            let end = (at + size).min(all.len());
            appender
                .append(&all[at..end])
                .unwrap_or_else(|e| panic!("{e}"));
            at = end;
        }
        let file = appender.finish().unwrap_or_else(|e| panic!("{e}"));
        file.sync_all().unwrap_or_else(|e| panic!("{e}"));
        drop(file);
        let back = fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            back.len(),
            all.len(),
            "head {head}, sizes {sizes:?}, direct {direct}"
        );
        assert!(
            back == all,
            "head {head}, sizes {sizes:?}, direct {direct}: bytes differ"
        );
    }

    #[test]
    fn appended_bytes_land_in_order_whatever_the_pieces() {
        let mib = 1 << 20;
        appended(0, &[4 << 20], 9 * mib + 12_345);
        appended(0, &[1], 5000);
        appended(0, &[4095, 1, 4097, mib + 3], 6 * mib);
        appended(0, &[mib], 3 * mib);
        appended(0, &[333_333], 0);
        // A start on a block boundary writes directly; one off it goes
        // through the page cache.
        appended(8192, &[mib + 1], 3 * mib);
        appended(1000, &[65_536, 7], 3 * mib + 1);
    }

    #[test]
    fn an_appender_dropped_unfinished_writes_only_whole_pieces() {
        // What an aborted stream leaves: the bytes written so far, the
        // gathered rest lost, never a torn or misplaced piece.
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("data");
        let file = File::create(&path).unwrap_or_else(|e| panic!("{e}"));
        let all = pattern(3 * DIRECT_WRITE + 100);
        let mut appender = Appender::new(file, 0, true);
        appender.append(&all).unwrap_or_else(|e| panic!("{e}"));
        drop(appender);
        let back = fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(all.starts_with(&back), "the file holds a prefix");
        assert!(back.len() >= 3 * DIRECT_WRITE, "whole pieces were written");
    }
}
