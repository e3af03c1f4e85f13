//! Chunked uploads: PATCH chunks with `Content-Range` (at least the
//! registry's `OCI-Chunk-Min-Length`, buffering at most one chunk), commit
//! with a PUT carrying the digest, resume from the registry's `Range`.
//!
//! The upload id carries the session's current `Location` URL, in base64url
//! without padding so that it holds only unreserved characters (see
//! [`oci_core::upload_id`]): a server that forwards it in its own `Location`
//! must not see it mangled by clients that decode URLs. For this client's
//! registry only the part after `/v2/<name>/blobs/uploads/` is encoded. The
//! id changes as chunks are written (distribution signs its state into the
//! URL), so resume with the id the writer reported last. A bare uuid is
//! accepted too, for registries that keep no state in the URL, and so is a
//! plain URL (the form ids had before).
//!
//! A registry's upload `Range: 0-0` means both "nothing yet" and "one
//! byte" (distribution writes it for either). Resuming, the client takes it
//! as nothing, unless it closed that very session itself at one byte: it
//! remembers where it left the sessions it closed, which is what a server
//! that resumes a client's upload for every request (a proxy) relies on.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode, Uri};
use oci_core::media::OCTET_STREAM;
use oci_core::wire::parse_upload_range;
use oci_core::{BlobWriter, Descriptor, Digest, Error, ErrorCode, RepoName, Result};

use crate::auth::token::Scope;
use crate::client::{Call, Client};
use crate::transport::{Payload, Response};
use crate::uploads::{Session, chunk_min, location, with_query};

/// A chunked upload to a remote registry.
pub(crate) struct ChunkedWriter {
    client: Client,
    repo: RepoName,
    location: Uri,
    id: String,
    /// Bytes the registry has acknowledged.
    offset: u64,
    /// Bytes written but not yet sent (less than one chunk).
    buffer: BytesMut,
    chunk_min: Option<u64>,
}

impl ChunkedWriter {
    /// A writer for a fresh session.
    pub(crate) fn new(client: Client, repo: RepoName, session: Session) -> ChunkedWriter {
        ChunkedWriter::at(client, repo, session.location, 0, session.chunk_min)
    }

    fn at(
        client: Client,
        repo: RepoName,
        location: Uri,
        offset: u64,
        chunk_min: Option<u64>,
    ) -> ChunkedWriter {
        ChunkedWriter {
            id: id_of(&client, &repo, &location),
            client,
            repo,
            location,
            offset,
            buffer: BytesMut::new(),
            chunk_min,
        }
    }

    /// Reopens the upload `id` (one this client handed out, a Location URL
    /// or a uuid) where the registry says it stands.
    pub(crate) async fn resume(client: Client, repo: RepoName, id: &str) -> Result<ChunkedWriter> {
        let uploads = uploads_path(&repo);
        let url = if let Some(decoded) = decode_id(id) {
            if decoded.starts_with('/') || decoded.contains("://") {
                let base = client.url("/v2/", &[])?;
                client.resolve(&base, &decoded)?
            } else {
                client.url(&format!("{uploads}{decoded}"), &[])?
            }
        } else if id.starts_with('/') || id.contains("://") {
            let base = client.url("/v2/", &[])?;
            client.resolve(&base, id)?
        } else {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(unknown_upload(id));
            }
            client.url(&format!("{uploads}{id}"), &[])?
        };
        // One path segment after the uploads path, never one that climbs
        // out of it.
        let session = url.path().strip_prefix(uploads.as_str());
        let one_segment =
            session.is_some_and(|s| !s.is_empty() && !s.contains('/') && s != "." && s != "..");
        if !client.is_own(&url) || !one_segment {
            return Err(unknown_upload(id));
        }
        let call = Call::new(Method::GET, url.clone(), Scope::push(&repo));
        let res = client.execute(call).await?;
        if !res.status.is_success() {
            let err = res.into_error(ErrorCode::BlobUploadUnknown).await;
            if err.is(ErrorCode::BlobUploadInvalid) {
                return Err(Error::new(ErrorCode::BlobUploadUnknown, err.message()));
            }
            return Err(err);
        }
        let remembered = client.inner.state.upload_offsets.take(id);
        let offset = match (res.header("range"), remembered) {
            // Ambiguous: nothing, or one byte. Only this client can know.
            (Some("0-0"), Some(known)) if known <= 1 => known,
            (Some("0-0"), _) | (None, _) => 0,
            _ => acknowledged(&res)?,
        };
        let location = match res.header("location") {
            Some(_) => location(&client, &res)?,
            None => url,
        };
        let min = chunk_min(&res);
        Ok(ChunkedWriter::at(client, repo, location, offset, min))
    }

    /// Sends `chunk` as the next PATCH and records the registry's answer.
    async fn send(&mut self, chunk: Bytes) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let end = self.offset + chunk.len() as u64 - 1;
        let call = Call::new(
            Method::PATCH,
            self.location.clone(),
            Scope::push(&self.repo),
        )
        .header(http::header::CONTENT_TYPE, OCTET_STREAM)
        .header(
            http::header::CONTENT_RANGE,
            &format!("{}-{end}", self.offset),
        )
        .body(Payload::Bytes(chunk));
        let res = self.client.execute(call).await?;
        if res.status != StatusCode::ACCEPTED && res.status != StatusCode::NO_CONTENT {
            return Err(res.into_error(ErrorCode::BlobUploadUnknown).await);
        }
        let acked = acknowledged(&res)?;
        if res.header("location").is_some() {
            self.location = location(&self.client, &res)?;
            self.id = id_of(&self.client, &self.repo, &self.location);
        }
        if acked != end + 1 {
            return Err(Error::new(
                ErrorCode::BlobUploadInvalid,
                format!("registry holds {acked} bytes of the upload after a chunk ending at {end}"),
            ));
        }
        self.offset = acked;
        Ok(())
    }
}

