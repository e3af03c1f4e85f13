//! Manifests: GET and HEAD with the accepted media types, digest checks on
//! what comes back, PUT per tag, DELETE.

use http::{Method, Uri};
use oci_core::manifest::MAX_MANIFEST_SIZE;
use oci_core::media::{self, MANIFEST_TYPES};
use oci_core::wire::{DOCKER_CONTENT_DIGEST, OCI_SUBJECT};
use oci_core::{Descriptor, Digest, Error, ErrorCode, Manifest, RepoName, Result, Tag};

use crate::auth::token::Scope;
use crate::client::{Call, Client};
use crate::transport::{Payload, Response};

/// The `Accept` header of manifest requests.
fn accept() -> String {
    MANIFEST_TYPES.join(", ")
}

/// The digest a response claims in `Docker-Content-Digest`, if valid.
pub(crate) fn claimed_digest(res: &Response) -> Result<Option<Digest>> {
    match res.header(DOCKER_CONTENT_DIGEST) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|e: Error| {
            Error::new(
                ErrorCode::DigestInvalid,
                format!(
                    "registry sent an invalid Docker-Content-Digest {v:?}: {}",
                    e.message()
                ),
            )
        }),
    }
}

/// Fails when the registry names a different digest (same algorithm) than asked for.
fn check_same(asked: &Digest, claimed: Option<&Digest>) -> Result<()> {
    match claimed {
        Some(c) if c.algorithm() == asked.algorithm() && c != asked => Err(Error::new(
            ErrorCode::DigestInvalid,
            format!("asked for {asked}, the registry answered with {c}"),
        )),
        _ => Ok(()),
    }
}

impl Client {
    fn manifest_url(&self, repo: &RepoName, reference: &str) -> Result<Uri> {
        self.url(&format!("/v2/{repo}/manifests/{reference}"), &[])
    }

    /// A GET or HEAD of a manifest accepting every manifest type; an error
    /// status becomes the spec error (`MANIFEST_UNKNOWN` for a bare 404).
    async fn read_manifest(
        &self,
        method: Method,
        repo: &RepoName,
        reference: &str,
    ) -> Result<Response> {
        let call = Call::new(
            method,
            self.manifest_url(repo, reference)?,
            Scope::pull(repo),
        )
        .header(http::header::ACCEPT, &accept());
        let res = self.execute(call).await?;
        if !res.status.is_success() {
            return Err(res.into_error(ErrorCode::ManifestUnknown).await);
        }
        Ok(res)
    }

