//! Blob reads: HEAD for the descriptor, GET for a stream verified against
//! digest and size, ranged GETs (206, or a 200 cut to the range), DELETE.

use futures::StreamExt;
use futures::stream;
use http::{Method, StatusCode, Uri};
use oci_core::media::OCTET_STREAM;
use oci_core::registry::slice_stream;
use oci_core::wire::parse_content_range;
use oci_core::{
    BlobReader, BlobStream, ByteRange, Descriptor, Digest, Error, ErrorCode, RangeRequest,
    RepoName, Result, VerifyStream,
};

use crate::auth::token::Scope;
use crate::client::{Call, Client};
use crate::resume::{Resumable, resuming};

impl Client {
    fn blob_url(&self, repo: &RepoName, digest: &Digest) -> Result<Uri> {
        self.url(&format!("/v2/{repo}/blobs/{digest}"), &[])
    }

    /// HEADs a blob for its descriptor.
    pub(crate) async fn head_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Descriptor> {
        let call = Call::new(
            Method::HEAD,
            self.blob_url(repo, digest)?,
            Scope::pull(repo),
        )
        .follow_redirects();
        let res = self.execute(call).await?;
        if !res.status.is_success() {
            return Err(res.into_error(ErrorCode::BlobUnknown).await);
        }
        let size = res.content_length().ok_or_else(|| {
            Error::new(
                ErrorCode::SizeInvalid,
                format!("registry sent no Content-Length for blob {digest}"),
            )
        })?;
        Ok(Descriptor::new(OCTET_STREAM, digest.clone(), size))
    }

    /// GETs a whole blob; the stream fails at its end unless the bytes
    /// match the digest and size (unless `verify_blob_reads` is off: then
    /// only the size is bounded, by the resumable read).
    pub(crate) async fn read_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobReader> {
        let url = self.blob_url(repo, digest)?;
        let scope = Scope::pull(repo);
        let call = Call::new(Method::GET, url.clone(), scope.clone()).follow_redirects();
        let res = self.execute(call).await?;
        if !res.status.is_success() {
            return Err(res.into_error(ErrorCode::BlobUnknown).await);
        }
        let size = match res.content_length() {
            Some(n) => n,
            None => self.head_blob(repo, digest).await?.size,
        };
        let body = if size == 0 {
            res.into_stream()
        } else {
            let what = Resumable {
                client: self.clone(),
                url,
                scope,
                offset: 0,
                end: size - 1,
            };
            resuming(what, res.into_stream())
        };
        let stream = if self.inner.verify_blob_reads {
            VerifyStream::new(body, digest.clone(), Some(size)).boxed()
        } else {
            body.boxed()
        };
        Ok(BlobReader {
            descriptor: Descriptor::new(OCTET_STREAM, digest.clone(), size),
            range: None,
            stream,
        })
    }

    /// GETs part of a blob. A registry that ignores `Range` answers 200 with
    /// the whole blob, which is then cut to the range.
    pub(crate) async fn read_blob_range(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: RangeRequest,
    ) -> Result<BlobReader> {
        let url = self.blob_url(repo, digest)?;
        let scope = Scope::pull(repo);
        let call = Call::new(Method::GET, url.clone(), scope.clone())
            .header(http::header::RANGE, &range.to_string())
            .follow_redirects();
        let res = self.execute(call).await?;
        let what = |offset, end| Resumable {
            client: self.clone(),
            url: url.clone(),
            scope: scope.clone(),
            offset,
            end,
        };
        match res.status {
            StatusCode::PARTIAL_CONTENT => {
                let header = res.header("content-range").ok_or_else(|| {
                    Error::new(ErrorCode::RangeInvalid, "206 without a Content-Range")
                })?;
                let (start, end, total) = parse_content_range(header)?;
                let size = match total {
                    Some(t) => t,
                    None => self.head_blob(repo, digest).await?.size,
                };
                let expected = range.resolve(size)?;
                if start != expected.start || end > expected.end {
                    return Err(Error::new(
                        ErrorCode::RangeInvalid,
                        format!("asked for {range}, the registry sent bytes {start}-{end}/{size}"),
                    ));
                }
                let got = ByteRange { start, end };
                let body = resuming(what(start, end), res.into_stream());
                Ok(BlobReader {
                    descriptor: Descriptor::new(OCTET_STREAM, digest.clone(), size),
                    range: Some(got),
                    stream: exact_len(body, got.len()),
                })
            }
            status if status.is_success() => {
                let size = match res.content_length() {
                    Some(n) => n,
                    None => self.head_blob(repo, digest).await?.size,
                };
                let got = range.resolve(size)?;
                tracing::debug!(%repo, %digest, "registry ignored Range; cutting the full body");
                let body = resuming(what(0, size.saturating_sub(1)), res.into_stream());
                Ok(BlobReader {
                    descriptor: Descriptor::new(OCTET_STREAM, digest.clone(), size),
                    range: Some(got),
                    stream: exact_len(slice_stream(body, got), got.len()),
                })
            }
            _ => Err(res.into_error(ErrorCode::BlobUnknown).await),
        }
    }

    /// DELETEs a blob.
    pub(crate) async fn remove_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let call = Call::new(
            Method::DELETE,
            self.blob_url(repo, digest)?,
            Scope::delete(repo),
        );
        let res = self.execute(call).await?;
        if res.status.is_success() {
            Ok(())
        } else {
            Err(res.into_error(ErrorCode::BlobUnknown).await)
        }
    }
}

/// Fails unless the stream carries exactly `expected` bytes.
fn exact_len(body: BlobStream, expected: u64) -> BlobStream {
    stream::unfold(
        (body, 0u64, false),
        move |(mut body, seen, done)| async move {
            if done {
                return None;
            }
            match body.next().await {
                Some(Ok(chunk)) => {
                    let seen = seen + chunk.len() as u64;
                    if seen > expected {
                        let err = Error::new(
                            ErrorCode::SizeInvalid,
                            format!("range body is longer than the {expected} bytes announced"),
                        );
                        return Some((Err(err), (body, seen, true)));
                    }
                    Some((Ok(chunk), (body, seen, false)))
                }
                Some(Err(e)) => Some((Err(e), (body, seen, true))),
                None if seen != expected => {
                    let err = Error::new(
                        ErrorCode::SizeInvalid,
                        format!("range body ended after {seen} of {expected} bytes"),
                    );
                    Some((Err(err), (body, seen, true)))
                }
                None => None,
            }
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use oci_core::registry::bytes_stream;

    async fn collect(s: BlobStream) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn exact_length_is_enforced() {
        let data = Bytes::from_static(b"abcdef");
        assert!(
            collect(exact_len(bytes_stream(data.clone(), 2), 6))
                .await
                .is_ok()
        );
        let short = collect(exact_len(bytes_stream(data.clone(), 2), 7)).await;
        assert!(short.unwrap_err().is(ErrorCode::SizeInvalid));
        let long = collect(exact_len(bytes_stream(data, 2), 5)).await;
        assert!(long.unwrap_err().is(ErrorCode::SizeInvalid));
    }
}
