//! Referrers (OCI 1.1): listing what refers to a manifest, and carrying
//! referrers along when an image is copied.
//!
//! Listing goes through [`Registry::referrers`](oci_core::Registry::referrers), which `oci-client` answers
//! from the referrers API or, on registries without it, from the referrers
//! tag schema's `<alg>-<hex>` index. Copying pushes each referrer after its
//! subject; pushing a manifest with a `subject` to a registry without the
//! API updates the fallback tag there (the client does).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use ocidist::referrers::list;
//!
//! let store = Arc::new(oci_mem::MemRegistry::new());
//! ocidist::demo::seed(store.as_ref()).await.unwrap();
//! let reference = "localhost/demo/hello:latest".parse().unwrap();
//! let (subject, referrers) = list(store, &reference, None).await.unwrap();
//! assert!(referrers.is_empty(), "nothing refers to {}", subject.digest);
//! # }
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use oci_core::registry::collect_list;
use oci_core::{Descriptor, Digest, Error, ErrorCode, Manifest, ParsedManifest, Reference, Result};

use crate::copy::{CopyOptions, CopyReport, Endpoint};

/// How deep referrers of referrers are followed (a signature of an
/// attestation of an image is depth 2).
pub const MAX_DEPTH: usize = 8;

/// The manifest `reference` names and the referrers of it, optionally
/// only those of `artifact_type`, in the registry's order.
pub async fn list(
    registry: Arc<dyn oci_core::Registry>,
    reference: &Reference,
    artifact_type: Option<&str>,
) -> Result<(Descriptor, Vec<Descriptor>)> {
    let subject = crate::puller::Puller::new(Arc::clone(&registry))
        .head_manifest(reference)
        .await?;
    let found =
        collect_list(registry.referrers(reference.repository(), &subject.digest, artifact_type))
            .await?;
    Ok((subject, found))
}

/// What carrying referrers did.
#[derive(Debug, Clone, Default)]
pub struct ReferrersCopied {
    /// The referrer manifests pushed, in the order they were.
    pub manifests: Vec<Descriptor>,
}

