//! Blob content on disk: receiving a pushed blob (verified and synced
//! before anything links it) and streaming a stored blob out with bounded
//! memory, verified against its digest before its last byte is served.
//!
//! A blob read never holds a blocking thread while its consumer is slow:
//! a piece (at most [`READ_PIECE`] bytes) that is in the page cache is
//! read when the consumer asks for it, on its own task (a read that would
//! wait for the disk is refused by the kernel, not waited for); any other
//! piece by its own short blocking task, one piece ahead of the consumer.
//! So a thousand stalled downloads hold a thousand buffers and no thread,
//! and a hot blob streams without a thread hand-over per piece.

use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use oci_core::pipe::{ChunkSink, Feeder};
use oci_core::{BlobStream, ByteRange, Digest, Error, ErrorCode, RangeRequest, Result, Verifier};
use tokio::task::JoinHandle;

use crate::durable;
use crate::error::{LayoutError, io_err, join_err};
use crate::hot::HotManifests;
use crate::install::{self, Source};
use crate::paths::Paths;
use crate::store::Inner;
use crate::verified::Verified;

/// The largest piece a blob read yields.
const READ_PIECE: usize = 256 * 1024;

/// Receives a pushed blob's body, checking digest and size as it arrives.
/// Returns its length and where its bytes are: a synced temporary file
/// (the caller removes it once placed), or, when the store already holds
/// the blob as a file this process has verified, the store itself (the
/// body is then only hashed). Hashing and writing run on a helper thread
/// beside the receiving.
pub(crate) async fn receive(
    inner: &Inner,
    digest: &Digest,
    size: Option<u64>,
    mut body: BlobStream,
) -> Result<(u64, Source)> {
    let held = install::hold_trusted(inner, digest).await;
    let tmp = inner.paths.tmp_file();
    let file = if held.is_some() {
        None
    } else {
        let path = tmp.clone();
        let f = tokio::task::spawn_blocking(move || File::create(&path))
            .await
            .map_err(join_err)?
            .map_err(io_err("create", &tmp))?;
        Some(f)
    };
    let received: Result<u64> = async {
        // One helper thread hashes, another writes, beside the receiving.
        let mut hashing = Feeder::new(Verifier::new(digest.clone(), size), 0);
        let mut writing = file.map(|file| {
            Feeder::new(
                Incoming {
                    file: durable::Appender::new(file, 0, inner.direct_writes),
                    path: tmp.clone(),
                },
                0,
            )
        });
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            hashing.push(chunk.clone()).await?;
            if let Some(w) = writing.as_mut() {
                w.push(chunk).await?;
            }
        }
        let verifier = hashing.finish().await?;
        let seen = verifier.seen();
        verifier.finish()?;
        let incoming = match writing {
            Some(w) => Some(w.finish().await?),
            None => None,
        };
        if let Some(incoming) = incoming {
            tokio::task::spawn_blocking(move || incoming.sync())
                .await
                .map_err(join_err)??;
        }
        Ok(seen)
    }
    .await;
    match (received, held) {
        (Ok(len), Some(held)) => Ok((len, Source::Held { _file: held })),
        (Ok(len), None) => Ok((len, Source::Verified(tmp))),
        (Err(err), held) => {
            if held.is_none() {
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            Err(err)
        }
    }
}

/// The temporary file a pushed blob is written to as it arrives.
struct Incoming {
    file: durable::Appender,
    path: PathBuf,
}

impl Incoming {
    /// Writes out what is gathered and syncs the file (blocking).
    fn sync(self) -> Result<()> {
        let file = self.file.finish().map_err(io_err("write", &self.path))?;
        file.sync_all().map_err(io_err("sync", &self.path))
    }
}

impl ChunkSink for Incoming {
    fn take(&mut self, chunk: &[u8]) -> Result<()> {
        self.file.append(chunk).map_err(io_err("write", &self.path))
    }

    fn close(&mut self) -> Result<()> {
        self.file.flush().map_err(io_err("write", &self.path))
    }
}

