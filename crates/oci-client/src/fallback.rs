//! The referrers tag schema, for registries without the referrers API:
//! the index tagged `<alg>-<hex>` of a subject lists its referrers, and the
//! client that pushes or deletes a referrer keeps it up to date.

use oci_core::media::OCI_INDEX;
use oci_core::{
    Descriptor, Digest, Error, ErrorCode, ImageIndex, Manifest, ParsedManifest, RepoName, Result,
    Tag,
};

use crate::client::Client;

impl Client {
    /// The fallback index of `subject`, or `None` if there is none.
    pub(crate) async fn fallback_index(
        &self,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<Option<ImageIndex>> {
        let tag = Tag::referrers_fallback(subject);
        let manifest = match self.fetch_manifest(repo, tag.as_str(), None).await {
            Ok(m) => m,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        match manifest.parse()? {
            ParsedManifest::Index(index) => Ok(Some(index)),
            ParsedManifest::Image(_) => Err(Error::new(
                ErrorCode::ManifestInvalid,
                format!("referrers tag {tag} is not an index"),
            )),
        }
    }

    async fn put_fallback_index(
        &self,
        repo: &RepoName,
        subject: &Digest,
        index: &ImageIndex,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(index)
            .map_err(|e| Error::internal(format!("encoding a referrers index: {e}")))?;
        let manifest = Manifest::new(OCI_INDEX, bytes);
        self.put_manifest_bytes(repo, &manifest, &[Tag::referrers_fallback(subject)])
            .await
            .map(|_| ())
    }

    /// Adds `referrer` to the fallback index of `subject`.
    pub(crate) async fn add_fallback_referrer(
        &self,
        repo: &RepoName,
        subject: &Digest,
        referrer: Descriptor,
    ) -> Result<()> {
        let mut index = self
            .fallback_index(repo, subject)
            .await?
            .unwrap_or_else(ImageIndex::empty);
        if index.manifests.iter().any(|d| d.digest == referrer.digest) {
            return Ok(());
        }
        tracing::debug!(%repo, %subject, referrer = %referrer.digest, "updating the referrers tag");
        index.manifests.push(referrer);
        self.put_fallback_index(repo, subject, &index).await
    }

    /// Removes `referrer` from the fallback index of `subject`, if listed.
    pub(crate) async fn remove_fallback_referrer(
        &self,
        repo: &RepoName,
        subject: &Digest,
        referrer: &Digest,
    ) -> Result<()> {
        let Some(mut index) = self.fallback_index(repo, subject).await? else {
            return Ok(());
        };
        let before = index.manifests.len();
        index.manifests.retain(|d| &d.digest != referrer);
        if index.manifests.len() == before {
            return Ok(());
        }
        self.put_fallback_index(repo, subject, &index).await
    }

    /// The subject a stored manifest refers to, if it can be read and has one.
    pub(crate) async fn subject_of(&self, repo: &RepoName, digest: &Digest) -> Option<Digest> {
        let m = self
            .fetch_manifest(repo, &digest.to_string(), Some(digest))
            .await
            .ok()?;
        let parsed = m.parse().ok()?;
        parsed.subject().map(|s| s.digest.clone())
    }
}
