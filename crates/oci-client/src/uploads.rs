//! Blob pushes: opening an upload session (POST), the monolithic PUT of a
//! streamed body, and cross-repository mounts.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{StreamExt, stream};
use http::{Method, StatusCode, Uri};
use oci_core::media::OCTET_STREAM;
use oci_core::wire::{OCI_CHUNK_MIN_LENGTH, encode_query_value};
use oci_core::{BlobStream, Descriptor, Digest, Error, ErrorCode, RepoName, Result, Verifier};

use crate::auth::token::Scope;
use crate::client::{Call, Client};
use crate::error::ClientError;
use crate::transport::{Payload, Response};

/// An upload session the registry opened.
pub(crate) struct Session {
    /// Where to send the next request (absolute).
    pub(crate) location: Uri,
    /// The smallest chunk the registry accepts (but for the last).
    pub(crate) chunk_min: Option<u64>,
}

/// `url` with `key=value` added to its query.
pub(crate) fn with_query(url: &Uri, key: &str, value: &str) -> Result<Uri> {
    let pq = match url.query() {
        Some(q) if !q.is_empty() => {
            format!("{}?{q}&{key}={}", url.path(), encode_query_value(value))
        }
        _ => format!("{}?{key}={}", url.path(), encode_query_value(value)),
    };
    let mut parts = url.clone().into_parts();
    parts.path_and_query = Some(
        pq.parse()
            .map_err(|e| ClientError::url(format!("invalid upload URL: {e}"), e))?,
    );
    Ok(Uri::from_parts(parts)
        .map_err(|e| ClientError::url(format!("invalid upload URL: {e}"), e))?)
}

/// The `Location` of an upload response, resolved to an absolute URL.
pub(crate) fn location(client: &Client, res: &Response) -> Result<Uri> {
    let loc = res.header("location").ok_or_else(|| {
        Error::new(
            ErrorCode::BlobUploadInvalid,
            format!(
                "registry answered {} without an upload Location",
                res.status
            ),
        )
    })?;
    client.resolve(&res.url, loc)
}

/// `OCI-Chunk-Min-Length`, if the registry sent one.
pub(crate) fn chunk_min(res: &Response) -> Option<u64> {
    res.header(OCI_CHUNK_MIN_LENGTH)
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
}

impl Client {
    fn uploads_url(&self, repo: &RepoName, query: &[(&str, &str)]) -> Result<Uri> {
        self.url(&format!("/v2/{repo}/blobs/uploads/"), query)
    }

    /// Opens an upload session (POST).
    pub(crate) async fn start_upload(&self, repo: &RepoName) -> Result<Session> {
        let call = Call::new(
            Method::POST,
            self.uploads_url(repo, &[])?,
            Scope::push(repo),
        )
        .body(Payload::Empty);
        let res = self.execute(call).await?;
        if res.status != StatusCode::ACCEPTED {
            if res.status.is_success() {
                return Err(Error::new(
                    ErrorCode::BlobUploadInvalid,
                    format!("registry answered {} to an upload start", res.status),
                ));
            }
            return Err(res.into_error(ErrorCode::NameUnknown).await);
        }
        Ok(Session {
            location: location(self, &res)?,
            chunk_min: chunk_min(&res),
        })
    }

    /// Pushes a whole blob: POST for a session, then one PUT with the body.
    pub(crate) async fn upload_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: Option<u64>,
        body: BlobStream,
    ) -> Result<Descriptor> {
        let session = self.start_upload(repo).await?;
        let url = with_query(&session.location, "digest", &digest.to_string())?;
        // Check the body on its way out, so that a wrong size or digest is
        // reported as such rather than as a broken request.
        let failure: Arc<Mutex<Option<Error>>> = Arc::default();
        let body = checked_body(body, Verifier::new(digest.clone(), size), failure.clone());
        let mut call = Call::new(Method::PUT, url, Scope::push(repo))
            .header(http::header::CONTENT_TYPE, OCTET_STREAM)
            .body(Payload::Stream(body));
        if let Some(n) = size {
            call = call.header(http::header::CONTENT_LENGTH, &n.to_string());
        }
        let outcome = self.execute(call).await;
        let local = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(err) = local {
            return Err(err);
        }
        let res = outcome?;
        if !res.status.is_success() {
            return Err(res.into_error(ErrorCode::BlobUploadUnknown).await);
        }
        self.check_committed(repo, digest, &res, size).await
    }

    /// The descriptor of a blob an upload just committed, checking the
    /// digest the registry reports.
    pub(crate) async fn check_committed(
        &self,
        repo: &RepoName,
        digest: &Digest,
        res: &Response,
        size: Option<u64>,
    ) -> Result<Descriptor> {
        if let Some(claimed) = crate::manifests::claimed_digest(res)?
            && claimed.algorithm() == digest.algorithm()
            && &claimed != digest
        {
            return Err(Error::new(
                ErrorCode::DigestInvalid,
                format!("pushed {digest}, the registry stored {claimed}"),
            ));
        }
        match size {
            Some(n) => Ok(Descriptor::new(OCTET_STREAM, digest.clone(), n)),
            None => self.head_blob(repo, digest).await,
        }
    }

    /// Mounts a blob from `from`. A registry that opens an upload instead
    /// (202) has that session cancelled, and the answer is `BLOB_UNKNOWN`
    /// so that callers copy the bytes.
    pub(crate) async fn mount(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Descriptor> {
        let digest_s = digest.to_string();
        let url = self.uploads_url(repo, &[("mount", &digest_s), ("from", from.as_str())])?;
        let call = Call::new(Method::POST, url, Scope::mount(repo, from)).body(Payload::Empty);
        let res = self.execute(call).await?;
        match res.status {
            StatusCode::CREATED => self.check_committed(repo, digest, &res, None).await,
            StatusCode::ACCEPTED => {
                let loc = location(self, &res)?;
                drop(res);
                if let Err(e) = self.delete_upload(repo, &loc).await {
                    tracing::debug!(error = %e, "cancelling the session a mount opened failed");
                }
                Err(Error::new(
                    ErrorCode::BlobUnknown,
                    format!("registry did not mount {digest} from {from} into {repo}"),
                ))
            }
            _ => Err(res.into_error(ErrorCode::BlobUnknown).await),
        }
    }

    /// Cancels an upload session (DELETE).
    pub(crate) async fn delete_upload(&self, repo: &RepoName, location: &Uri) -> Result<()> {
        let call = Call::new(Method::DELETE, location.clone(), Scope::push(repo));
        let res = self.execute(call).await?;
        if res.status.is_success() {
            Ok(())
        } else {
            Err(res.into_error(ErrorCode::BlobUploadUnknown).await)
        }
    }
}

