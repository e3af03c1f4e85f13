//! Chunked uploads: sessions kept by id in the shared state, and the
//! writer that appends to one.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::data::{BlobData, Chunks};
use oci_core::digest::Hasher;
use oci_core::pipe::Feeder;
use oci_core::{
    Algorithm, BlobWriter, Descriptor, Digest, Error, ErrorCode, RepoName, Result, Verifier,
};

use crate::state::{Shared, State, Upload};

/// `BLOB_UPLOAD_UNKNOWN` for an id with no session in `repo`.
fn upload_unknown(repo: &RepoName, id: &str) -> Error {
    Error::new(
        ErrorCode::BlobUploadUnknown,
        format!("upload {id} is not in progress in repository {repo}"),
    )
}

/// The session `id` of `repo`: sessions of other repositories are unknown here.
fn session<'a>(state: &'a mut State, repo: &RepoName, id: &str) -> Result<&'a mut Upload> {
    match state.uploads.get_mut(id) {
        Some(upload) if upload.repo == *repo => Ok(upload),
        _ => Err(upload_unknown(repo, id)),
    }
}

/// Ends session `id` of `repo` and returns it.
fn end_session(state: &mut State, repo: &RepoName, id: &str) -> Result<Upload> {
    session(state, repo, id)?;
    state
        .uploads
        .remove(id)
        .ok_or_else(|| upload_unknown(repo, id))
}

/// Opens a new session in `repo`. The repository itself appears only when
/// a blob or manifest lands in it.
pub(crate) fn start(shared: &Shared, repo: &RepoName) -> MemWriter {
    let id = format!("{:032x}", rand::random::<u128>());
    let upload = Upload {
        repo: repo.clone(),
        data: Chunks::default(),
        touched: Instant::now(),
        hasher: Some(Algorithm::Sha256.hasher()),
    };
    shared.write().uploads.insert(id.clone(), upload);
    tracing::debug!(%repo, id, "upload started");
    MemWriter {
        shared: shared.clone(),
        repo: repo.clone(),
        id,
        size: 0,
        hashing: Hashing::NotYet,
    }
}

/// A writer for the existing session `id` of `repo`, at its current size.
pub(crate) fn resume(shared: &Shared, repo: &RepoName, id: &str) -> Result<MemWriter> {
    let size = session(&mut shared.write(), repo, id)?.data.len();
    Ok(MemWriter {
        shared: shared.clone(),
        repo: repo.clone(),
        id: id.to_owned(),
        size,
        hashing: Hashing::NotYet,
    })
}

/// Bytes a handle hashes in its own task before moving the hashing to a
/// helper thread beside the receiving.
const HASH_INLINE_UP_TO: u64 = 1 << 20;

/// A writer handle's part in the upload's running hash.
enum Hashing {
    /// Nothing written through this handle yet.
    NotYet,
    /// This handle holds the running hash and feeds it its writes.
    Running(Box<Feeder<Hasher>>),
    /// The running hash was not there to take: the commit hashes the data.
    Lost,
}

impl std::fmt::Debug for Hashing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Hashing::NotYet => "NotYet",
            Hashing::Running(_) => "Running",
            Hashing::Lost => "Lost",
        })
    }
}

impl MemWriter {
    /// Appends `data` to the session if it stands where this handle left
    /// it; takes the running hash at this handle's first write.
    fn append(&mut self, data: &Bytes) -> Result<()> {
        let mut state = self.shared.write();
        let upload = session(&mut state, &self.repo, &self.id)?;
        if upload.data.len() != self.size {
            // Another writer of the same session got there first.
            return Err(Error::new(
                ErrorCode::RangeInvalid,
                format!(
                    "upload {} is at byte {}, this writer at {}",
                    self.id,
                    upload.data.len(),
                    self.size
                ),
            ));
        }
        if matches!(self.hashing, Hashing::NotYet) {
            self.hashing = match upload.hasher.take() {
                Some(h) => Hashing::Running(Box::new(Feeder::new(h, HASH_INLINE_UP_TO))),
                None => Hashing::Lost,
            };
        }
        if !data.is_empty() {
            upload.data.push(data.clone());
            upload.touched = Instant::now();
        }
        self.size = upload.data.len();
        Ok(())
    }

