//! The referrers tag schema, for registries without the referrers API:
//! the index tagged `<alg>-<hex>` of a subject lists its referrers, and the
//! client that pushes or deletes a referrer keeps it up to date.
//!
//! An update reads the index, changes it and writes it back, so two updates
//! that interleave lose one of the changes. A client serialises its own
//! updates per subject (pushing a subject's signatures and attestations in
//! parallel keeps every entry); registries that need the fallback predate
//! conditional manifest writes, so updates from different processes can
//! still race, as the spec acknowledges.

use oci_core::media::OCI_INDEX;
use oci_core::{
    Descriptor, Digest, Error, ErrorCode, ImageIndex, Manifest, ParsedManifest, RepoName, Result,
    Tag,
};

use crate::client::Client;
use crate::error::ClientError;

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

    /// Stores `index` under the subject's fallback tag. A registry that
    /// checks an index's entries (distribution does) refuses it if one was
    /// deleted without the tag being updated; such entries are dropped and
    /// the write tried once more.
    async fn put_fallback_index(
        &self,
        repo: &RepoName,
        subject: &Digest,
        index: &ImageIndex,
    ) -> Result<()> {
        match self.put_index_under_tag(repo, subject, index).await {
            Err(e) if e.is(ErrorCode::ManifestBlobUnknown) => {
                let mut pruned = index.clone();
                pruned.manifests.clear();
                for entry in &index.manifests {
                    let digest = entry.digest.to_string();
                    match self.head_manifest(repo, &digest, Some(&entry.digest)).await {
                        Ok(_) => pruned.manifests.push(entry.clone()),
                        Err(gone) if gone.is_not_found() => {
                            tracing::debug!(%repo, %subject, referrer = %entry.digest, "dropping a deleted referrer from the referrers tag");
                        }
                        Err(other) => return Err(other),
                    }
                }
                if pruned.manifests.len() == index.manifests.len() {
                    return Err(e);
                }
                self.put_index_under_tag(repo, subject, &pruned).await
            }
            other => other,
        }
    }

    async fn put_index_under_tag(
        &self,
        repo: &RepoName,
        subject: &Digest,
        index: &ImageIndex,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(index).map_err(|source| ClientError::Encode {
            what: "encoding a referrers index",
            source,
        })?;
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
        let _serialised = self
            .inner
            .state
            .fallback_locks
            .of(repo, subject)
            .lock()
            .await;
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

    /// Removes `referrer` from the fallback index of `subject`; the entry
    /// taken out, if it was listed.
    pub(crate) async fn remove_fallback_referrer(
        &self,
        repo: &RepoName,
        subject: &Digest,
        referrer: &Digest,
    ) -> Result<Option<Descriptor>> {
        let _serialised = self
            .inner
            .state
            .fallback_locks
            .of(repo, subject)
            .lock()
            .await;
        let Some(mut index) = self.fallback_index(repo, subject).await? else {
            return Ok(None);
        };
        let Some(at) = index.manifests.iter().position(|d| &d.digest == referrer) else {
            return Ok(None);
        };
        let entry = index.manifests.remove(at);
        index.manifests.retain(|d| &d.digest != referrer);
        self.put_fallback_index(repo, subject, &index).await?;
        Ok(Some(entry))
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
