//! Chunked uploads, kept on disk so that they survive a restart:
//! `.uploads/<id>/repo` names the repository, `data` holds the bytes and
//! `offset` the length acknowledged by the last `close` (a restart cuts
//! `data` back to it). Commit links `data` into the shared store.
//!
//! Every operation on one upload id (a write, a commit, a close, an
//! expiry) holds that upload's lock for its whole duration: in this
//! process the [`UploadSlot`] mutex, shared by every writer handle of the
//! id, and on disk an exclusive `flock` of the `data` file, which a
//! garbage collection in another process takes before removing a stale
//! upload. So a commit hashes and links exactly the bytes the data file
//! holds, and no write can append to a file once it is committed.
//!
//! A writer handle whose writes go past [`STREAM_AFTER`] bytes keeps both locks
//! from one write to the next until it closes, commits or is dropped, and
//! streams its writes through helper threads (one appends, one hashes):
//! the request's receiving never waits on the disk or the hash.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use oci_core::digest::Hasher;
use oci_core::pipe::{ChunkSink, Feeder, Pipe};
use oci_core::{Algorithm, BlobWriter, Descriptor, Digest, Error, ErrorCode, RepoName, Result};
use tokio::sync::OwnedMutexGuard;

use crate::durable;
use crate::error::{LayoutError, join_err};
use crate::install::{self, Source};
use crate::store::{Inner, LiveUpload, UploadSlot, UploadState};

/// The piece size used to hash an upload's data file at commit.
const HASH_PIECE: usize = 1024 * 1024;

/// Bytes a writer handle writes one blocking task per write; a write that
/// would go past them (the first, if it is larger) makes it hold the
/// upload and stream the rest through helper threads that write and hash
/// beside the receiving (see [`Streaming`]).
const STREAM_AFTER: u64 = 256 * 1024;

/// `BLOB_UPLOAD_UNKNOWN` for an id with no upload in `repo`.
fn upload_unknown(repo: &RepoName, id: &str) -> Error {
    Error::new(
        ErrorCode::BlobUploadUnknown,
        format!("upload {id} is not in progress in repository {repo}"),
    )
}

/// Runs a blocking closure on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(join_err)?
}

/// What a blocking step on an upload's files found.
enum Step<T> {
    /// It was done.
    Done(T),
    /// The upload's files are gone (committed, cancelled or expired).
    Gone,
}

/// Opens an upload's data file and locks it exclusively, or `Gone` when
/// the upload was removed (also when it was removed while we waited for
/// the lock: the file we hold is then unlinked).
fn open_locked(path: &Path, append: bool) -> std::result::Result<Step<File>, LayoutError> {
    Ok(match locked_with_len(path, append)? {
        Step::Done((file, _)) => Step::Done(file),
        Step::Gone => Step::Gone,
    })
}

/// [`open_locked`], and the file must hold exactly the `expected` bytes the
/// upload is at; anything else is a corrupt upload.
fn open_locked_at(
    path: &Path,
    append: bool,
    expected: u64,
) -> std::result::Result<Step<File>, LayoutError> {
    let Step::Done((file, len)) = locked_with_len(path, append)? else {
        return Ok(Step::Gone);
    };
    if len != expected {
        return Err(LayoutError::corrupt(
            path,
            format!("holds {len} bytes, the upload is at {expected}"),
        ));
    }
    Ok(Step::Done(file))
}

/// The locked data file and its length (one `stat`, which also tells
/// whether the file was unlinked).
fn locked_with_len(
    path: &Path,
    append: bool,
) -> std::result::Result<Step<(File, u64)>, LayoutError> {
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .append(append)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Step::Gone),
        Err(e) => return Err(LayoutError::io("open", path, e)),
    };
    file.lock().map_err(|e| LayoutError::io("lock", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| LayoutError::io("stat", path, e))?;
    if meta.nlink() == 0 {
        return Ok(Step::Gone);
    }
    Ok(Step::Done((file, meta.len())))
}

