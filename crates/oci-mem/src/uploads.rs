//! Chunked uploads: sessions kept by id in the shared state, and the
//! writer that appends to one.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::data::{BlobData, Chunks};
use oci_core::{BlobWriter, Descriptor, Digest, Error, ErrorCode, RepoName, Result, Verifier};

use crate::blobs::blob_descriptor;
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
    };
    shared.write().uploads.insert(id.clone(), upload);
    tracing::debug!(%repo, id, "upload started");
    MemWriter {
        shared: shared.clone(),
        repo: repo.clone(),
        id,
        size: 0,
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
    })
}

/// Appends to an upload session of a [`crate::MemRegistry`].
#[derive(Debug)]
pub(crate) struct MemWriter {
    shared: Shared,
    repo: RepoName,
    id: String,
    size: u64,
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
        if !data.is_empty() {
            upload.data.push(data);
            upload.touched = Instant::now();
        }
        self.size = upload.data.len();
        Ok(())
    }

    async fn commit(self: Box<Self>, digest: &Digest) -> Result<Descriptor> {
        // Hash outside the lock: the pieces are cheap reference-counted
        // clones (and one copy of a tail under 64 KiB).
        let chunks = session(&mut self.shared.write(), &self.repo, &self.id)?
            .data
            .snapshot();
        let mut verifier = Verifier::new(digest.clone(), None);
        for chunk in &chunks {
            verifier.update(chunk)?;
        }
        // A wrong digest fails the commit but leaves the upload open.
        verifier.finish()?;
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
        Ok(blob_descriptor(digest, size))
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
