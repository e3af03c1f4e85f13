//! Chunked uploads kept in the bucket, so that any server can continue,
//! query, commit or cancel an upload another started:
//! `uploads/<id>/repo` names the repository, `uploads/<id>/parts/<offset>`
//! hold the bytes, one object per piece received.
//!
//! Every write is stored as it returns (one part object per write; the
//! server hands its writes a few MiB at a time), so what a request
//! acknowledged is in the bucket even if that server dies next. A part is
//! created with `PutMode::Create`, so two requests writing at one offset
//! (two servers, one stale client) cannot both land: the second is
//! `RANGE_INVALID`. Commit streams the parts in
//! order through the digest check into the blob object, which becomes
//! visible only if the digest matched; the upload stays open otherwise.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::PutPayloadMut;
use object_store::path::Path;
use oci_core::{BlobWriter, Descriptor, Digest, Error, ErrorCode, RepoName, Result, Verifier};

use crate::blobs;
use crate::content::{self, Sink};
use crate::error::store_err;
use crate::fence;
use crate::keys;
use crate::store::{Inner, Put};

/// `BLOB_UPLOAD_UNKNOWN` for an id with no upload in `repo`.
fn upload_unknown(repo: &RepoName, id: &str) -> Error {
    Error::new(
        ErrorCode::BlobUploadUnknown,
        format!("upload {id} is not in progress in repository {repo}"),
    )
}

/// Starts an upload in `repo`.
pub(crate) async fn start(inner: &Arc<Inner>, repo: &RepoName) -> Result<ObjWriter> {
    let id = format!("{:032x}", rand::random::<u128>());
    inner.put(&keys::upload_repo(&id), repo.to_string()).await?;
    tracing::debug!(%repo, id, "upload started");
    Ok(ObjWriter {
        inner: inner.clone(),
        repo: repo.clone(),
        id,
        size: 0,
        stored: 0,
        buffer: PutPayloadMut::new(),
    })
}

/// One stored piece of an upload.
struct Part {
    key: Path,
    offset: u64,
    size: u64,
}

/// The pieces of upload `id` of `repo`, in order and checked to follow
/// each other from 0; `BLOB_UPLOAD_UNKNOWN` if there is no such upload.
async fn parts(inner: &Inner, repo: &RepoName, id: &str) -> Result<Vec<Part>> {
    if !crate::upload_id_is_ours(id) {
        return Err(upload_unknown(repo, id));
    }
    let Some((owner, _)) = inner.get_small(&keys::upload_repo(id)).await? else {
        return Err(upload_unknown(repo, id));
    };
    if owner.as_ref() != repo.as_str().as_bytes() {
        return Err(upload_unknown(repo, id));
    }
    let mut parts = Vec::new();
    let mut next = 0;
    for meta in inner.list(&keys::upload_parts(id)).await? {
        let Some(offset) = keys::part_offset(&meta.location) else {
            continue;
        };
        if offset != next {
            return Err(crate::ObjError::corrupt(
                &meta.location,
                format!("upload {id} has a part at {offset}, expected one at {next}"),
            )
            .into());
        }
        next += meta.size;
        parts.push(Part {
            key: meta.location,
            offset,
            size: meta.size,
        });
    }
    Ok(parts)
}

/// Resumes upload `id` of `repo` where it stands.
pub(crate) async fn resume(inner: &Arc<Inner>, repo: &RepoName, id: &str) -> Result<ObjWriter> {
    let parts = parts(inner, repo, id).await?;
    let size = parts.last().map_or(0, |p| p.offset + p.size);
    Ok(ObjWriter {
        inner: inner.clone(),
        repo: repo.clone(),
        id: id.to_owned(),
        size,
        stored: size,
        buffer: PutPayloadMut::new(),
    })
}

/// Appends to an upload of a [`crate::ObjRegistry`].
pub(crate) struct ObjWriter {
    inner: Arc<Inner>,
    repo: RepoName,
    id: String,
    /// Bytes received and stored.
    size: u64,
    /// Bytes in the bucket.
    stored: u64,
    buffer: PutPayloadMut,
}