/// Starts an upload in `repo`.
pub(crate) async fn start(inner: &Arc<Inner>, repo: &RepoName) -> Result<LayoutWriter> {
    let id = format!("{:032x}", rand::random::<u128>());
    let dir = inner.paths.upload(repo, &id)?;
    let tmp = inner.paths.tmp_file();
    let name = repo.to_string();
    {
        let dir = dir.clone();
        blocking(move || {
            durable::ensure_dir(&dir)?;
            let data = dir.join("data");
            File::create(&data).map_err(|e| LayoutError::io("create", &data, e))?;
            durable::write_atomic(&tmp, &dir.join("repo"), name.as_bytes())?;
            Ok(())
        })
        .await?;
    }
    let slot: UploadSlot = Arc::new(tokio::sync::Mutex::new(UploadState::Live(Box::new(
        LiveUpload {
            repo: repo.clone(),
            size: 0,
            durable: 0,
            hasher: Some(Algorithm::Sha256.hasher()),
        },
    ))));
    inner.uploads().insert(id.clone(), slot.clone());
    tracing::debug!(%repo, id, "upload started");
    Ok(LayoutWriter {
        inner: inner.clone(),
        repo: repo.clone(),
        id,
        dir,
        slot,
        size: 0,
        written: 0,
        streaming: None,
    })
}

/// Resumes upload `id` of `repo` where it stands.
pub(crate) async fn resume(inner: &Arc<Inner>, repo: &RepoName, id: &str) -> Result<LayoutWriter> {
    let dir = inner.paths.upload(repo, id)?;
    let slot = inner
        .uploads()
        .entry(id.to_owned())
        .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(UploadState::Unloaded)))
        .clone();
    let mut state = slot.lock().await;
    let size = match live(&mut state, &dir).await {
        Ok(live) if live.repo == *repo => live.size,
        Ok(_) => return Err(upload_unknown(repo, id)),
        Err(err) => {
            if matches!(*state, UploadState::Ended) {
                forget(inner, id, &slot);
            }
            return Err(if err.is(ErrorCode::BlobUploadUnknown) {
                upload_unknown(repo, id)
            } else {
                err
            });
        }
    };
    drop(state);
    Ok(LayoutWriter {
        inner: inner.clone(),
        repo: repo.clone(),
        id: id.to_owned(),
        dir,
        slot,
        size,
        written: 0,
        streaming: None,
    })
}

/// Removes an ended upload's entry from the map (if it is still `slot`).
pub(crate) fn forget(inner: &Inner, id: &str, slot: &UploadSlot) {
    let mut uploads = inner.uploads();
    if uploads.get(id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
        uploads.remove(id);
    }
}

/// The upload's live state, read from disk first if need be. An upload
/// whose files are gone becomes `Ended` and is `BLOB_UPLOAD_UNKNOWN`.
async fn live<'a>(state: &'a mut UploadState, dir: &Path) -> Result<&'a mut LiveUpload> {
    if matches!(state, UploadState::Unloaded) {
        let dir = dir.to_owned();
        *state = match blocking(move || recover(&dir).map_err(Error::from)).await? {
            Step::Done(live) => UploadState::Live(Box::new(live)),
            Step::Gone => UploadState::Ended,
        };
    }
    match state {
        UploadState::Live(live) => Ok(live),
        _ => Err(Error::new(
            ErrorCode::BlobUploadUnknown,
            "upload is not in progress",
        )),
    }
}

/// Reads an upload from disk: its repository and acknowledged offset, with
/// the data file cut back to it (bytes past it were never acknowledged).
fn recover(dir: &Path) -> std::result::Result<Step<LiveUpload>, LayoutError> {
    let repo_path = dir.join("repo");
    let repo = match std::fs::read_to_string(&repo_path) {
        Ok(name) => name,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Step::Gone),
        Err(e) => return Err(LayoutError::io("read", &repo_path, e)),
    };
    let Ok(repo) = repo.parse::<RepoName>() else {
        return Err(LayoutError::corrupt(&repo_path, "not a repository name"));
    };
    let offset_path = dir.join("offset");
    let offset = match std::fs::read_to_string(&offset_path) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|e| LayoutError::corrupt(&offset_path, format!("bad offset: {e}")))?,
        Err(e) if e.kind() == ErrorKind::NotFound => 0,
        Err(e) => return Err(LayoutError::io("read", &offset_path, e)),
    };
    let data = dir.join("data");
    let Step::Done(file) = open_locked(&data, false)? else {
        return Ok(Step::Gone);
    };
    let len = file
        .metadata()
        .map_err(|e| LayoutError::io("stat", &data, e))?
        .len();
    if len < offset {
        return Err(LayoutError::corrupt(
            &data,
            format!("holds {len} bytes, its offset file says {offset}"),
        ));
    }
    if len > offset {
        file.set_len(offset)
            .and_then(|()| file.sync_all())
            .map_err(|e| LayoutError::io("truncate", &data, e))?;
    }
    Ok(Step::Done(LiveUpload {
        repo,
        size: offset,
        durable: offset,
        hasher: None,
    }))
}