/// Writes a manifest's bytes (already verified) as the file `target` of a
/// repository's layout: a synced temporary file linked into place. The
/// directory entry is synced by the index write that lists the manifest
/// (see [`crate::repos`]), so a burst of pushes shares that sync. Returns
/// whether it linked the file (false when it was there already).
pub(crate) async fn write_manifest(paths: &Paths, target: PathBuf, bytes: Bytes) -> Result<bool> {
    if tokio::fs::try_exists(&target).await.unwrap_or(false) {
        return Ok(false);
    }
    let tmp = paths.tmp_file();
    tokio::task::spawn_blocking(move || -> Result<bool> {
        let written = File::create(&tmp)
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, &bytes)?;
                f.sync_data()
            })
            .map_err(io_err("write", &tmp))
            .and_then(|()| durable::link_unsynced(&tmp, &target).map_err(Error::from));
        let _ = std::fs::remove_file(&tmp);
        written.map(|()| true)
    })
    .await
    .map_err(join_err)?
}

/// Links a repository's blob file into the shared store, which lacks it.
pub(crate) async fn adopt(file: PathBuf, store: PathBuf) -> Result<()> {
    tokio::task::spawn_blocking(move || durable::link(&file, &store).map(|_| ()))
        .await
        .map_err(join_err)?
        .map_err(Error::from)
}

/// The size of a blob file; `None` when it does not exist. One `stat`,
/// made on the caller's thread as a hot manifest's is: a blob asked about
/// often has its inode in the kernel's cache, and a blocking-pool round
/// trip cost a blob HEAD more than half its time.
pub(crate) async fn stat(path: &Path) -> Result<Option<u64>> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(meta.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LayoutError::io("stat", path, e).into()),
    }
}

/// Opens a blob file of a repository for streaming: its size, the range
/// served, and the bytes. A whole-blob read of a file not known to be
/// intact is verified as it streams, its last piece held back until the
/// digest matches; a range of such a file is served only after the whole
/// file was hashed. A file found corrupt is logged at `error`, unlinked
/// (from the repository and the shared store, if still the same file) so
/// that the blob reads as absent and an honest push stores it again, and
/// the read fails. `None` when the file does not exist.
pub(crate) async fn open(
    paths: &Paths,
    linked: PathBuf,
    digest: &Digest,
    range: Option<RangeRequest>,
    verified: &Arc<Verified>,
) -> Result<Option<(u64, Option<ByteRange>, BlobStream)>> {
    let opened = {
        let path = linked.clone();
        tokio::task::spawn_blocking(move || -> Result<Option<(File, Metadata)>> {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(LayoutError::io("open", &path, e).into()),
            };
            let meta = file.metadata().map_err(io_err("stat", &path))?;
            Ok(Some((file, meta)))
        })
        .await
        .map_err(join_err)??
    };
    let Some((file, meta)) = opened else {
        return Ok(None);
    };
    let size = meta.len();
    let suspect = Suspect {
        linked,
        store: paths.store_blob(digest),
        meta,
        digest: digest.clone(),
        verified: verified.clone(),
    };
    let Some(request) = range else {
        if size == 0 && !verified.trusted(&suspect.meta, digest) {
            // Nothing to stream, so nothing to hold back: check now.
            if Verifier::new(digest.clone(), Some(0)).finish().is_err() {
                let err = tokio::task::spawn_blocking(move || suspect.quarantine())
                    .await
                    .map_err(join_err)?;
                return Err(err);
            }
        }
        let check = (!verified.trusted(&suspect.meta, digest)).then(|| Check {
            verifier: Verifier::new(digest.clone(), Some(size)),
            suspect,
        });
        return Ok(Some((size, None, read_stream(file, 0, size, check))));
    };
    let r = request.resolve(size)?;
    let file = tokio::task::spawn_blocking(move || -> Result<File> {
        if !suspect.verified.known(&suspect.meta, &suspect.digest) {
            if !install::holds(&file, &suspect.linked, &suspect.digest, Some(size))? {
                return Err(suspect.quarantine());
            }
            suspect.verified.record(&suspect.meta, &suspect.digest);
        }
        Ok(file)
    })
    .await
    .map_err(join_err)??;
    Ok(Some((
        size,
        Some(r),
        read_stream(file, r.start, r.len(), None),
    )))
}