impl ObjWriter {
    /// Writes the buffered bytes as the part at `stored`.
    async fn flush(&mut self) -> Result<()> {
        if self.buffer.content_length() == 0 {
            return Ok(());
        }
        let payload = std::mem::take(&mut self.buffer).freeze();
        let len = payload.content_length() as u64;
        let key = keys::upload_part(&self.id, self.stored);
        match self.inner.create(&key, payload).await? {
            Put::Done(_) => {}
            Put::Conflict => {
                return Err(Error::new(
                    ErrorCode::RangeInvalid,
                    format!(
                        "upload {} already has bytes at {}: another request wrote there",
                        self.id, self.stored
                    ),
                ));
            }
        }
        // Ended meanwhile (committed, cancelled or expired): the part is
        // debris, and the upload is gone.
        if self
            .inner
            .head(&keys::upload_repo(&self.id))
            .await?
            .is_none()
        {
            self.inner.delete(&key).await?;
            return Err(upload_unknown(&self.repo, &self.id));
        }
        self.stored += len;
        Ok(())
    }
}

/// Removes an upload: its repository object first (so it is unknown from
/// then on), then its parts.
pub(crate) async fn remove(inner: &Inner, id: &str) -> Result<()> {
    inner.delete(&keys::upload_repo(id)).await?;
    for meta in inner.list(&keys::upload_dir(id)).await? {
        inner.delete(&meta.location).await?;
    }
    Ok(())
}

#[async_trait]
impl BlobWriter for ObjWriter {
    fn id(&self) -> &str {
        &self.id
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.buffer.push(data);
        let stored = self.flush().await;
        // A failed write stored nothing: the upload stays where it was.
        self.size = self.stored;
        stored
    }

    async fn commit(mut self: Box<Self>, digest: &Digest) -> Result<Descriptor> {
        self.flush().await?;
        let inner = self.inner.clone();
        let watch = fence::watch(&inner).await?;
        let parts = parts(&inner, &self.repo, &self.id).await?;
        let total = parts.last().map_or(0, |p| p.offset + p.size);
        if total != self.size {
            return Err(Error::new(
                ErrorCode::BlobUploadInvalid,
                format!(
                    "upload {} holds {total} bytes, this request {}",
                    self.id, self.size
                ),
            ));
        }
        let mut verifier = Verifier::new(digest.clone(), None);
        let mut sink = Sink::new(keys::blob_data(digest));
        let streamed: Result<()> = async {
            for part in &parts {
                let got = inner
                    .store
                    .get(&part.key)
                    .await
                    .map_err(store_err("get", &part.key))?;
                let mut stream = content::bytes_of(&part.key, got.into_stream());
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    verifier.update(&chunk)?;
                    sink.write(&inner, chunk).await?;
                }
            }
            Ok(())
        }
        .await;
        let checked = streamed.and_then(|()| {
            let actual = verifier.finish();
            actual.map_err(|_| {
                Error::new(
                    ErrorCode::DigestInvalid,
                    format!(
                        "upload {} does not hold content of digest {digest}",
                        self.id
                    ),
                )
            })
        });
        if let Err(err) = checked {
            // The upload stays open: the client may commit it again.
            sink.abort().await;
            return Err(err);
        }
        sink.finish(&inner).await?;
        blobs::link(&inner, watch, &self.repo, digest, total).await?;
        remove(&inner, &self.id).await?;
        tracing::debug!(repo = %self.repo, id = self.id, %digest, size = total, "upload committed");
        Ok(Descriptor::blob(digest, total))
    }

    async fn cancel(self: Box<Self>) -> Result<()> {
        parts(&self.inner, &self.repo, &self.id).await?;
        remove(&self.inner, &self.id).await?;
        tracing::debug!(repo = %self.repo, id = self.id, "upload cancelled");
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        // Every write is stored already; nothing is held.
        self.flush().await
    }
}

/// Removes the uploads whose newest object is `idle` or older; returns how
/// many. An upload some server is writing to has a fresh part, and one
/// whose part lands after the removal finds the upload gone and says so.
pub(crate) async fn expire(inner: &Inner, idle: Duration) -> Result<u64> {
    let now = chrono_now();
    let mut newest: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for meta in inner.list(&keys::uploads_root()).await? {
        let Some(id) = meta.location.parts().nth(1) else {
            continue;
        };
        let at = meta.last_modified.timestamp();
        let entry = newest.entry(id.as_ref().to_owned()).or_insert(at);
        *entry = (*entry).max(at);
    }
    let mut expired = 0;
    let idle = i64::try_from(idle.as_secs()).unwrap_or(i64::MAX);
    for (id, at) in newest {
        if now.saturating_sub(at) >= idle {
            remove(inner, &id).await?;
            expired += 1;
            tracing::debug!(id, "idle upload expired");
        }
    }
    if expired > 0 {
        tracing::info!(expired, "idle uploads expired");
    }
    Ok(expired)
}

/// Seconds since the epoch, as the object store's timestamps count them.
fn chrono_now() -> i64 {
    i64::try_from(fence::now_secs()).unwrap_or(i64::MAX)
}