/// Hashes the first `size` bytes of `file` (which must hold exactly that
/// many) with `algorithm`.
fn hash_exactly(
    file: &mut File,
    path: &Path,
    size: u64,
    algorithm: Algorithm,
) -> std::result::Result<Digest, LayoutError> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(0))
        .map_err(|e| LayoutError::io("seek", path, e))?;
    let mut hasher = algorithm.hasher();
    let mut buf = vec![0u8; HASH_PIECE];
    let mut left = size;
    while left > 0 {
        let want = left.min(HASH_PIECE as u64) as usize;
        file.read_exact(&mut buf[..want])
            .map_err(|e| LayoutError::io("read", path, e))?;
        hasher.update(&buf[..want]);
        left -= want as u64;
    }
    Ok(hasher.finish())
}

/// Appends to an upload of a [`crate::LayoutRegistry`].
pub(crate) struct LayoutWriter {
    inner: Arc<Inner>,
    repo: RepoName,
    id: String,
    dir: PathBuf,
    slot: UploadSlot,
    /// Where this handle believes the upload stands.
    size: u64,
    /// Bytes written through this handle.
    written: u64,
    /// The upload held for a stream of writes, once past [`STREAM_AFTER`].
    streaming: Option<Streaming>,
}

/// An upload held by one writer handle for a stream of writes: its slot
/// stays locked (other handles and expiry wait), a helper thread owns the
/// locked data file and appends each chunk, and another hashes it, both
/// while the next chunk is received. Dropped unfinished (a request cut off), the helper
/// stops and the upload is read from disk again by its next user, which
/// cuts it back to the acknowledged offset.
struct Streaming {
    state: Option<OwnedMutexGuard<UploadState>>,
    pipe: Option<Pipe<DataFile>>,
    /// The upload's running hash, when every byte so far passed through
    /// this process.
    hashing: Option<Feeder<Hasher>>,
}

impl Drop for Streaming {
    fn drop(&mut self) {
        if self.pipe.is_some()
            && let Some(state) = self.state.as_mut()
        {
            **state = UploadState::Unloaded;
        }
    }
}

/// An upload's data file, locked, appended to by a [`Streaming`] helper.
struct DataFile {
    file: durable::Appender,
    path: PathBuf,
}

impl ChunkSink for DataFile {
    fn take(&mut self, chunk: &[u8]) -> Result<()> {
        self.file
            .append(chunk)
            .map_err(|e| LayoutError::io("write", &self.path, e).into())
    }

    fn close(&mut self) -> Result<()> {
        self.file
            .flush()
            .map_err(|e| LayoutError::io("write", &self.path, e).into())
    }
}

impl LayoutWriter {
    /// Holds the upload and starts the helper thread that writes to it;
    /// stays with one blocking task per write if no thread can be had.
    async fn start_streaming(&mut self) -> Result<()> {
        let mut state = self.slot.clone().lock_owned().await;
        let live = live(&mut state, &self.dir)
            .await
            .map_err(|e| self.named(e))?;
        if live.size != self.size {
            return Err(self.moved_on(live.size));
        }
        let path = self.dir.join("data");
        let expected = live.size;
        let direct = self.inner.direct_writes;
        let opened = blocking(move || {
            let Step::Done(file) = open_locked_at(&path, true, expected)? else {
                return Ok(Step::Gone);
            };
            Ok(Step::Done(DataFile {
                file: durable::Appender::new(file, expected, direct),
                path,
            }))
        })
        .await;
        match opened {
            Ok(Step::Done(sink)) => {
                if let Ok(pipe) = Pipe::spawn(sink) {
                    let hashing = match &mut *state {
                        UploadState::Live(live) => live.hasher.take().map(|h| Feeder::new(h, 0)),
                        _ => None,
                    };
                    self.streaming = Some(Streaming {
                        state: Some(state),
                        pipe: Some(pipe),
                        hashing,
                    });
                }
            }
            Ok(Step::Gone) => {
                *state = UploadState::Ended;
                forget(&self.inner, &self.id, &self.slot);
                return Err(self.unknown());
            }
            Err(err) => {
                *state = UploadState::Unloaded;
                return Err(err);
            }
        }
        Ok(())
    }

