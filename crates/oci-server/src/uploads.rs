//! Upload endpoints: POST `/blobs/uploads/` (session, monolithic push or
//! cross-repository mount) and PATCH, PUT, GET, DELETE of
//! `/blobs/uploads/<id>`.
//!
//! A writer is resumed for each request and closed again after it unless
//! the request committed or cancelled it, so a session survives failed or
//! interrupted requests. Sessions are counted against the server's caps
//! from the POST that opens them until they are committed, cancelled,
//! expired or found unknown to the store.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::StatusCode;
use http::header::{CONTENT_RANGE, LOCATION, RANGE, RETRY_AFTER};
use oci_core::{BlobStream, BlobWriter, Digest, Error, ErrorCode, RepoName, Result, wire};

use crate::body;
use crate::ctx::Ctx;
use crate::response::{Answer, Failure, Reply};
use crate::routes::{blob_location, upload_location};
use crate::sessions::RETRY_AFTER as SESSION_RETRY;

/// POST `/v2/<name>/blobs/uploads/`: mount, monolithic push, or a new session.
pub(crate) async fn start(ctx: &Ctx<'_>, repo: &RepoName, body: BlobStream) -> Answer {
    if let Some(mount) = ctx.query.get("mount") {
        let digest: Digest = mount.parse()?;
        if let Some(from) = ctx.query.get("from") {
            let from: RepoName = from.parse()?;
            match ctx.registry.mount_blob(repo, &from, &digest).await {
                Ok(desc) => return created(repo, &desc.digest),
                Err(e) if falls_back_to_upload(&e) => {
                    tracing::debug!(%repo, %from, %digest, error = %e, "mount failed, opening an upload");
                }
                Err(e) => return Err(e.into()),
            }
        }
        return open_session(ctx, repo).await;
    }
    if let Some(digest) = ctx.query.get("digest") {
        let digest: Digest = digest.parse()?;
        let size = body::declared_length(ctx.headers)?;
        let body = capped(ctx, body, 0, size)?;
        let desc = ctx.registry.push_blob(repo, &digest, size, body).await?;
        return created(repo, &desc.digest);
    }
    open_session(ctx, repo).await
}

/// Resumes session `id`, and stops counting it when the store no longer
/// knows it (expired, or ended by another server).
async fn resume(ctx: &Ctx<'_>, repo: &RepoName, id: &str) -> Result<Box<dyn BlobWriter>> {
    match ctx.registry.push_blob_chunked_resume(repo, id).await {
        Ok(writer) => {
            ctx.sessions.touch(id);
            Ok(writer)
        }
        Err(e) => {
            if e.is(ErrorCode::BlobUploadUnknown) {
                ctx.sessions.ended(id);
            }
            Err(e)
        }
    }
}

/// PATCH `/uploads/<id>`: appends the body at the upload's current size.
pub(crate) async fn patch(ctx: &Ctx<'_>, repo: &RepoName, id: &str, body: BlobStream) -> Answer {
    let mut writer = resume(ctx, repo, id).await?;
    if let Err(e) = append(ctx, writer.as_mut(), body).await {
        let failure = with_progress(e.into(), repo, writer.as_ref());
        close(writer).await;
        return Err(failure);
    }
    let reply = progress(StatusCode::ACCEPTED, repo, writer.as_ref());
    writer.close().await?;
    reply.done()
}

/// PUT `/uploads/<id>?digest=`: appends an optional last chunk, then commits.
pub(crate) async fn finish(ctx: &Ctx<'_>, repo: &RepoName, id: &str, body: BlobStream) -> Answer {
    let digest: Digest = ctx
        .query
        .get("digest")
        .ok_or_else(|| {
            Error::new(
                ErrorCode::DigestInvalid,
                "completing an upload needs a digest query parameter",
            )
        })?
        .parse()?;
    let mut writer = resume(ctx, repo, id).await?;
    if let Err(e) = append(ctx, writer.as_mut(), body).await {
        let failure = with_progress(e.into(), repo, writer.as_ref());
        close(writer).await;
        return Err(failure);
    }
    let desc = writer.commit(&digest).await?;
    ctx.sessions.ended(id);
    created(repo, &desc.digest)
}