/// A blob file being read, and what to do if it turns out corrupt.
struct Suspect {
    /// The repository's link to it (the path read).
    linked: PathBuf,
    /// The shared store's file of the same digest.
    store: PathBuf,
    /// The file as opened.
    meta: Metadata,
    digest: Digest,
    verified: Arc<Verified>,
}

impl Suspect {
    /// Logs the corruption at `error` and unlinks the corrupt file from the
    /// repository and the store, unless they were replaced meanwhile
    /// (blocking). Returns the error the read ends with.
    fn quarantine(&self) -> Error {
        tracing::error!(
            digest = %self.digest,
            path = %self.linked.display(),
            "a stored blob does not match its digest: unlinked, to be pushed again"
        );
        for path in [&self.linked, &self.store] {
            if install::same_file(path, &self.meta)
                && let Err(err) = durable::remove(path)
            {
                tracing::error!(error = %err, "cannot unlink a corrupt blob");
            }
        }
        Error::from(LayoutError::corrupt(
            &self.linked,
            format!("the stored blob does not match its digest {}", self.digest),
        ))
    }
}

/// The verification of a whole-blob read.
struct Check {
    verifier: Verifier,
    suspect: Suspect,
}

/// A blob read in progress: the file, where the next piece starts, the
/// bytes not yet read, and the piece being read ahead of the consumer.
struct Pieces {
    file: Option<File>,
    at: u64,
    left: u64,
    check: Option<Check>,
    ahead: Option<JoinHandle<Piece>>,
    done: bool,
}

/// What reading one piece gives back: the file and check to go on with,
/// and the piece.
type Piece = (File, Option<Check>, Result<Bytes>);

impl Pieces {
    /// Starts reading the next piece on the blocking pool, if any is left.
    fn read_ahead(&mut self) {
        if self.left == 0 || self.ahead.is_some() {
            return;
        }
        let Some(file) = self.file.take() else {
            return;
        };
        let want = self.left.min(READ_PIECE as u64);
        let at = self.at;
        self.at += want;
        self.left -= want;
        let last = self.left == 0;
        let check = self.check.take();
        self.ahead = Some(tokio::task::spawn_blocking(move || {
            read_piece(file, at, want, check, last)
        }));
    }

    /// The next piece of a read that needs no check, if the page cache
    /// holds it (or its start): read here, without waiting for the disk.
    fn read_cached(&mut self) -> Option<Bytes> {
        if self.check.is_some() || self.ahead.is_some() || self.left == 0 {
            return None;
        }
        let want = self.left.min(READ_PIECE as u64) as usize;
        let piece = read_if_cached(self.file.as_ref()?, self.at, want)?;
        self.at += piece.len() as u64;
        self.left -= piece.len() as u64;
        Some(piece)
    }

    /// The next piece, or `None` at the end (or after an error).
    async fn next(&mut self) -> Option<Result<Bytes>> {
        if self.done {
            return None;
        }
        if let Some(piece) = self.read_cached() {
            return Some(Ok(piece));
        }
        self.read_ahead();
        let Some(ahead) = self.ahead.take() else {
            self.done = true;
            return None;
        };
        match ahead.await {
            Ok((file, check, Ok(bytes))) => {
                self.file = Some(file);
                self.check = check;
                self.read_ahead();
                Some(Ok(bytes))
            }
            Ok((_, _, Err(err))) => {
                self.done = true;
                Some(Err(err))
            }
            Err(err) => {
                self.done = true;
                Some(Err(join_err(err)))
            }
        }
    }
}

/// Streams `len` bytes of `file` from offset `at`, verified by `check`.
fn read_stream(file: File, at: u64, len: u64, check: Option<Check>) -> BlobStream {
    let pieces = Pieces {
        file: Some(file),
        at,
        left: len,
        check,
        ahead: None,
        done: false,
    };
    stream::unfold(pieces, |mut pieces| async move {
        pieces.next().await.map(|item| (item, pieces))
    })
    .boxed()
}

