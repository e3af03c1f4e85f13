//! Registry-to-registry copy: one platform or every platform of an index,
//! children before the index, skipping blobs the target already has and
//! mounting across repositories of the same registry.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use oci_core::{
    Descriptor, Error, ErrorCode, Manifest, ParsedManifest, Platform, Reference, Registry,
    RepoName, Result, Tag,
};

/// One side of a copy: a connected registry and a reference in it.
#[derive(Clone)]
pub struct Endpoint {
    /// The registry.
    pub registry: Arc<dyn Registry>,
    /// The reference.
    pub reference: Reference,
}

/// How to copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// The platform to copy: an index is resolved to its image (and a
    /// single image must run on it); `None` copies what the reference
    /// names, an index with every child.
    pub platform: Option<Platform>,
    /// Whether source and target are the same registry (mount instead of copy).
    pub same_registry: bool,
    /// Blobs copied at once.
    pub concurrency: usize,
    /// Progress display.
    pub progress: crate::progress::Progress,
}

/// What a copy did.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    /// The digest of the top manifest pushed.
    pub digest: Option<Descriptor>,
    /// Blobs whose bytes were copied.
    pub copied: usize,
    /// Blobs the target already had.
    pub skipped: usize,
    /// Blobs mounted from the source repository.
    pub mounted: usize,
}

enum BlobOutcome {
    Copied,
    Skipped,
    Mounted,
}

/// Copies `src` to `dst`.
pub async fn copy(src: &Endpoint, dst: &Endpoint, options: &CopyOptions) -> Result<CopyReport> {
    let src_repo = src.reference.repository();
    let top = crate::puller::Puller::new(Arc::clone(&src.registry))
        .manifest(&src.reference)
        .await?;
    let tags: Vec<Tag> = dst.reference.tag().cloned().into_iter().collect();
    let mut report = CopyReport::default();
    let pushed = match top.parse()? {
        ParsedManifest::Image(image) => {
            if let Some(platform) = &options.platform {
                let resolved = crate::puller::Resolved {
                    index: None,
                    manifest: top.clone(),
                    image,
                };
                crate::puller::Puller::new(Arc::clone(&src.registry))
                    .check_platform(&src.reference, &resolved, platform)
                    .await?;
            }
            copy_image(src, dst, &top, options, &mut report).await?;
            dst.registry
                .push_manifest(dst.reference.repository(), &top, &tags)
                .await?
        }
        ParsedManifest::Index(index) if options.platform.is_none() => {
            // Every child's manifest first, then the blobs of all of them
            // at once (each blob once, however many children list it),
            // then the child manifests and the index: no blob is uploaded
            // twice at the same time and no manifest is pushed while its
            // blobs are still arriving.
            let children: Vec<Manifest> = futures::stream::iter(&index.manifests)
                .map(|child| src.registry.get_manifest(src_repo, &child.digest))
                .buffered(options.concurrency.max(1))
                .try_collect()
                .await?;
            let mut blobs = Vec::new();
            for (child, m) in index.manifests.iter().zip(&children) {
                let parsed = m.parse()?;
                if let ParsedManifest::Index(_) = parsed {
                    return Err(Error::new(
                        ErrorCode::Unsupported,
                        format!(
                            "nested index {} inside {} is not copied",
                            child.digest, src.reference
                        ),
                    ));
                }
                blobs.extend(parsed.blobs().into_iter().cloned());
            }
            copy_blobs(src, dst, blobs, options, &mut report).await?;
            for m in &children {
                dst.registry
                    .push_manifest(dst.reference.repository(), m, &[])
                    .await?;
            }
            dst.registry
                .push_manifest(dst.reference.repository(), &top, &tags)
                .await?
        }
        ParsedManifest::Index(index) => {
            let platform = options.platform.clone().unwrap_or_default();
            let child = index.select_platform(&platform).ok_or_else(|| {
                Error::new(
                    ErrorCode::ManifestUnknown,
                    format!(
                        "{} has no image for platform {platform} (it has: {})",
                        src.reference,
                        index.platforms().join(", ")
                    ),
                )
            })?;
            let m = src.registry.get_manifest(src_repo, &child.digest).await?;
            copy_image(src, dst, &m, options, &mut report).await?;
            dst.registry
                .push_manifest(dst.reference.repository(), &m, &tags)
                .await?
        }
    };
    report.digest = Some(pushed);
    Ok(report)
}