/// GET `/uploads/<id>`: the upload's progress, 204.
pub(crate) async fn status(ctx: &Ctx<'_>, repo: &RepoName, id: &str) -> Answer {
    let writer = resume(ctx, repo, id).await?;
    let reply = progress(StatusCode::NO_CONTENT, repo, writer.as_ref());
    writer.close().await?;
    reply.done()
}

/// DELETE `/uploads/<id>`: cancels the upload, 204.
pub(crate) async fn cancel(ctx: &Ctx<'_>, repo: &RepoName, id: &str) -> Answer {
    let writer = resume(ctx, repo, id).await?;
    writer.cancel().await?;
    ctx.sessions.ended(id);
    Reply::new(StatusCode::NO_CONTENT).done()
}

/// Opens a chunked upload session: 202 with its location; a `429
/// TOOMANYREQUESTS` with `Retry-After` when the session caps are reached.
async fn open_session(ctx: &Ctx<'_>, repo: &RepoName) -> Answer {
    let reservation = ctx.sessions.reserve(repo).map_err(|e| {
        Failure::from(e).with_header(RETRY_AFTER, &SESSION_RETRY.as_secs().to_string())
    })?;
    let writer = ctx.registry.push_blob_chunked(repo).await?;
    reservation.opened(writer.id());
    let mut reply = progress(StatusCode::ACCEPTED, repo, writer.as_ref());
    if let Some(min) = writer.chunk_min() {
        reply = reply.header(wire::OCI_CHUNK_MIN_LENGTH, &min.to_string());
    }
    writer.close().await?;
    reply.done()
}

/// Whether a failed mount should fall back to an ordinary upload session.
fn falls_back_to_upload(err: &Error) -> bool {
    matches!(
        err.code(),
        ErrorCode::BlobUnknown
            | ErrorCode::NameUnknown
            | ErrorCode::Unsupported
            | ErrorCode::Denied
    )
}

/// Streams a request body into a writer after checking its declared
/// position: a `Content-Range` must start where the upload stands and
/// agree with `Content-Length` and with the bytes that actually arrive.
async fn append(ctx: &Ctx<'_>, writer: &mut dyn BlobWriter, body: BlobStream) -> Result<()> {
    let expected = match ctx.headers.get(CONTENT_RANGE) {
        None => None,
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                Error::new(
                    ErrorCode::RangeInvalid,
                    "the Content-Range header is not ASCII",
                )
            })?;
            let (start, end) = wire::parse_upload_content_range(text)?;
            if start != writer.size() {
                return Err(Error::new(
                    ErrorCode::RangeInvalid,
                    format!(
                        "chunk starts at byte {start} but the upload holds {} bytes",
                        writer.size()
                    ),
                ));
            }
            let length = end - start + 1;
            if let Some(declared) = body::declared_length(ctx.headers)?
                && declared != length
            {
                return Err(Error::new(
                    ErrorCode::RangeInvalid,
                    format!("Content-Length {declared} disagrees with Content-Range {text}"),
                ));
            }
            Some(length)
        }
    };
    let declared = expected.or(body::declared_length(ctx.headers)?);
    let mut body = capped(ctx, body, writer.size(), declared)?;
    let mut received = 0u64;
    let mut batch = Batch::new(declared);
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => {
                // What arrived before the body failed is kept.
                batch.flush(writer).await?;
                return Err(err);
            }
        };
        received += chunk.len() as u64;
        if expected.is_some_and(|len| received > len) {
            batch.flush(writer).await?;
            return Err(length_mismatch(expected, received));
        }
        batch.add(writer, chunk).await?;
    }
    batch.flush(writer).await?;
    if expected.is_some_and(|len| received != len) {
        return Err(length_mismatch(expected, received));
    }
    Ok(())
}

/// A request body reaches the store in writes of about this size, not in
/// the network's pieces: a store that keeps each write durable as it
/// returns (an object per write, in an object store) then writes a few
/// large pieces rather than thousands of small ones.
const WRITE_BATCH: usize = 4 << 20;

/// The network's pieces gathered into writes of [`WRITE_BATCH`] bytes
/// (the last one shorter), each in a buffer of its own exact size: a store
/// that keeps the writes (the memory store) holds no spare capacity, and no
/// batch is copied again to grow.
struct Batch {
    buf: BytesMut,
    /// Bytes the body still declares to carry, if it declared a length.
    left: Option<u64>,
}