/// Reads one piece of `want` bytes at offset `at` (blocking); the last
/// piece of a verified read is returned only if the whole blob matched
/// its digest.
fn read_piece(mut file: File, at: u64, want: u64, mut check: Option<Check>, last: bool) -> Piece {
    let mut buf = Vec::with_capacity(want as usize);
    let read = file
        .seek(SeekFrom::Start(at))
        .and_then(|_| (&mut file).take(want).read_to_end(&mut buf));
    let piece = match (read, check.as_mut()) {
        (Err(e), Some(c)) => Err(LayoutError::io("read", &c.suspect.linked, e).into()),
        (Err(e), None) => Err(Error::new(
            ErrorCode::Unknown,
            format!("the store could not read a blob: {}", e.kind()),
        )),
        (Ok(_), c) if (buf.len() as u64) < want => match c {
            Some(c) => Err(c.suspect.quarantine()),
            None => Err(Error::new(ErrorCode::Unknown, "a stored blob ended early")),
        },
        (Ok(_), Some(c)) => {
            let ok =
                c.verifier.update(&buf).is_ok() && (!last || c.verifier.clone().finish().is_ok());
            if ok {
                if last {
                    c.suspect
                        .verified
                        .record(&c.suspect.meta, &c.suspect.digest);
                }
                Ok(Bytes::from(buf))
            } else {
                Err(c.suspect.quarantine())
            }
        }
        (Ok(_), None) => Ok(Bytes::from(buf)),
    };
    (file, check, piece)
}

/// Up to `want` bytes of `file` at offset `at`, if the page cache holds
/// them from there on (`preadv2` with `RWF_NOWAIT`: the kernel refuses a
/// read that would wait for the disk). `None` when not even the first
/// byte is cached, or at the file's end (both left to the blocking read,
/// which tells a short file from a slow one).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn read_if_cached(file: &File, at: u64, want: usize) -> Option<Bytes> {
    use std::os::fd::AsRawFd;
    let offset = libc::off_t::try_from(at).ok()?;
    let mut buf: Vec<u8> = Vec::with_capacity(want);
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: want,
    };
    // SAFETY: the one iovec points at `want` bytes of `buf`'s allocation,
    // which the kernel may write; the descriptor is open while `file` is
    // borrowed.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    let n = usize::try_from(n).ok().filter(|&n| n > 0 && n <= want)?;
    // SAFETY: the kernel wrote the first `n` bytes.
    unsafe { buf.set_len(n) };
    Some(Bytes::from(buf))
}

/// Elsewhere every piece is read on the blocking pool.
#[cfg(not(target_os = "linux"))]
fn read_if_cached(_: &File, _: u64, _: usize) -> Option<Bytes> {
    None
}

/// Reads a manifest file whole and checks it against `digest`; served
/// from `hot` while the file is unchanged since it was last checked (one
/// `stat`, made here on the caller's thread: a hot file's inode is in the
/// kernel's cache), and kept there after a read.
pub(crate) async fn read_manifest(
    path: PathBuf,
    digest: &Digest,
    hot: &HotManifests,
) -> Result<Bytes> {
    if hot.enabled()
        && let Ok(meta) = std::fs::metadata(&path)
        && let Some(bytes) = hot.get(&path, &meta)
    {
        return Ok(bytes);
    }
    let (bytes, meta) = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, Metadata)> {
            let mut file = File::open(&path).map_err(io_err("read manifest", &path))?;
            let meta = file.metadata().map_err(io_err("stat", &path))?;
            let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
            file.read_to_end(&mut bytes)
                .map_err(io_err("read manifest", &path))?;
            Ok((bytes, meta))
        })
        .await
        .map_err(join_err)??
    };
    if !digest.matches(&bytes) {
        return Err(LayoutError::corrupt(
            &path,
            format!("content does not match its digest {digest}"),
        )
        .into());
    }
    let bytes = Bytes::from(bytes);
    if hot.enabled() {
        hot.insert(path, &meta, bytes.clone());
    }
    Ok(bytes)
}
