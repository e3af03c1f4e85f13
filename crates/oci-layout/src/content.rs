//! Blob content on disk: streaming a pushed blob into the shared store
//! (verified, synced, then linked into place) and streaming a stored blob
//! out with bounded memory, verified against its digest as it goes.

use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use oci_core::{BlobStream, ByteRange, Digest, Error, ErrorCode, RangeRequest, Result, Verifier};
use tokio::io::AsyncWriteExt;

use crate::durable;
use crate::error::{LayoutError, io_err, join_err};
use crate::paths::Paths;
use crate::verified::Verified;

/// The largest piece a blob read yields.
const READ_PIECE: usize = 1024 * 1024;

/// How many pieces a blob read keeps ready ahead of its consumer.
const READ_AHEAD: usize = 4;

/// The write buffer of an incoming blob.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Streams `body` into the shared store as `digest`, checking digest and
/// size while it arrives; nothing becomes visible unless both match.
/// Returns the blob's size. A blob the store already holds is only hashed.
pub(crate) async fn ingest(
    paths: &Paths,
    digest: &Digest,
    size: Option<u64>,
    mut body: BlobStream,
) -> Result<u64> {
    let target = paths.store_blob(digest);
    let held = tokio::fs::try_exists(&target).await.unwrap_or(false);
    let tmp = paths.tmp_file();
    let mut file = if held {
        None
    } else {
        let f = tokio::fs::File::create(&tmp)
            .await
            .map_err(io_err("create", &tmp))?;
        Some(tokio::io::BufWriter::with_capacity(WRITE_BUFFER, f))
    };
    let mut verifier = Verifier::new(digest.clone(), size);
    let received: Result<u64> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            verifier.update(&chunk)?;
            if let Some(f) = file.as_mut() {
                f.write_all(&chunk).await.map_err(io_err("write", &tmp))?;
            }
        }
        let seen = verifier.seen();
        verifier.finish()?;
        if let Some(mut f) = file.take() {
            f.flush().await.map_err(io_err("write", &tmp))?;
            f.get_mut().sync_all().await.map_err(io_err("sync", &tmp))?;
        }
        Ok(seen)
    }
    .await;
    let len = match received {
        Ok(len) => len,
        Err(err) => {
            drop(file);
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(err);
        }
    };
    if held {
        return Ok(len);
    }
    let placed = place(tmp.clone(), target).await;
    let _ = tokio::fs::remove_file(&tmp).await;
    placed.map(|()| len)
}

/// Writes a manifest's bytes (already verified) as the file `target` of a
/// repository's layout: a synced temporary file linked into place. The
/// directory entry is synced by the index write that lists the manifest
/// (see [`crate::repos`]), so a burst of pushes shares that sync.
pub(crate) async fn write_manifest(paths: &Paths, target: PathBuf, bytes: Bytes) -> Result<()> {
    if tokio::fs::try_exists(&target).await.unwrap_or(false) {
        return Ok(());
    }
    let tmp = paths.tmp_file();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let written = File::create(&tmp)
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, &bytes)?;
                f.sync_data()
            })
            .map_err(io_err("write", &tmp))
            .and_then(|()| durable::link_unsynced(&tmp, &target).map_err(Error::from));
        let _ = std::fs::remove_file(&tmp);
        written
    })
    .await
    .map_err(join_err)?
}

/// Links a complete, synced file into the shared store as `target`.
pub(crate) async fn place(file: PathBuf, target: PathBuf) -> Result<()> {
    tokio::task::spawn_blocking(move || durable::link(&file, &target).map(|_| ()))
        .await
        .map_err(join_err)?
        .map_err(Error::from)
}

/// Links a blob of the shared store (or of another repository's layout)
/// into a repository's layout.
pub(crate) async fn link(from: PathBuf, to: PathBuf) -> Result<()> {
    place(from, to).await
}

/// Records a blob file this process has just verified (while receiving
/// it), so that reads need not hash it again until it changes.
pub(crate) async fn remember(path: PathBuf, digest: &Digest, verified: &Verified) {
    if let Ok(meta) = tokio::fs::metadata(&path).await {
        verified.record(&meta, digest);
    }
}

