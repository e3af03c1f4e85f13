//! Chunked uploads, kept on disk so that they survive a restart:
//! `.uploads/<id>/repo` names the repository, `data` holds the bytes and
//! `offset` the length acknowledged by the last `close` (a restart cuts
//! `data` back to it). Commit links `data` into the shared store.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use oci_core::{Algorithm, BlobWriter, Descriptor, Digest, Error, ErrorCode, RepoName, Result};

use crate::blobs::blob_descriptor;
use crate::content;
use crate::durable;
use crate::error::{LayoutError, io_err, join_err};
use crate::store::{Inner, LiveUpload};

/// The piece size used to hash an upload's data file at commit.
const HASH_PIECE: usize = 1024 * 1024;

/// `BLOB_UPLOAD_UNKNOWN` for an id with no upload in `repo`.
fn upload_unknown(repo: &RepoName, id: &str) -> Error {
    Error::new(
        ErrorCode::BlobUploadUnknown,
        format!("upload {id} is not in progress in repository {repo}"),
    )
}

/// Runs a blocking closure on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(join_err)?
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
            File::create(dir.join("data")).map_err(io_err("create", &dir.join("data")))?;
            durable::write_atomic(&tmp, &dir.join("repo"), name.as_bytes())?;
            Ok(())
        })
        .await?;
    }
    let hasher = Some(Algorithm::Sha256.hasher());
    inner.uploads().insert(
        id.clone(),
        LiveUpload {
            size: 0,
            hasher: hasher.clone(),
        },
    );
    tracing::debug!(%repo, id, "upload started");
    Ok(LayoutWriter::new(inner, repo, id, dir, 0, hasher))
}

/// Resumes upload `id` of `repo` where it stands.
pub(crate) async fn resume(inner: &Arc<Inner>, repo: &RepoName, id: &str) -> Result<LayoutWriter> {
    let dir = inner.paths.upload(repo, id)?;
    let owner = {
        let path = dir.join("repo");
        blocking(move || match std::fs::read_to_string(&path) {
            Ok(name) => Ok(Some(name)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LayoutError::io("read", &path, e).into()),
        })
        .await?
    };
    if owner.as_deref() != Some(repo.as_str()) {
        return Err(upload_unknown(repo, id));
    }
    let live = inner.uploads().get(id).cloned();
    let live = match live {
        Some(live) => live,
        None => {
            let dir = dir.clone();
            let size = blocking(move || recover(&dir)).await?;
            let live = LiveUpload { size, hasher: None };
            inner.uploads().insert(id.to_owned(), live.clone());
            live
        }
    };
    Ok(LayoutWriter::new(
        inner,
        repo,
        id.to_owned(),
        dir,
        live.size,
        live.hasher,
    ))
}