    /// Ends streaming, if this handle streams: waits for the helper to
    /// write everything queued and gives back the upload's state, still
    /// locked, with the running hash. On a failed write the upload is read
    /// from disk again by its next user.
    async fn stop_streaming(&mut self) -> Result<Option<OwnedMutexGuard<UploadState>>> {
        let Some(mut streaming) = self.streaming.take() else {
            return Ok(None);
        };
        let (Some(pipe), Some(mut state)) = (streaming.pipe.take(), streaming.state.take()) else {
            return Ok(None);
        };
        match pipe.finish().await {
            Ok(sink) => {
                // The data file and its lock go here: what follows opens
                // and locks the file anew.
                drop(sink);
                let hasher = match streaming.hashing.take() {
                    Some(feeder) => feeder.finish().await.ok(),
                    None => None,
                };
                if let UploadState::Live(live) = &mut *state {
                    live.hasher = hasher;
                }
                Ok(Some(state))
            }
            Err(err) => {
                *state = UploadState::Unloaded;
                Err(err)
            }
        }
    }

    /// The upload's state, locked: held already by a stream of writes
    /// (finished first), or locked now.
    async fn hold(&mut self) -> Result<OwnedMutexGuard<UploadState>> {
        match self.stop_streaming().await? {
            Some(state) => Ok(state),
            None => Ok(self.slot.clone().lock_owned().await),
        }
    }

    /// `RANGE_INVALID`: another handle moved the upload to `at`.
    fn moved_on(&self, at: u64) -> Error {
        Error::new(
            ErrorCode::RangeInvalid,
            format!(
                "upload {} is at byte {at}, this request at {}",
                self.id, self.size
            ),
        )
    }

    /// Ends the upload (under its lock): removes its directory and entry.
    async fn finish(&self, state: &mut UploadState) -> Result<()> {
        *state = UploadState::Ended;
        forget(&self.inner, &self.id, &self.slot);
        let dir = self.dir.clone();
        blocking(move || remove_upload_dir(&dir).map_err(Error::from)).await
    }

    /// The error for a use of an upload that is not (any more) in progress.
    fn unknown(&self) -> Error {
        upload_unknown(&self.repo, &self.id)
    }

    /// Names this upload in a `BLOB_UPLOAD_UNKNOWN`; other errors pass.
    fn named(&self, err: Error) -> Error {
        if err.is(ErrorCode::BlobUploadUnknown) {
            self.unknown()
        } else {
            err
        }
    }
}

/// Removes an upload's directory, durably; a missing one is fine.
pub(crate) fn remove_upload_dir(dir: &Path) -> std::result::Result<(), LayoutError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LayoutError::io("remove", dir, e)),
    }
    match dir.parent() {
        Some(parent) => durable::sync_dir(parent),
        None => Ok(()),
    }
}

#[async_trait]
impl BlobWriter for LayoutWriter {
    fn id(&self) -> &str {
        &self.id
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        if self.streaming.is_none() && self.written + data.len() as u64 > STREAM_AFTER {
            self.start_streaming().await?;
        }
        if let Some(streaming) = self.streaming.as_mut() {
            let len = data.len() as u64;
            if let Some(hashing) = streaming.hashing.as_mut()
                && hashing.push(data.clone()).await.is_err()
            {
                streaming.hashing = None;
            }
            let pushed = match streaming.pipe.as_mut() {
                Some(pipe) => pipe.push(data).await,
                None => Err(Error::internal("an upload stream was used after it ended")),
            };
            if let Err(err) = pushed {
                // Dropping the stream has the upload read from disk again.
                self.streaming = None;
                return Err(err);
            }
            if let Some(UploadState::Live(live)) = streaming.state.as_deref_mut() {
                live.size += len;
                self.size = live.size;
            }
            self.written += len;
            return Ok(());
        }
        self.written += data.len() as u64;
        let mut state = self.slot.lock().await;
        let live = live(&mut state, &self.dir)
            .await
            .map_err(|e| self.named(e))?;
        if live.size != self.size {
            return Err(self.moved_on(live.size));
        }
        let path = self.dir.join("data");
        let mut hasher = live.hasher.take();
        let expected = live.size;
        let written = blocking(move || {
            let Step::Done(mut file) = open_locked_at(&path, true, expected)? else {
                return Ok(Step::Gone);
            };
            file.write_all(&data)
                .map_err(|e| LayoutError::io("write", &path, e))?;
            if let Some(h) = hasher.as_mut() {
                h.update(&data);
            }
            Ok(Step::Done((hasher, data.len() as u64)))
        })
        .await;
        match written {
            Ok(Step::Done((hasher, len))) => {
                live.size += len;
                live.hasher = hasher;
                self.size = live.size;
                Ok(())
            }
            Ok(Step::Gone) => {
                *state = UploadState::Ended;
                forget(&self.inner, &self.id, &self.slot);
                Err(self.unknown())
            }
            Err(err) => {
                // The data file may hold part of the chunk: read the
                // upload from disk again, which cuts it back to the offset.
                *state = UploadState::Unloaded;
                Err(err)
            }
        }
    }