    /// GETs a manifest by tag or digest and checks its bytes: against the
    /// digest asked for, or (by tag) against `Docker-Content-Digest`.
    pub(crate) async fn fetch_manifest(
        &self,
        repo: &RepoName,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<Manifest> {
        let res = self.read_manifest(Method::GET, repo, reference).await?;
        let content_type = res.header("content-type").map(media::essence);
        let claimed = claimed_digest(&res)?;
        let bytes = res.bytes_limited(MAX_MANIFEST_SIZE).await.map_err(|e| {
            Error::new(
                ErrorCode::SizeInvalid,
                format!("manifest {repo}:{reference}: {}", e.message()),
            )
        })?;
        let digest = match expected {
            Some(d) => {
                check_same(d, claimed.as_ref())?;
                d.clone()
            }
            None => claimed.unwrap_or_else(|| Digest::sha256(&bytes)),
        };
        let media_type = match content_type {
            Some(ct) if media::manifest_kind(&ct).is_some() => ct,
            Some(ct)
                if media::is_valid_media_type(&ct)
                    && ct != "application/json"
                    && ct != media::OCTET_STREAM
                    && ct != "text/plain" =>
            {
                ct
            }
            _ => Manifest::from_json(bytes.clone())?.media_type().to_owned(),
        };
        Manifest::with_digest(media_type, bytes, digest).map_err(|e| {
            Error::new(
                ErrorCode::DigestInvalid,
                format!(
                    "manifest {repo}:{reference} failed verification: {}",
                    e.message()
                ),
            )
        })
    }

    /// HEADs a manifest for its descriptor; falls back to GET when the
    /// registry does not say the digest or size.
    pub(crate) async fn head_manifest(
        &self,
        repo: &RepoName,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<Descriptor> {
        let res = self.read_manifest(Method::HEAD, repo, reference).await?;
        let claimed = claimed_digest(&res)?;
        if let Some(d) = expected {
            check_same(d, claimed.as_ref())?;
        }
        let digest = expected.cloned().or(claimed);
        let media_type = res
            .header("content-type")
            .map(media::essence)
            .filter(|ct| media::is_valid_media_type(ct) && ct != "application/json");
        match (digest, res.content_length(), media_type) {
            (Some(digest), Some(size), Some(mt)) if size > 0 => {
                Ok(Descriptor::new(mt, digest, size))
            }
            _ => {
                tracing::debug!(%repo, reference, "HEAD lacked digest, size or type; using GET");
                let m = self.fetch_manifest(repo, reference, expected).await?;
                Ok(m.descriptor)
            }
        }
    }

    /// PUTs a manifest once per tag (by digest when there are none) and
    /// checks the digest the registry computed.
    pub(crate) async fn put_manifest(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<Descriptor> {
        let subject_recorded = self.put_manifest_bytes(repo, manifest, tags).await?;
        if !subject_recorded
            && let Ok(parsed) = manifest.parse()
            && let Some(subject) = parsed.subject()
        {
            // The registry did not take note of the subject: keep the
            // referrers tag schema's index instead.
            let referrer = parsed.referrer_descriptor(&manifest.descriptor);
            self.add_fallback_referrer(repo, &subject.digest, referrer)
                .await?;
        }
        Ok(manifest.descriptor.clone())
    }

    /// The PUTs themselves; whether the registry said it recorded a subject.
    pub(crate) async fn put_manifest_bytes(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        tags: &[Tag],
    ) -> Result<bool> {
        let digest = manifest.digest().to_string();
        let references: Vec<&str> = if tags.is_empty() {
            vec![digest.as_str()]
        } else {
            tags.iter().map(Tag::as_str).collect()
        };
        let mut subject_recorded = false;
        for reference in references {
            let call = Call::new(
                Method::PUT,
                self.manifest_url(repo, reference)?,
                Scope::push(repo),
            )
            .header(http::header::CONTENT_TYPE, manifest.media_type())
            .body(Payload::Bytes(manifest.bytes.clone()));
            let res = self.execute(call).await?;
            if !res.status.is_success() {
                return Err(res.into_error(ErrorCode::NameUnknown).await);
            }
            subject_recorded |= res.header(OCI_SUBJECT).is_some();
            check_same(manifest.digest(), claimed_digest(&res)?.as_ref()).map_err(|e| {
                Error::new(
                    ErrorCode::DigestInvalid,
                    format!("pushing {repo}:{reference}: {}", e.message()),
                )
            })?;
        }
        Ok(subject_recorded)
    }

    /// DELETEs a manifest by digest, taking it out of its subject's
    /// referrers tag first if it is listed there: an index must not list a
    /// manifest that is gone (distribution refuses to store one, which
    /// concurrent deletes would otherwise write). If the DELETE fails, the
    /// entry is put back.
    pub(crate) async fn remove_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let subject = self.subject_of(repo, digest).await;
        let unlisted = match &subject {
            Some(subject) => self.remove_fallback_referrer(repo, subject, digest).await?,
            None => None,
        };
        let deleted = self.delete_manifest_ref(repo, &digest.to_string()).await;
        if deleted.is_err()
            && let (Some(subject), Some(entry)) = (subject, unlisted)
            && let Err(e) = self.add_fallback_referrer(repo, &subject, entry).await
        {
            tracing::warn!(%repo, %digest, error = %e, "could not list a referrer again after its delete failed");
        }
        deleted
    }

    /// DELETEs a tag. Registries that only delete by digest (distribution
    /// answers `DIGEST_INVALID`) yield `UNSUPPORTED`.
    pub(crate) async fn remove_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        match self.delete_manifest_ref(repo, tag.as_str()).await {
            Err(e) if e.is(ErrorCode::DigestInvalid) || e.status() == 405 => Err(Error::new(
                ErrorCode::Unsupported,
                format!("the registry cannot delete tags ({e})"),
            )),
            other => other,
        }
    }

    /// DELETEs a manifest by digest, or a tag.
    async fn delete_manifest_ref(&self, repo: &RepoName, reference: &str) -> Result<()> {
        let call = Call::new(
            Method::DELETE,
            self.manifest_url(repo, reference)?,
            Scope::delete(repo),
        );
        let res = self.execute(call).await?;
        if res.status.is_success() {
            Ok(())
        } else {
            Err(res.into_error(ErrorCode::ManifestUnknown).await)
        }
    }
}