/// After a restart: the acknowledged offset, with the data file cut back
/// to it (bytes past it were never acknowledged).
fn recover(dir: &Path) -> Result<u64> {
    let offset_path = dir.join("offset");
    let offset = match std::fs::read_to_string(&offset_path) {
        Ok(text) => text.trim().parse::<u64>().map_err(|e| {
            Error::from(LayoutError::corrupt(
                &offset_path,
                format!("bad offset: {e}"),
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(LayoutError::io("read", &offset_path, e).into()),
    };
    let data = dir.join("data");
    let file = OpenOptions::new()
        .write(true)
        .open(&data)
        .map_err(io_err("open", &data))?;
    let len = file.metadata().map_err(io_err("stat", &data))?.len();
    if len < offset {
        return Err(LayoutError::corrupt(
            &data,
            format!("holds {len} bytes, its offset file says {offset}"),
        )
        .into());
    }
    if len > offset {
        file.set_len(offset).map_err(io_err("truncate", &data))?;
        file.sync_all().map_err(io_err("sync", &data))?;
    }
    Ok(offset)
}

/// Appends to an upload of a [`crate::LayoutRegistry`].
pub(crate) struct LayoutWriter {
    inner: Arc<Inner>,
    repo: RepoName,
    id: String,
    dir: PathBuf,
    size: u64,
    /// The size last made durable in the `offset` file.
    durable: u64,
    hasher: Option<oci_core::digest::Hasher>,
    file: Option<File>,
}

impl LayoutWriter {
    fn new(
        inner: &Arc<Inner>,
        repo: &RepoName,
        id: String,
        dir: PathBuf,
        size: u64,
        hasher: Option<oci_core::digest::Hasher>,
    ) -> LayoutWriter {
        LayoutWriter {
            inner: inner.clone(),
            repo: repo.clone(),
            id,
            dir,
            size,
            durable: size,
            hasher,
            file: None,
        }
    }

    /// Syncs the data written and records the offset.
    async fn persist(&mut self) -> Result<()> {
        if self.size == self.durable && self.file.is_none() {
            return Ok(());
        }
        let file = self.file.take();
        let dir = self.dir.clone();
        let tmp = self.inner.paths.tmp_file();
        let size = self.size;
        blocking(move || {
            if let Some(f) = file {
                f.sync_data().map_err(io_err("sync", &dir.join("data")))?;
            }
            durable::write_atomic(&tmp, &dir.join("offset"), size.to_string().as_bytes())?;
            Ok(())
        })
        .await?;
        self.durable = size;
        if let Some(live) = self.inner.uploads().get_mut(&self.id) {
            live.hasher = self.hasher.clone();
        }
        Ok(())
    }

    /// The digest of the data, from the running hash or by reading it back.
    async fn digest_of_data(&self, algorithm: Algorithm) -> Result<Digest> {
        if let (Algorithm::Sha256, Some(h)) = (algorithm, &self.hasher) {
            return Ok(h.current());
        }
        let path = self.dir.join("data");
        let size = self.size;
        blocking(move || {
            let mut file = File::open(&path).map_err(io_err("open", &path))?;
            let mut hasher = algorithm.hasher();
            let mut buf = vec![0u8; HASH_PIECE];
            let mut left = size;
            while left > 0 {
                let want = left.min(HASH_PIECE as u64) as usize;
                std::io::Read::read_exact(&mut file, &mut buf[..want])
                    .map_err(io_err("read", &path))?;
                hasher.update(&buf[..want]);
                left -= want as u64;
            }
            Ok(hasher.finish())
        })
        .await
    }

    /// Ends the upload in this process and removes its directory.
    async fn finish(&self) -> Result<()> {
        self.inner.uploads().remove(&self.id);
        let dir = self.dir.clone();
        blocking(move || {
            std::fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
            if let Some(parent) = dir.parent() {
                durable::sync_dir(parent)?;
            }
            Ok(())
        })
        .await
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
        {
            let mut uploads = self.inner.uploads();
            let live = uploads
                .get_mut(&self.id)
                .ok_or_else(|| upload_unknown(&self.repo, &self.id))?;
            if live.size != self.size {
                return Err(Error::new(
                    ErrorCode::RangeInvalid,
                    format!(
                        "upload {} is at byte {}, this writer at {}",
                        self.id, live.size, self.size
                    ),
                ));
            }
            // Claim the bytes before writing them, so a second writer of
            // the same upload fails instead of interleaving.
            live.size += data.len() as u64;
            live.hasher = None;
        }
        let path = self.dir.join("data");
        let file = self.file.take();
        let mut hasher = self.hasher.take();
        let written = blocking(move || {
            let mut file = match file {
                Some(f) => f,
                None => OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(io_err("open", &path))?,
            };
            file.write_all(&data).map_err(io_err("write", &path))?;
            if let Some(h) = hasher.as_mut() {
                h.update(&data);
            }
            Ok((file, hasher, data.len() as u64))
        })
        .await;
        match written {
            Ok((file, hasher, len)) => {
                self.file = Some(file);
                self.hasher = hasher;
                self.size += len;
                Ok(())
            }
            Err(err) => {
                // The data file may hold part of the chunk: forget the
                // upload here so that a resume cuts it back to the offset.
                self.inner.uploads().remove(&self.id);
                Err(err)
            }
        }
    }

    async fn commit(mut self: Box<Self>, digest: &Digest) -> Result<Descriptor> {
        if !self.inner.uploads().contains_key(&self.id) {
            return Err(upload_unknown(&self.repo, &self.id));
        }
        self.persist().await?;
        let actual = self.digest_of_data(digest.algorithm()).await?;
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
        let data = self.dir.join("data");
        let target = self.inner.paths.store_blob(digest);
        content::place(data, target.clone()).await?;
        {
            let _guard = self.inner.repos.lock_or_create(&self.repo).await?;
            content::link(target, self.inner.paths.repo_blob(&self.repo, digest)).await?;
        }
        self.finish().await?;
        // Recorded after the upload's own link is gone (which changes the
        // file's status-change time).
        let linked = self.inner.paths.repo_blob(&self.repo, digest);
        content::remember(linked, digest, &self.inner.verified).await;
        tracing::debug!(repo = %self.repo, id = self.id, %digest, size = self.size, "upload committed");
        Ok(blob_descriptor(digest, self.size))
    }

    async fn cancel(self: Box<Self>) -> Result<()> {
        if !tokio::fs::try_exists(self.dir.join("repo"))
            .await
            .unwrap_or(false)
        {
            return Err(upload_unknown(&self.repo, &self.id));
        }
        self.finish().await?;
        tracing::debug!(repo = %self.repo, id = self.id, "upload cancelled");
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        self.persist().await
    }
}