    async fn commit(mut self: Box<Self>, digest: &Digest) -> Result<Descriptor> {
        let mut state = self.hold().await?;
        let live = live(&mut state, &self.dir)
            .await
            .map_err(|e| self.named(e))?;
        if live.repo != self.repo {
            return Err(self.unknown());
        }
        let size = live.size;
        let running = match (digest.algorithm(), &live.hasher) {
            (Algorithm::Sha256, Some(h)) => Some(h.current()),
            _ => None,
        };
        let path = self.dir.join("data");
        let algorithm = digest.algorithm();
        let checked = {
            let path = path.clone();
            blocking(move || {
                let Step::Done(mut file) = open_locked_at(&path, false, size)? else {
                    return Ok(Step::Gone);
                };
                let actual = match running {
                    Some(d) => d,
                    None => hash_exactly(&mut file, &path, size, algorithm)?,
                };
                file.sync_data()
                    .map_err(|e| LayoutError::io("sync", &path, e))?;
                Ok(Step::Done(actual))
            })
            .await?
        };
        // The file lock goes here (linking takes its own lock on the same
        // file); this process's writers still wait for the upload's slot.
        let actual = match checked {
            Step::Done(found) => found,
            Step::Gone => {
                *state = UploadState::Ended;
                forget(&self.inner, &self.id, &self.slot);
                return Err(self.unknown());
            }
        };
        if actual != *digest {
            // The upload stays open: the client may commit it again.
            return Err(Error::new(
                ErrorCode::DigestInvalid,
                format!(
                    "upload {} holds content of digest {actual}, not {digest}",
                    self.id
                ),
            ));
        }
        {
            let guard = self.inner.repos.lock_or_create(&self.repo).await?;
            let _fence = guard.fence().await?;
            install::settle(
                &self.inner,
                Source::Verified(path),
                &self.repo,
                digest,
                Some(size),
            )
            .await?;
        }
        self.finish(&mut state).await?;
        tracing::debug!(repo = %self.repo, id = self.id, %digest, size, "upload committed");
        Ok(Descriptor::blob(digest, size))
    }

    async fn cancel(mut self: Box<Self>) -> Result<()> {
        // What a stream still has queued need not be written.
        self.streaming = None;
        let mut state = self.slot.clone().lock_owned().await;
        live(&mut state, &self.dir)
            .await
            .map_err(|e| self.named(e))?;
        self.finish(&mut state).await?;
        tracing::debug!(repo = %self.repo, id = self.id, "upload cancelled");
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        let mut state = self.hold().await?;
        let Ok(live) = live(&mut state, &self.dir).await else {
            // Ended meanwhile (committed by another request): nothing to keep.
            return Ok(());
        };
        if live.size == live.durable {
            return Ok(());
        }
        let dir = self.dir.clone();
        let tmp = self.inner.paths.tmp_file();
        let size = live.size;
        let persisted = blocking(move || {
            let data = dir.join("data");
            let Step::Done(file) = open_locked(&data, false)? else {
                return Ok(Step::Gone);
            };
            file.sync_data()
                .map_err(|e| LayoutError::io("sync", &data, e))?;
            durable::write_atomic(&tmp, &dir.join("offset"), size.to_string().as_bytes())?;
            Ok(Step::Done(()))
        })
        .await?;
        match persisted {
            Step::Done(()) => live.durable = size,
            Step::Gone => {
                *state = UploadState::Ended;
                forget(&self.inner, &self.id, &self.slot);
            }
        }
        Ok(())
    }
}