impl Batch {
    fn new(declared: Option<u64>) -> Batch {
        Batch {
            buf: BytesMut::new(),
            left: declared,
        }
    }

    async fn add(&mut self, writer: &mut dyn BlobWriter, mut chunk: Bytes) -> Result<()> {
        while !chunk.is_empty() {
            if self.buf.capacity() == 0 {
                let want = match self.left {
                    Some(left) if left > 0 => {
                        usize::try_from(left).map_or(WRITE_BATCH, |left| left.min(WRITE_BATCH))
                    }
                    _ => WRITE_BATCH,
                };
                self.buf = BytesMut::with_capacity(want);
            }
            let room = self.buf.capacity() - self.buf.len();
            let piece = chunk.split_to(room.min(chunk.len()));
            self.buf.extend_from_slice(&piece);
            self.left = self
                .left
                .map(|left| left.saturating_sub(piece.len() as u64));
            if self.buf.len() == self.buf.capacity() {
                self.flush(writer).await?;
            }
        }
        Ok(())
    }

    /// Writes what is gathered; the next piece starts a new buffer. A
    /// short last batch (a body that declared no length) is copied into
    /// a buffer of its size rather than keeping a whole batch's.
    async fn flush(&mut self, writer: &mut dyn BlobWriter) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let gathered = std::mem::take(&mut self.buf);
        let bytes = if gathered.len() == gathered.capacity() {
            gathered.freeze()
        } else {
            Bytes::copy_from_slice(&gathered)
        };
        writer.write(bytes).await
    }
}

/// The body, failing with a 413 `SIZE_INVALID` once an upload holding
/// `held` bytes would grow past the maximum blob size (at once when the
/// request declares as much).
fn capped(ctx: &Ctx<'_>, body: BlobStream, held: u64, declared: Option<u64>) -> Result<BlobStream> {
    let Some(max) = ctx.options.limits.max_blob_size else {
        return Ok(body);
    };
    let too_large = move || {
        Error::new(
            ErrorCode::SizeInvalid,
            format!("blobs are limited to {max} bytes"),
        )
        .with_status(413)
    };
    if declared.is_some_and(|n| held.saturating_add(n) > max) {
        return Err(too_large());
    }
    let mut size = held;
    Ok(body
        .map(move |chunk| {
            let chunk = chunk?;
            size += chunk.len() as u64;
            if size > max {
                Err(too_large())
            } else {
                Ok(chunk)
            }
        })
        .boxed())
}

fn length_mismatch(expected: Option<u64>, received: u64) -> Error {
    Error::new(
        ErrorCode::RangeInvalid,
        format!(
            "the body carried {received} bytes or more, Content-Range declared {}",
            expected.unwrap_or_default()
        ),
    )
}

/// An upload's progress headers: Location, Range, Docker-Upload-UUID.
fn progress(status: StatusCode, repo: &RepoName, writer: &dyn BlobWriter) -> Reply {
    Reply::new(status)
        .header(LOCATION, &upload_location(repo, writer.id()))
        .header(RANGE, &wire::upload_range(writer.size()))
        .header(wire::DOCKER_UPLOAD_UUID, writer.id())
}

/// A failed chunk's error with the progress headers a client resumes from.
fn with_progress(failure: Failure, repo: &RepoName, writer: &dyn BlobWriter) -> Failure {
    failure
        .with_header(LOCATION, &upload_location(repo, writer.id()))
        .with_header(RANGE, &wire::upload_range(writer.size()))
        .with_header(wire::DOCKER_UPLOAD_UUID, writer.id())
}

/// Closes a writer after a failure, keeping the upload resumable.
async fn close(writer: Box<dyn BlobWriter>) {
    let id = writer.id().to_owned();
    if let Err(e) = writer.close().await {
        tracing::warn!(upload = %id, error = %e, "closing an upload after a failed request");
    }
}

/// 201 for a blob that now exists in `repo`.
fn created(repo: &RepoName, digest: &Digest) -> Answer {
    Reply::new(StatusCode::CREATED)
        .header(LOCATION, &blob_location(repo, digest))
        .header(wire::DOCKER_CONTENT_DIGEST, &digest.to_string())
        .done()
}