    /// The running hash of the whole upload, when this handle holds it and
    /// the upload is still where this handle left it.
    async fn running_hash(&mut self) -> Option<Hasher> {
        let Hashing::Running(feeder) = std::mem::replace(&mut self.hashing, Hashing::Lost) else {
            return None;
        };
        let hasher = feeder.finish().await.ok()?;
        let state = self.shared.read();
        let at = state.uploads.get(&self.id).map(|u| u.data.len());
        (at == Some(self.size)).then_some(hasher)
    }

    /// Gives the running hash back to the upload, if it still fits.
    fn put_back(&self, hasher: Hasher) {
        let mut state = self.shared.write();
        if let Ok(upload) = session(&mut state, &self.repo, &self.id)
            && upload.data.len() == self.size
            && upload.hasher.is_none()
        {
            upload.hasher = Some(hasher);
        }
    }
}

/// Appends to an upload session of a [`crate::MemRegistry`].
#[derive(Debug)]
pub(crate) struct MemWriter {
    shared: Shared,
    repo: RepoName,
    id: String,
    size: u64,
    hashing: Hashing,
}

#[async_trait]
impl BlobWriter for MemWriter {
    fn id(&self) -> &str {
        &self.id
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.append(&data)?;
        if let Hashing::Running(feeder) = &mut self.hashing
            && feeder.push(data).await.is_err()
        {
            self.hashing = Hashing::Lost;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, digest: &Digest) -> Result<Descriptor> {
        let running = self.running_hash().await;
        // The pieces are cheap reference-counted clones (and one copy of a
        // tail under 64 KiB).
        let chunks = session(&mut self.shared.write(), &self.repo, &self.id)?
            .data
            .snapshot();
        match running {
            Some(hasher) if digest.algorithm() == Algorithm::Sha256 => {
                let actual = hasher.current();
                if actual != *digest {
                    // A wrong digest fails the commit but leaves the upload open.
                    self.put_back(hasher);
                    return Err(Error::new(
                        ErrorCode::DigestInvalid,
                        format!(
                            "upload {} holds content of digest {actual}, not {digest}",
                            self.id
                        ),
                    ));
                }
            }
            _ => {
                // Hash outside the lock.
                let mut verifier = Verifier::new(digest.clone(), None);
                for chunk in &chunks {
                    verifier.update(chunk)?;
                }
                verifier.finish()?;
            }
        }
        let data = BlobData::from_pieces(chunks);
        let size = data.len();

        let mut state = self.shared.write();
        if session(&mut state, &self.repo, &self.id)?.data.len() != size {
            return Err(Error::new(
                ErrorCode::BlobUploadInvalid,
                format!("upload {} changed while it was committed", self.id),
            ));
        }
        end_session(&mut state, &self.repo, &self.id)?;
        state.link_blob(&self.repo, digest, data);
        drop(state);
        tracing::debug!(repo = %self.repo, id = self.id, %digest, size, "upload committed");
        Ok(Descriptor::blob(digest, size))
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        if let Some(hasher) = self.running_hash().await {
            self.put_back(hasher);
        }
        Ok(())
    }

    async fn cancel(self: Box<Self>) -> Result<()> {
        end_session(&mut self.shared.write(), &self.repo, &self.id)?;
        tracing::debug!(repo = %self.repo, id = self.id, "upload cancelled");
        Ok(())
    }
}

/// Cancels the uploads that received nothing for `idle` or longer; returns
/// how many.
pub(crate) fn expire(shared: &Shared, idle: Duration) -> u64 {
    let now = Instant::now();
    let mut state = shared.write();
    let before = state.uploads.len();
    state
        .uploads
        .retain(|_, upload| now.saturating_duration_since(upload.touched) < idle);
    let expired = (before - state.uploads.len()) as u64;
    drop(state);
    if expired > 0 {
        tracing::info!(expired, idle_secs = idle.as_secs(), "idle uploads expired");
    }
    expired
}
