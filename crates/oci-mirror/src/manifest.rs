//! Manifests by digest through the mirror: read from the cache, or
//! fetched once upstream, checked against their digest and kept
//! (`record.rs` says how). Immutable, so kept for ever.

use oci_core::{Digest, Error, ErrorCode, Manifest, Result, Tag};

use crate::failure::upstream_error;
use crate::flight::Role;
use crate::metrics::{Outcome, note};
use crate::mirror::Mirror;
use crate::record::{Kept, kept_manifest};
use crate::upstream::Target;

impl Mirror {
    /// A manifest by digest: from the cache, or fetched once. A hit is
    /// noted when `note_hit` (a tag's answer notes its own).
    pub(crate) async fn manifest(
        &self,
        target: &Target,
        digest: &Digest,
        media_type: Option<&str>,
        note_hit: bool,
    ) -> Result<Kept> {
        for _ in 0..2 {
            if let Some(kept) =
                kept_manifest(self.cache.as_ref(), &target.cache, digest, media_type).await?
            {
                if note_hit {
                    note(target, "manifest", digest, Outcome::Hit);
                }
                if !kept.real {
                    self.keeper
                        .revisit(&target.cache, &kept.manifest, &[])
                        .await?;
                }
                return Ok(kept);
            }
            match self
                .flights
                .join(format!("manifest {} {digest}", target.cache))
            {
                Role::Follower(waiting) => waiting.outcome().await?,
                Role::Leader(landing) => {
                    return landing.run(self.fetch_manifest(target, digest)).await;
                }
            }
        }
        Err(Error::internal(format!(
            "manifest {digest} was fetched but is not in the cache"
        )))
    }

    /// Fetches a manifest by digest upstream and keeps it.
    async fn fetch_manifest(&self, target: &Target, digest: &Digest) -> Result<Kept> {
        let m = target
            .upstream
            .registry
            .get_manifest(&target.name, digest)
            .await
            .map_err(|e| upstream_error(target, digest, e))?;
        note(target, "manifest", digest, Outcome::Miss);
        let real = self.keep(target, &m, digest, &[]).await?;
        Ok(Kept { manifest: m, real })
    }

    /// Checks a manifest from upstream against the digest it was asked or
    /// announced by, and keeps it with `tags`; whether it is kept real.
    pub(crate) async fn keep(
        &self,
        target: &Target,
        m: &Manifest,
        digest: &Digest,
        tags: &[Tag],
    ) -> Result<bool> {
        if m.digest() != digest {
            return Err(Error::new(
                ErrorCode::ManifestInvalid,
                format!("{target} answered {} for manifest {digest}", m.digest()),
            ));
        }
        m.verify()?;
        target.upstream.stats.read_upstream(m.bytes.len());
        self.keeper.keep(&target.cache, m, tags).await
    }
}