/// Copies the referrers of each of `subjects` (already at the target)
/// from `src` to `dst`, and theirs in turn, up to [`MAX_DEPTH`]; blob
/// counts are added to `report`.
pub async fn copy_referrers(
    src: &Endpoint,
    dst: &Endpoint,
    subjects: Vec<Digest>,
    options: &CopyOptions,
    report: &mut CopyReport,
) -> Result<ReferrersCopied> {
    let mut copied = ReferrersCopied::default();
    let mut seen: HashSet<Digest> = subjects.iter().cloned().collect();
    let mut level = subjects;
    for depth in 0..=MAX_DEPTH {
        if level.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for subject in &level {
            let found = collect_list(src.registry.referrers(
                src.reference.repository(),
                subject,
                None,
            ))
            .await?;
            for referrer in found {
                if !seen.insert(referrer.digest.clone()) {
                    continue;
                }
                if depth == MAX_DEPTH {
                    return Err(Error::new(
                        ErrorCode::Unsupported,
                        format!(
                            "referrers nest deeper than {MAX_DEPTH} levels under {}",
                            src.reference
                        ),
                    ));
                }
                tracing::debug!(%subject, referrer = %referrer.digest, "copying a referrer");
                let m = match copy_manifest(src, dst, &referrer.digest, options, report, 0).await {
                    Ok(m) => m,
                    // A referrers tag can list a manifest deleted since.
                    Err(e) if e.is_not_found() && !src_has(src, &referrer.digest).await => {
                        tracing::warn!(%subject, referrer = %referrer.digest, "a listed referrer is gone; not copied");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                copied.manifests.push(m.descriptor.clone());
                next.push(referrer.digest);
            }
        }
        level = next;
    }
    Ok(copied)
}

/// Whether the source still has the manifest `digest`.
async fn src_has(src: &Endpoint, digest: &Digest) -> bool {
    src.registry
        .resolve_manifest(src.reference.repository(), digest)
        .await
        .is_ok()
}

/// Copies one manifest by digest (an index with its children) with its
/// blobs, pushing it untagged.
async fn copy_manifest(
    src: &Endpoint,
    dst: &Endpoint,
    digest: &Digest,
    options: &CopyOptions,
    report: &mut CopyReport,
    depth: usize,
) -> Result<Manifest> {
    let m = src
        .registry
        .get_manifest(src.reference.repository(), digest)
        .await?;
    if m.digest() != digest {
        return Err(Error::new(
            ErrorCode::DigestInvalid,
            format!("the registry served {} for {digest}", m.digest()),
        ));
    }
    match m.parse()? {
        ParsedManifest::Image(_) => {
            let blobs = m.parse()?.blobs().into_iter().cloned().collect();
            crate::copy::copy_blobs(src, dst, blobs, options, report).await?;
        }
        ParsedManifest::Index(index) => {
            if depth >= MAX_DEPTH {
                return Err(Error::new(
                    ErrorCode::Unsupported,
                    format!("indexes nest deeper than {MAX_DEPTH} levels at {digest}"),
                ));
            }
            for child in &index.manifests {
                Box::pin(copy_manifest(
                    src,
                    dst,
                    &child.digest,
                    options,
                    report,
                    depth + 1,
                ))
                .await?;
            }
        }
    }
    dst.registry
        .push_manifest(dst.reference.repository(), &m, &[])
        .await?;
    Ok(m)
}

/// The manifests a copy pushed whose referrers follow it: the top one
/// and, for an index copied whole, its children.
pub fn subjects_of(top: &Manifest) -> Vec<Digest> {
    let mut out = vec![top.digest().clone()];
    if let Ok(ParsedManifest::Index(index)) = top.parse() {
        out.extend(index.manifests.iter().map(|d| d.digest.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{ArtifactFile, NewArtifact, push_artifact};

    fn endpoint(reference: &str) -> Endpoint {
        Endpoint {
            registry: Arc::new(oci_mem::MemRegistry::new()),
            reference: reference.parse().unwrap(),
        }
    }

    /// A signature of the image and a signature of that signature both
    /// arrive at the target, after the image.
    #[tokio::test]
    async fn referrers_of_referrers_are_carried() {
        let src = endpoint("localhost/demo/hello:latest");
        crate::demo::seed(src.registry.as_ref()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sig");
        std::fs::write(&file, "signed").unwrap();
        let image = crate::puller::Puller::new(Arc::clone(&src.registry))
            .manifest(&src.reference)
            .await
            .unwrap();
        let mut sig = NewArtifact {
            artifact_type: Some("application/vnd.example.sig".to_owned()),
            files: vec![ArtifactFile::from_arg(file.to_str().unwrap()).unwrap()],
            subject: Some(image.descriptor.clone()),
        };
        let untagged = Reference::parse_bare("localhost/demo/hello").unwrap();
        let first = push_artifact(src.registry.as_ref(), &untagged, &sig)
            .await
            .unwrap();
        sig.subject = Some(first.manifest.clone());
        let second = push_artifact(src.registry.as_ref(), &untagged, &sig)
            .await
            .unwrap();

        let dst = endpoint("localhost/copy/hello:latest");
        let options = CopyOptions {
            platform: None,
            same_registry: false,
            concurrency: 2,
            progress: crate::progress::Progress::hidden(),
        };
        let mut report = crate::copy::copy(&src, &dst, &options).await.unwrap();
        let copied = copy_referrers(&src, &dst, subjects_of(&image), &options, &mut report)
            .await
            .unwrap();
        let digests: Vec<&Digest> = copied.manifests.iter().map(|d| &d.digest).collect();
        assert_eq!(
            digests,
            [&first.manifest.digest, &second.manifest.digest],
            "both levels, subject first"
        );
        let (_, listed) = list(Arc::clone(&dst.registry), &dst.reference, None)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].digest, first.manifest.digest);
        assert_eq!(
            listed[0].artifact_type.as_deref(),
            Some("application/vnd.example.sig")
        );
    }

    /// A store whose listing also names a referrer that is gone, as a
    /// stale referrers tag can.
    struct Stale(oci_mem::MemRegistry, Descriptor);

    #[async_trait::async_trait]
    impl oci_core::Registry for Stale {
        fn forward_to(&self) -> Option<&dyn oci_core::Registry> {
            Some(&self.0)
        }

        fn referrers(
            &self,
            repo: &oci_core::RepoName,
            subject: &Digest,
            artifact_type: Option<&str>,
        ) -> oci_core::ListStream<Descriptor> {
            use futures::StreamExt;
            let gone = futures::stream::iter([Ok(self.1.clone())]);
            gone.chain(self.0.referrers(repo, subject, artifact_type))
                .boxed()
        }
    }

    #[tokio::test]
    async fn a_listed_referrer_that_is_gone_is_skipped() {
        let gone = Descriptor::of(oci_core::media::OCI_MANIFEST, b"deleted long ago");
        let src = Endpoint {
            registry: Arc::new(Stale(oci_mem::MemRegistry::new(), gone)),
            reference: "localhost/demo/hello:latest".parse().unwrap(),
        };
        crate::demo::seed(src.registry.as_ref()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sig");
        std::fs::write(&file, "signed").unwrap();
        let image = crate::puller::Puller::new(Arc::clone(&src.registry))
            .manifest(&src.reference)
            .await
            .unwrap();
        let sig = NewArtifact {
            artifact_type: Some("application/vnd.example.sig".to_owned()),
            files: vec![ArtifactFile::from_arg(file.to_str().unwrap()).unwrap()],
            subject: Some(image.descriptor.clone()),
        };
        let untagged = Reference::parse_bare("localhost/demo/hello").unwrap();
        let real = push_artifact(src.registry.as_ref(), &untagged, &sig)
            .await
            .unwrap();
        let dst = endpoint("localhost/copy/hello:latest");
        let options = CopyOptions {
            platform: None,
            same_registry: false,
            concurrency: 2,
            progress: crate::progress::Progress::hidden(),
        };
        let mut report = crate::copy::copy(&src, &dst, &options).await.unwrap();
        let copied = copy_referrers(&src, &dst, subjects_of(&image), &options, &mut report)
            .await
            .unwrap();
        let digests: Vec<&Digest> = copied.manifests.iter().map(|d| &d.digest).collect();
        assert_eq!(digests, [&real.manifest.digest]);
    }
}
