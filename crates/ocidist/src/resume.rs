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
//! them.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_core::{BlobStream, Descriptor, Digest, Error, ErrorCode, RangeRequest, Result, Verifier};

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
        if target.symlink_metadata().is_ok() && !force {
            return Err(Error::new(
                ErrorCode::Unknown,
                format!(
                    "{} already exists (use --force to replace it)",
                    target.display()
                ),
            ));
        }
        let name = target.file_name().ok_or_else(|| {
            Error::new(
                ErrorCode::Unknown,
                format!("{} is not a file path", target.display()),
            )
        })?;
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(Error::new(
                ErrorCode::Unknown,
                format!("directory {} does not exist", parent.display()),
            ));
        }
        let dir = parent.join(format!(".{}.partial", name.to_string_lossy()));
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
        if let Ok(meta) = self.target.symlink_metadata() {
            let removed = if meta.is_dir() {
                std::fs::remove_dir_all(&self.target)
            } else {
                std::fs::remove_file(&self.target)
            };
            removed.map_err(|e| io_err(&self.target, e))?;
        }
        std::fs::rename(self.path(), &self.target).map_err(|e| io_err(&self.target, e))?;
        std::fs::remove_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))
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