/// The size of a blob file; `None` when it does not exist.
pub(crate) async fn stat(path: &Path) -> Result<Option<u64>> {
    match tokio::fs::metadata(path).await {
        Ok(meta) => Ok(Some(meta.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LayoutError::io("stat", path, e).into()),
    }
}

/// Opens a blob file for streaming: its size, the range served, and the
/// bytes (verified against `digest` when the whole blob is read). `None`
/// when the file does not exist.
pub(crate) async fn open(
    path: PathBuf,
    digest: &Digest,
    range: Option<RangeRequest>,
    verified: &Arc<Verified>,
) -> Result<Option<(u64, Option<ByteRange>, BlobStream)>> {
    let opened = {
        let path = path.clone();
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
    let Some((mut file, meta)) = opened else {
        return Ok(None);
    };
    let size = meta.len();
    let Some(request) = range else {
        let check = (!verified.trusted(&meta, digest)).then(|| Check {
            verifier: Verifier::new(digest.clone(), Some(size)),
            digest: digest.clone(),
            meta,
            verified: verified.clone(),
        });
        return Ok(Some((size, None, read_stream(file, path, size, check))));
    };
    let r = request.resolve(size)?;
    file.seek(SeekFrom::Start(r.start))
        .map_err(io_err("seek", &path))?;
    Ok(Some((
        size,
        Some(r),
        read_stream(file, path, r.len(), None),
    )))
}

/// Streams `len` bytes of `file` from where it stands. A blocking task
/// reads (and verifies, given a verifier) pieces of at most [`READ_PIECE`]
/// ahead of the consumer, at most [`READ_AHEAD`] of them, so reading and
/// hashing overlap with sending while memory stays bounded. A verification
/// failure ends the stream with an error naming the file.
fn read_stream(file: File, path: PathBuf, len: u64, check: Option<Check>) -> BlobStream {
    let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        if let Err(err) = pump(file, &path, len, check, &tx) {
            // The consumer may be gone already; then nobody needs to know.
            let _ = tx.blocking_send(Err(err));
        }
    });
    stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

/// The verification of a whole-blob read, recorded when it succeeds.
struct Check {
    verifier: Verifier,
    digest: Digest,
    meta: Metadata,
    verified: Arc<Verified>,
}

/// Reads, verifies and sends the pieces; stops early if the consumer goes.
fn pump(
    mut file: File,
    path: &Path,
    len: u64,
    mut check: Option<Check>,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes>>,
) -> Result<()> {
    let mut left = len;
    while left > 0 {
        let want = left.min(READ_PIECE as u64);
        // Read into spare capacity: no zeroing of the buffer first.
        let mut buf = Vec::with_capacity(want as usize);
        (&mut file)
            .take(want)
            .read_to_end(&mut buf)
            .map_err(io_err("read", path))?;
        let got = buf.len();
        if got == 0 {
            return Err(LayoutError::corrupt(path, format!("file ends {left} bytes early")).into());
        }
        if let Some(c) = check.as_mut() {
            c.verifier.update(&buf).map_err(|e| corruption(path, e))?;
        }
        left -= got as u64;
        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
            return Ok(());
        }
    }
    if let Some(c) = check {
        c.verifier.finish().map_err(|e| corruption(path, e))?;
        c.verified.record(&c.meta, &c.digest);
    }
    Ok(())
}

/// A digest or size mismatch found while reading is corruption on disk.
fn corruption(path: &Path, err: Error) -> Error {
    if err.is(ErrorCode::DigestInvalid) || err.is(ErrorCode::SizeInvalid) {
        LayoutError::corrupt(path, err.message()).into()
    } else {
        err
    }
}

/// Reads a manifest file whole (blocking) and checks it against `digest`.
pub(crate) async fn read_manifest(path: PathBuf, digest: &Digest) -> Result<Bytes> {
    let bytes = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::read(&path).map_err(io_err("read manifest", &path))
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
    Ok(bytes.into())
}
