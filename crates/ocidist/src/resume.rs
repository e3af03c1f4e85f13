//! Transfers that survive an interruption (Ctrl-C, a crash, SIGKILL, a
//! dropped network): running the same command again re-uses what is done.
//!
//! A pull writes into [`Partial`], a hidden directory beside its target
//! (`.NAME.partial/`, never the target itself) that holds the output in
//! progress and, per blob, how many of its bytes are on disk. Run again
//! for the same plan, the pull hashes those bytes again ([`reopen`]) and
//! asks the registry only for the rest, with a `Range` request; the
//! blob's digest is checked over the whole, so bytes on disk that were
//! damaged cost a fresh download, never a wrong output. A different
//! image or format at the same target starts over.
//!
//! Pushes and copies skip blobs the target already has (a HEAD) or mount
//! them, and [`upload`] big blobs in chunks whose session is kept in a
//! state file ([`UploadJournal`]), so that a second run resumes the session
//! where the registry says it stands (its upload status) and sends only the
//! rest.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use futures::StreamExt;
use futures::future::BoxFuture;
use oci_core::{
    BlobStream, BlobWriter, Descriptor, Digest, Error, ErrorCode, RangeRequest, Registry, RepoName,
    Result, Verifier,
};

use crate::archive::tar::{Plan, Source};
use crate::archive::write::BlobSource;
use crate::staged::io_err;

/// The output of a pull in progress, kept beside its target across runs.
pub struct Partial {
    dir: PathBuf,
    target: PathBuf,
    /// Held while this process writes here.
    _lock: File,
}

/// The file naming the plan a partial directory holds.
const PLAN_FILE: &str = "plan";

impl Partial {
    /// Opens the partial output of `target` for `plan`: the one an earlier
    /// run left if it was for the same plan, else a fresh one. Refuses an
    /// existing target unless `force`, and a partial output another
    /// process is writing.
    pub fn open(target: &Path, plan: &Plan, force: bool) -> Result<Partial> {
        let (parent, name) = crate::staged::beside(target, force)?;
        let dir = parent.join(format!(".{name}.partial"));
        std::fs::create_dir_all(dir.join("blobs")).map_err(|e| io_err(&dir, e))?;
        let lock = File::create(dir.join("lock")).map_err(|e| io_err(&dir, e))?;
        if lock.try_lock().is_err() {
            return Err(Error::new(
                ErrorCode::Unknown,
                format!("another ocidist is writing {}", target.display()),
            ));
        }
        let key = plan_key(plan);
        let same = std::fs::read_to_string(dir.join(PLAN_FILE)).is_ok_and(|k| k == key);
        if !same {
            for stale in [dir.join("out"), dir.join("blobs")] {
                let _ = std::fs::remove_dir_all(&stale).or_else(|_| std::fs::remove_file(&stale));
            }
            std::fs::create_dir_all(dir.join("blobs")).map_err(|e| io_err(&dir, e))?;
            std::fs::write(dir.join(PLAN_FILE), key).map_err(|e| io_err(&dir, e))?;
        } else {
            tracing::info!(target = %target.display(), "resuming an interrupted pull");
        }
        Ok(Partial {
            dir,
            target: target.to_path_buf(),
            _lock: lock,
        })
    }