/// `/v2/<repo>/blobs/uploads/`: where the sessions of `repo` live.
fn uploads_path(repo: &RepoName) -> String {
    format!("/v2/{repo}/blobs/uploads/")
}

/// The upload id of a session at `location`: base64url (no padding) of the
/// path and query after `/v2/<repo>/blobs/uploads/` when the session is on
/// this client's registry, else of the whole URL.
fn id_of(client: &Client, repo: &RepoName, location: &Uri) -> String {
    let whole = location.to_string();
    let tail = location
        .path_and_query()
        .and_then(|pq| pq.as_str().strip_prefix(&uploads_path(repo)))
        .filter(|tail| client.is_own(location) && !tail.is_empty());
    URL_SAFE_NO_PAD.encode(tail.unwrap_or(&whole))
}

/// What an id [`id_of`] made holds: a URL, or the part of one after the
/// uploads path. `None` for anything else (a bare uuid, a plain URL).
fn decode_id(id: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
    // Every URL byte is printable ASCII; a uuid that happens to decode as
    // base64 practically never gives only such bytes.
    if bytes.is_empty() || !bytes.iter().all(|b| (0x21..0x7f).contains(b)) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// The bytes the registry holds according to an upload response's `Range`.
fn acknowledged(res: &Response) -> Result<u64> {
    match res.header("range") {
        Some(r) => parse_upload_range(r).map_err(|e| {
            Error::new(
                ErrorCode::BlobUploadInvalid,
                format!("registry sent a bad upload Range: {}", e.message()),
            )
        }),
        None => Err(Error::new(
            ErrorCode::BlobUploadInvalid,
            "registry sent no Range for the upload",
        )),
    }
}

fn unknown_upload(id: &str) -> Error {
    Error::new(
        ErrorCode::BlobUploadUnknown,
        format!("{id:?} is not an upload of this registry and repository"),
    )
}

#[async_trait]
impl BlobWriter for ChunkedWriter {
    fn id(&self) -> &str {
        &self.id
    }

    fn size(&self) -> u64 {
        self.offset + self.buffer.len() as u64
    }

    fn chunk_min(&self) -> Option<u64> {
        self.chunk_min
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        match self.chunk_min {
            None => self.send(data).await,
            Some(min) => {
                if self.buffer.is_empty() && data.len() as u64 >= min {
                    return self.send(data).await;
                }
                self.buffer.extend_from_slice(&data);
                if self.buffer.len() as u64 >= min {
                    let chunk = self.buffer.split().freeze();
                    self.send(chunk).await?;
                }
                Ok(())
            }
        }
    }

    async fn commit(self: Box<Self>, digest: &Digest) -> Result<Descriptor> {
        let size = self.size();
        let url = with_query(&self.location, "digest", &digest.to_string())?;
        let rest = self.buffer.freeze();
        let call = Call::new(Method::PUT, url, Scope::push(&self.repo))
            .header(http::header::CONTENT_TYPE, OCTET_STREAM)
            .body(Payload::Bytes(rest));
        let res = self.client.execute(call).await?;
        if !res.status.is_success() {
            return Err(res.into_error(ErrorCode::BlobUploadUnknown).await);
        }
        self.client
            .check_committed(&self.repo, digest, &res, Some(size))
            .await
    }

    async fn cancel(self: Box<Self>) -> Result<()> {
        self.client.delete_upload(&self.repo, &self.location).await
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        let rest = self.buffer.split().freeze();
        self.send(rest).await?;
        self.client
            .inner
            .state
            .upload_offsets
            .remember(&self.id, self.offset);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_ids_decode_and_bare_ids_do_not() {
        let tail = "f8f4ca43-15bb-4315-b2b4-65fe68b618a3?_state=kW_8D%3D";
        let id = URL_SAFE_NO_PAD.encode(tail);
        assert!(oci_core::upload_id::is_valid(&id), "{id}");
        assert_eq!(decode_id(&id).as_deref(), Some(tail));
        for bare in [
            "f8f4ca43-15bb-4315-b2b4-65fe68b618a3",
            "0123456789abcdef0123456789abcdef",
            "u1",
        ] {
            assert_eq!(decode_id(bare), None, "{bare}");
        }
    }
}
