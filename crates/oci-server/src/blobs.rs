//! Blob endpoints: HEAD, GET (whole or one byte range) and DELETE of
//! `/v2/<name>/blobs/<digest>`.

use http::StatusCode;
use http::header::{ACCEPT_RANGES, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use oci_core::{BlobReader, Digest, Error, ErrorCode, RepoName, media, wire};

use crate::body;
use crate::ctx::Ctx;
use crate::response::{Answer, Failure, Reply};

/// HEAD or GET of a blob; a `Range` header on a GET asks for one range
/// (one of another unit, or several ranges, is ignored).
pub(crate) async fn get(ctx: &Ctx<'_>, repo: &RepoName, digest: &Digest, head: bool) -> Answer {
    let range = ctx.headers.get(RANGE).filter(|_| !head);
    let request = match range.map(|r| r.to_str().ok().map(wire::parse_range)) {
        None | Some(Some(Ok(None))) => None,
        Some(Some(Ok(Some(request)))) => Some(request),
        Some(Some(Err(e))) => return Err(unsatisfiable(ctx, repo, digest, e).await),
        Some(None) => {
            let e = Error::new(ErrorCode::RangeInvalid, "the Range header is not ASCII");
            return Err(unsatisfiable(ctx, repo, digest, e).await);
        }
    };
    let Some(request) = request else {
        if head {
            let desc = ctx.registry.resolve_blob(repo, digest).await?;
            return blob_reply(StatusCode::OK, digest, desc.size).done();
        }
        let reader = ctx.registry.get_blob(repo, digest).await?;
        return whole(reader, digest);
    };
    match ctx.registry.get_blob_range(repo, digest, request).await {
        Ok(reader) => match reader.range {
            Some(r) => blob_reply(StatusCode::PARTIAL_CONTENT, digest, r.len())
                .header(
                    CONTENT_RANGE,
                    &format!("bytes {}-{}/{}", r.start, r.end, reader.descriptor.size),
                )
                .body(body::streamed(reader.stream))
                .done(),
            None => whole(reader, digest),
        },
        Err(e) if e.is(ErrorCode::RangeInvalid) => Err(unsatisfiable(ctx, repo, digest, e).await),
        // A store without ranged reads: the spec lets a server ignore Range.
        Err(e) if e.is(ErrorCode::Unsupported) => {
            let reader = ctx.registry.get_blob(repo, digest).await?;
            whole(reader, digest)
        }
        Err(e) => Err(e.into()),
    }
}

/// DELETE of a blob: 202.
pub(crate) async fn delete(ctx: &Ctx<'_>, repo: &RepoName, digest: &Digest) -> Answer {
    ctx.registry.delete_blob(repo, digest).await?;
    Reply::new(StatusCode::ACCEPTED).done()
}

/// The 200 answer streaming a whole blob.
fn whole(reader: BlobReader, digest: &Digest) -> Answer {
    blob_reply(StatusCode::OK, digest, reader.descriptor.size)
        .body(body::streamed(reader.stream))
        .done()
}

/// The headers every blob answer has.
fn blob_reply(status: StatusCode, digest: &Digest, length: u64) -> Reply {
    Reply::new(status)
        .header(CONTENT_TYPE, media::OCTET_STREAM)
        .header(wire::DOCKER_CONTENT_DIGEST, &digest.to_string())
        .header(ACCEPT_RANGES, "bytes")
        .content_length(length)
}

/// A 416 for a range that is malformed or outside the blob, with the
/// blob's size in `Content-Range: bytes */size`. A blob that does not
/// exist is a 404 instead.
async fn unsatisfiable(ctx: &Ctx<'_>, repo: &RepoName, digest: &Digest, err: Error) -> Failure {
    match ctx.registry.resolve_blob(repo, digest).await {
        Ok(desc) => {
            Failure::from(err).with_header(CONTENT_RANGE, &format!("bytes */{}", desc.size))
        }
        Err(missing) => missing.into(),
    }
}