    /// Where the output is written until [`Partial::persist`].
    pub fn path(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// How many bytes of plan entry `slot` an earlier run wrote.
    pub fn done(&self, slot: usize) -> u64 {
        std::fs::read_to_string(self.slot(slot))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Records that `n` bytes of plan entry `slot` are written.
    pub fn record(&self, slot: usize, n: u64) -> Result<()> {
        let path = self.slot(slot);
        std::fs::write(&path, n.to_string()).map_err(|e| io_err(&path, e))
    }

    /// The record of plan entry `slot`, held open for the many updates of
    /// one download (each one write, not a create-write-close).
    pub fn recorder(&self, slot: usize) -> Result<SlotRecorder> {
        let path = self.slot(slot);
        let file = open_for_writing(&path)?;
        Ok(SlotRecorder { file, path })
    }

    fn slot(&self, slot: usize) -> PathBuf {
        self.dir.join("blobs").join(slot.to_string())
    }

    /// The same error naming the target where it named the partial output.
    pub fn hide_temp(&self, e: Error) -> Error {
        let temp = self.dir.display().to_string();
        if !e.message().contains(&temp) {
            return e;
        }
        let message = e
            .message()
            .replace(
                &self.path().display().to_string(),
                &self.target.display().to_string(),
            )
            .replace(&temp, &self.target.display().to_string());
        let mut out = Error::new(e.code(), message);
        if let Some(d) = e.detail() {
            out = out.with_detail(d.clone());
        }
        out
    }

    /// The error of a failed pull, naming the target. The partial output
    /// is kept for a second run unless the registry's answer means a second
    /// run fails the same way (something missing, refused or invalid).
    pub fn failed(self, e: Error) -> Error {
        let e = self.hide_temp(e);
        let permanent = e.is_not_found()
            || [
                ErrorCode::Unauthorized,
                ErrorCode::Denied,
                ErrorCode::Unsupported,
                ErrorCode::DigestInvalid,
                ErrorCode::SizeInvalid,
                ErrorCode::ManifestInvalid,
                ErrorCode::NameInvalid,
            ]
            .iter()
            .any(|c| e.is(*c));
        if permanent {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        e
    }

    /// Moves the finished output to its target, replacing what was there,
    /// and removes the partial directory.
    pub fn persist(self) -> Result<()> {
        crate::staged::move_into_place(&self.path(), &self.target)?;
        std::fs::remove_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))
    }
}

/// How many bytes of one plan entry are written, kept in its open record
/// file ([`Partial::recorder`]); `Send`, so a writing thread can keep it.
pub struct SlotRecorder {
    file: File,
    path: PathBuf,
}

impl SlotRecorder {
    /// Records that `n` bytes are written: one write of a fixed width over
    /// the old number, so the file never holds a partial one.
    pub fn record(&self, n: u64) -> Result<()> {
        self.file
            .write_all_at(format!("{n:>20}").as_bytes(), 0)
            .map_err(|e| io_err(&self.path, e))
    }
}

/// A digest of everything that decides where a plan's bytes go.
fn plan_key(plan: &Plan) -> String {
    let mut lines = String::new();
    for e in plan.entries() {
        let blob = match &e.source {
            Source::Blob(d) => d.digest.to_string(),
            Source::Inline(b) => Digest::sha256(b).to_string(),
            Source::Directory => "dir".to_owned(),
        };
        lines.push_str(&format!(
            "{}\0{}\0{}\0{blob}\n",
            e.path,
            e.header_offset,
            e.size()
        ));
    }
    Digest::sha256(lines.as_bytes()).to_string()
}

/// What an earlier run left of a blob.
pub enum Resumed {
    /// Nothing usable: download it whole.
    Nothing,
    /// All of it, verified again.
    Complete,
    /// Part of it: the rest is asked for.
    Rest(Box<Rest>),
}

/// A blob download picked up where an earlier run stopped.
pub struct Rest {
    /// The rest of the blob, from `done` on.
    pub stream: BlobStream,
    /// Bytes already on disk, hashed again.
    pub done: u64,
    /// Checks the whole blob once the rest has passed through it.
    pub verifier: Verifier,
}

/// Picks up the download of `d` into `file` at `offset` (plan entry
/// `slot`): hashes again the bytes an earlier run wrote, then asks for
/// the rest (`Nothing` when the registry serves no ranges).
pub async fn reopen(
    from: &BlobSource,
    d: &Descriptor,
    file: &Arc<File>,
    offset: u64,
    partial: &Partial,
    slot: usize,
) -> Result<Resumed> {
    let done = partial.done(slot);
    if done == 0 || done > d.size {
        return Ok(Resumed::Nothing);
    }
    let file = Arc::clone(file);
    let fresh = Verifier::new(d.digest.clone(), Some(d.size));
    let verifier = tokio::task::spawn_blocking(move || {
        let mut verifier = fresh;
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < done {
            let n = buf.len().min((done - at) as usize);
            file.read_exact_at(&mut buf[..n], offset + at)?;
            verifier.update(&buf[..n]).map_err(std::io::Error::other)?;
            at += n as u64;
        }
        Ok::<_, std::io::Error>(verifier)
    })
    .await
    .map_err(|e| Error::internal(format!("hash task failed: {e}")))?
    .map_err(|e| Error::new(ErrorCode::Unknown, format!("reading the partial pull: {e}")))?;
    if done == d.size {
        return Ok(match verifier.finish() {
            Ok(()) => Resumed::Complete,
            Err(_) => Resumed::Nothing,
        });
    }
    match from
        .registry
        .get_blob_range(&from.repo, &d.digest, RangeRequest::from(done))
        .await
    {
        Ok(reader) => {
            tracing::info!(digest = %d.digest, done, "resuming a blob download");
            Ok(Resumed::Rest(Box::new(Rest {
                stream: reader.stream,
                done,
                verifier,
            })))
        }
        Err(e) => {
            tracing::info!(digest = %d.digest, error = %e, "no ranged read: downloading whole");
            Ok(Resumed::Nothing)
        }
    }
}

/// Opens a file of a partial output for writing without truncating it.
pub fn open_for_writing(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .read(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_err(path, e))
}

/// Blobs at least this large upload in chunks whose session is journaled.
pub const RESUMABLE_ABOVE: u64 = 16 << 20;

/// The size of each chunk of a resumable upload (one PATCH each).
pub const UPLOAD_CHUNK: usize = 8 << 20;

/// The upload sessions of big blobs in flight, one small file each under
/// the user's cache directory (`$XDG_CACHE_HOME/ocidist/uploads`, else
/// `~/.cache/ocidist/uploads`), named by a digest of the registry,
/// repository and blob: a push or copy run again finds its session there
/// and resumes it where the registry says it stands.
#[derive(Debug, Clone)]
pub struct UploadJournal {
    dir: PathBuf,
}

impl UploadJournal {
    /// The user's journal; `None` without a home or cache directory.
    pub fn user() -> Option<UploadJournal> {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(UploadJournal {
            dir: cache.join("ocidist").join("uploads"),
        })
    }