/// `body` checked against `verifier` as it is sent. The last chunk is held
/// back until the stream has ended and verified, so that a body that is
/// too long or hashes wrong fails before the request completes; the
/// failure is also left in `failure` for the caller to report.
fn checked_body(
    body: BlobStream,
    verifier: Verifier,
    failure: Arc<Mutex<Option<Error>>>,
) -> BlobStream {
    let fail = move |e: Error| {
        *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
        e
    };
    let state = (body, Some(verifier), None::<Bytes>);
    stream::unfold(state, move |(mut body, mut verifier, mut held)| {
        let fail = fail.clone();
        async move {
            let v = verifier.as_mut()?;
            loop {
                match body.next().await {
                    Some(Ok(chunk)) => {
                        if let Err(e) = v.update(&chunk) {
                            return Some((Err(fail(e)), (body, None, None)));
                        }
                        if let Some(prev) = held.replace(chunk) {
                            return Some((Ok(prev), (body, verifier, held)));
                        }
                    }
                    Some(Err(e)) => return Some((Err(fail(e)), (body, None, None))),
                    None => {
                        let v = verifier.take()?;
                        if let Err(e) = v.finish() {
                            return Some((Err(fail(e)), (body, None, None)));
                        }
                        return held.take().map(|last| (Ok(last), (body, None, None)));
                    }
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_core::registry::bytes_stream;

    async fn send(
        data: &'static [u8],
        digest: &[u8],
        size: Option<u64>,
    ) -> (Vec<u8>, Option<Error>) {
        let failure: Arc<Mutex<Option<Error>>> = Arc::default();
        let verifier = Verifier::new(Digest::sha256(digest), size);
        let mut s = checked_body(
            bytes_stream(Bytes::from_static(data), 3),
            verifier,
            failure.clone(),
        );
        let mut sent = Vec::new();
        while let Some(item) = s.next().await {
            match item {
                Ok(c) => sent.extend_from_slice(&c),
                Err(_) => break,
            }
        }
        let err = failure.lock().unwrap().take();
        (sent, err)
    }

    #[tokio::test]
    async fn bodies_are_checked_before_their_last_byte_leaves() {
        let (sent, err) = send(b"payload", b"payload", Some(7)).await;
        assert_eq!(sent, b"payload");
        assert!(err.is_none());
        let (sent, err) = send(b"payload", b"payload", Some(6)).await;
        assert!(sent.len() < 6);
        assert!(err.unwrap().is(ErrorCode::SizeInvalid));
        let (sent, err) = send(b"payload", b"other", None).await;
        assert!(sent.len() < 7);
        assert!(err.unwrap().is(ErrorCode::DigestInvalid));
    }

    #[test]
    fn query_is_appended() {
        let u: Uri = "http://h/v2/a/blobs/uploads/u?_state=x%3D".parse().unwrap();
        assert_eq!(
            with_query(&u, "digest", "sha256:ab").unwrap().to_string(),
            "http://h/v2/a/blobs/uploads/u?_state=x%3D&digest=sha256%3Aab"
        );
        let u: Uri = "http://h/v2/a/blobs/uploads/u".parse().unwrap();
        assert_eq!(
            with_query(&u, "digest", "d").unwrap().to_string(),
            "http://h/v2/a/blobs/uploads/u?digest=d"
        );
    }
}