async fn copy_image(
    src: &Endpoint,
    dst: &Endpoint,
    m: &Manifest,
    options: &CopyOptions,
    report: &mut CopyReport,
) -> Result<()> {
    let blobs = m.parse()?.blobs().into_iter().cloned().collect();
    copy_blobs(src, dst, blobs, options, report).await
}

/// Copies `blobs`, `options.concurrency` at a time. A blob listed twice
/// (identical empty layers are common) is copied once.
pub(crate) async fn copy_blobs(
    src: &Endpoint,
    dst: &Endpoint,
    blobs: Vec<Descriptor>,
    options: &CopyOptions,
    report: &mut CopyReport,
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let blobs: Vec<Descriptor> = blobs
        .into_iter()
        .filter(|d| seen.insert(d.digest.clone()))
        .collect();
    let progress = &options
        .progress
        .with_total(blobs.iter().map(|d| d.size).sum());
    let outcomes: Vec<BlobOutcome> = futures::stream::iter(blobs)
        .map(|d| copy_blob(src, dst, d, options.same_registry, progress))
        .buffer_unordered(options.concurrency.max(1))
        .try_collect()
        .await?;
    for o in outcomes {
        match o {
            BlobOutcome::Copied => report.copied += 1,
            BlobOutcome::Skipped => report.skipped += 1,
            BlobOutcome::Mounted => report.mounted += 1,
        }
    }
    Ok(())
}