    fn path(&self, host: &str, repo: &RepoName, digest: &Digest) -> PathBuf {
        let key = Digest::sha256(format!("{host}/{repo}@{digest}").as_bytes());
        self.dir.join(key.hex())
    }

    fn get(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
    }

    /// Records the session `id`; a journal that cannot be written only
    /// costs the resumption.
    fn put(&self, path: &Path, id: &str) {
        let written = std::fs::create_dir_all(&self.dir).and_then(|()| {
            let temp = path.with_extension("tmp");
            std::fs::write(&temp, id)?;
            std::fs::rename(&temp, path)
        });
        if let Err(e) = written {
            tracing::debug!(error = %e, "cannot record the upload session");
        }
    }

    fn remove(&self, path: &Path) {
        let _ = std::fs::remove_file(path);
    }
}

/// Opens the bytes of a blob from an offset on.
pub type OpenFrom<'a> = Box<dyn Fn(u64) -> BoxFuture<'a, Result<BlobStream>> + Send + Sync + 'a>;

/// Uploads blob `d` to `repo` on `host`, reading it with `open`. A big one
/// goes in chunks whose session is journaled, resuming a session an
/// earlier run left; the registry checks the digest of the whole.
pub async fn upload(
    reg: &dyn Registry,
    host: &str,
    repo: &RepoName,
    d: &Descriptor,
    open: OpenFrom<'_>,
) -> Result<()> {
    let journal = UploadJournal::user().filter(|_| d.size >= RESUMABLE_ABOVE);
    let Some(journal) = journal else {
        reg.push_blob(repo, &d.digest, Some(d.size), open(0).await?)
            .await?;
        return Ok(());
    };
    let path = journal.path(host, repo, &d.digest);
    let mut resumed = None;
    if let Some(id) = journal.get(&path) {
        match reg.push_blob_chunked_resume(repo, &id).await {
            Ok(w) if w.size() <= d.size => resumed = Some(w),
            Ok(w) => {
                let _ = w.cancel().await;
            }
            Err(e) => tracing::debug!(error = %e, "the journaled upload is gone"),
        }
    }
    let was_resumed = resumed.is_some();
    match upload_chunks(reg, repo, d, &open, &journal, &path, resumed).await {
        Err(e)
            if was_resumed
                && (e.is(ErrorCode::DigestInvalid) || e.is(ErrorCode::BlobUploadInvalid)) =>
        {
            tracing::warn!(digest = %d.digest, "the resumed upload did not verify; uploading it whole");
            journal.remove(&path);
            upload_chunks(reg, repo, d, &open, &journal, &path, None).await
        }
        done => done,
    }
}

async fn upload_chunks(
    reg: &dyn Registry,
    repo: &RepoName,
    d: &Descriptor,
    open: &OpenFrom<'_>,
    journal: &UploadJournal,
    path: &Path,
    resumed: Option<Box<dyn BlobWriter>>,
) -> Result<()> {
    let mut writer = match resumed {
        Some(w) => {
            tracing::info!(digest = %d.digest, at = w.size(), "resuming an upload");
            w
        }
        None => reg.push_blob_chunked(repo).await?,
    };
    journal.put(path, writer.id());
    // An upload that already holds every byte (killed between the last
    // PATCH and the PUT) has nothing left to read: a range from the
    // blob's end cannot be asked for.
    let mut stream = if writer.size() >= d.size {
        futures::stream::empty().boxed()
    } else {
        open(writer.size()).await?
    };
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
        if buf.len() >= UPLOAD_CHUNK {
            writer.write(buf.split().freeze()).await?;
            journal.put(path, writer.id());
        }
    }
    if !buf.is_empty() {
        writer.write(buf.freeze()).await?;
    }
    let committed = writer.commit(&d.digest).await;
    let wrong = |e: &Error| e.is(ErrorCode::DigestInvalid) || e.is(ErrorCode::SizeInvalid);
    if committed.as_ref().map_or_else(wrong, |_| true) {
        journal.remove(path);
    }
    committed.map(drop)
}

/// `stream` without its first `n` bytes.
pub fn skip(stream: BlobStream, n: u64) -> BlobStream {
    if n == 0 {
        return stream;
    }
    let mut left = n;
    stream
        .filter_map(move |chunk| {
            let out = match chunk {
                Ok(b) if left >= b.len() as u64 => {
                    left -= b.len() as u64;
                    None
                }
                Ok(b) => {
                    let rest = b.slice(left as usize..);
                    left = 0;
                    Some(Ok(rest))
                }
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(out)
        })
        .boxed()
}