async fn copy_blob(
    src: &Endpoint,
    dst: &Endpoint,
    d: Descriptor,
    same_registry: bool,
    progress: &crate::progress::Progress,
) -> Result<BlobOutcome> {
    let (src_repo, dst_repo): (&RepoName, &RepoName) =
        (src.reference.repository(), dst.reference.repository());
    if dst.registry.resolve_blob(dst_repo, &d.digest).await.is_ok() {
        progress.skipped(&d);
        return Ok(BlobOutcome::Skipped);
    }
    if same_registry && src_repo != dst_repo {
        match dst.registry.mount_blob(dst_repo, src_repo, &d.digest).await {
            Ok(_) => {
                progress.skipped(&d);
                return Ok(BlobOutcome::Mounted);
            }
            Err(e) => {
                tracing::debug!(digest = %d.digest, error = %e, "mount failed, copying bytes")
            }
        }
    }
    let bar = std::sync::Arc::new(progress.blob(&d));
    let counted = std::sync::Arc::clone(&bar);
    // Read from `at` on (a range) when resuming an upload.
    let wanted = d.digest.clone();
    let open: crate::resume::OpenFrom<'_> = Box::new(move |at| {
        let counted = std::sync::Arc::clone(&counted);
        let digest = wanted.clone();
        Box::pin(async move {
            let reader = if at == 0 {
                src.registry.get_blob(src_repo, &digest).await?
            } else {
                let range = oci_core::RangeRequest::from(at);
                src.registry
                    .get_blob_range(src_repo, &digest, range)
                    .await?
            };
            Ok(reader
                .stream
                .inspect(move |chunk| {
                    if let Ok(b) = chunk {
                        counted.advance(b.len() as u64);
                    }
                })
                .boxed())
        })
    });
    let host = dst.reference.registry();
    crate::resume::upload(dst.registry.as_ref(), host, dst_repo, &d, open).await?;
    bar.finish();
    Ok(BlobOutcome::Copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use oci_core::{Digest, media};

    fn repo() -> RepoName {
        "a/b".parse().unwrap()
    }

    async fn put_blob(reg: &dyn Registry, data: &[u8]) -> Descriptor {
        let digest = Digest::sha256(data);
        let stream = futures::stream::iter([Ok(Bytes::copy_from_slice(data))]).boxed();
        reg.push_blob(&repo(), &digest, Some(data.len() as u64), stream)
            .await
            .unwrap()
    }

    /// An OCI image manifest of `config` and `layers`, pushed by digest.
    async fn put_image(
        reg: &dyn Registry,
        config: &Descriptor,
        layers: &[&Descriptor],
    ) -> Manifest {
        let layers: Vec<String> = layers
            .iter()
            .map(|l| {
                format!(
                    r#"{{"mediaType":"{}","digest":"{}","size":{}}}"#,
                    media::OCI_LAYER,
                    l.digest,
                    l.size
                )
            })
            .collect();
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":[{}]}}"#,
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            config.digest,
            config.size,
            layers.join(",")
        );
        let m = Manifest::new(media::OCI_MANIFEST, json);
        reg.push_manifest(&repo(), &m, &[]).await.unwrap();
        m
    }

    /// Tags `top` as `v1` in `src`, copies it to a fresh registry and
    /// checks the copy's tag names the same bytes.
    async fn copy_v1(src: Arc<dyn Registry>, top: &Manifest, platform: Option<&str>) -> CopyReport {
        let tag: Tag = "v1".parse().unwrap();
        src.push_manifest(&repo(), top, std::slice::from_ref(&tag))
            .await
            .unwrap();
        let src = Endpoint {
            registry: src,
            reference: "src.example/a/b:v1".parse().unwrap(),
        };
        let dst = Endpoint {
            registry: Arc::new(oci_mem::MemRegistry::new()),
            reference: "dst.example/a/b:v1".parse().unwrap(),
        };
        let options = CopyOptions {
            platform: platform.map(|p| p.parse().unwrap()),
            same_registry: false,
            concurrency: 4,
            progress: crate::progress::Progress::hidden(),
        };
        let report = copy(&src, &dst, &options).await.unwrap();
        let copied = dst.registry.get_tag(&repo(), &tag).await.unwrap();
        assert_eq!(copied.bytes, top.bytes);
        report
    }

    #[tokio::test]
    async fn a_layer_listed_twice_is_copied_once() {
        let src: Arc<dyn Registry> = Arc::new(oci_mem::MemRegistry::new());
        let config = put_blob(&*src, b"{}").await;
        let layer = put_blob(&*src, b"empty layer").await;
        let image = put_image(&*src, &config, &[&layer, &layer]).await;
        let report = copy_v1(src, &image, Some("linux/amd64")).await;
        assert_eq!((report.copied, report.skipped), (2, 0));
    }

    #[tokio::test]
    async fn a_layer_shared_by_platforms_is_copied_once() {
        let src: Arc<dyn Registry> = Arc::new(oci_mem::MemRegistry::new());
        let layer = put_blob(&*src, b"shared layer").await;
        let mut children = Vec::new();
        for (arch, config) in [("amd64", r#"{"a":1}"#), ("arm64", r#"{"a":2}"#)] {
            let config = put_blob(&*src, config.as_bytes()).await;
            let m = put_image(&*src, &config, &[&layer]).await;
            children.push(format!(
                r#"{{"mediaType":"{}","digest":"{}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
                media::OCI_MANIFEST,
                m.digest(),
                m.bytes.len()
            ));
        }
        let index = Manifest::new(
            media::OCI_INDEX,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}}"#,
                media::OCI_INDEX,
                children.join(",")
            ),
        );
        let report = copy_v1(src, &index, None).await;
        // Two configs and the one shared layer.
        assert_eq!((report.copied, report.skipped), (3, 0));
        assert_eq!(report.digest.unwrap().digest, *index.digest());
    }
}
