//! [`Pusher`]: the library face of `ocidist push` — push a local image
//! (a `docker save` tarball, an OCI archive or an OCI layout directory) to
//! a registry: blobs in parallel, skipping those the target has, then the
//! manifests as they are stored locally, byte for byte.
//!
//! A docker tarball carries no manifest. One that `ocidist pull` wrote
//! carries the original as an extra entry ([`docker::MANIFEST_ENTRY`],
//! which `docker load` ignores), pushed unchanged when it still describes
//! the tarball's config and layers; otherwise a Docker schema 2 manifest
//! is built (the same config and layer digests, a new manifest digest).

use std::path::Path;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use oci_core::{
    Descriptor, Error, ErrorCode, ImageIndex, Manifest, ParsedManifest, Reference, Registry,
    Result, media,
};
use serde::Deserialize;

use crate::archive::docker;
use crate::archive::read::Local;
use crate::connect::{ConnectOptions, Connector};
use crate::progress::Progress;

/// A local image ready to push: its manifests (the top one last) and
/// its blobs with the entry each is read from.
#[derive(Clone)]
pub struct LocalImage {
    /// Where the content is.
    pub local: Local,
    /// Child manifests of an index, pushed before the top one.
    pub children: Vec<Manifest>,
    /// The manifest the tag names.
    pub top: Manifest,
    /// Every blob, with its entry name in `local`.
    pub blobs: Vec<(Descriptor, String)>,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// The top manifest pushed.
    pub digest: Descriptor,
    /// Blobs uploaded.
    pub copied: usize,
    /// Blobs the registry already had.
    pub skipped: usize,
}

/// Pushes local images to one registry.
///
/// ```no_run
/// # async fn run() -> oci_core::Result<()> {
/// use std::sync::Arc;
/// use ocidist::pusher::Pusher;
/// let registry = Arc::new(oci_client::Client::new("localhost:5000", Default::default())?);
/// let target = "localhost:5000/app:v1".parse()?;
/// let report = Pusher::new(registry)
///     .push(std::path::Path::new("app.tar"), &target)
///     .await?;
/// println!("{}", report.digest.digest);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Pusher {
    registry: Arc<dyn Registry>,
    concurrency: usize,
    progress: Progress,
    target: Option<(Reference, ConnectOptions)>,
}

impl Pusher {
    /// A pusher to a connected registry.
    pub fn new(registry: Arc<dyn Registry>) -> Pusher {
        Pusher {
            registry,
            concurrency: 4,
            progress: Progress::hidden(),
            target: None,
        }
    }

    /// A pusher to `target` (`latest` when no tag is given), connected as
    /// `options` say; `push_from` then pushes to it.
    ///
    /// ```
    /// use ocidist::pusher::Pusher;
    /// let pusher = Pusher::to_reference("localhost:5000/app", Default::default()).unwrap();
    /// assert_eq!(pusher.target().unwrap().to_string(), "localhost:5000/app:latest");
    /// ```
    pub fn to_reference(target: &str, options: ConnectOptions) -> Result<Pusher> {
        let r: Reference = target.parse()?;
        let registry = Connector::from_options(&options)?.connect(r.registry())?;
        let mut pusher = Pusher::new(registry);
        pusher.target = Some((r, options));
        Ok(pusher)
    }

    /// The target given to [`Pusher::to_reference`].
    pub fn target(&self) -> Option<&Reference> {
        self.target.as_ref().map(|t| &t.0)
    }

    /// The options given to [`Pusher::to_reference`].
    pub fn options(&self) -> Option<&ConnectOptions> {
        self.target.as_ref().map(|t| &t.1)
    }

    /// Pushes `source` to the target given to [`Pusher::to_reference`].
    pub async fn push_from(&self, source: &Path) -> Result<PushReport> {
        let (target, _) = self.target.as_ref().ok_or_else(|| {
            Error::internal("push_from needs a pusher made by Pusher::to_reference")
        })?;
        self.push(source, target).await
    }

    /// Progress display for uploads.
    pub fn progress(mut self, progress: Progress) -> Pusher {
        self.progress = progress;
        self
    }

    /// How many blobs upload at once.
    pub fn concurrency(mut self, n: usize) -> Pusher {
        self.concurrency = n.max(1);
        self
    }

    /// Pushes the image at `source` to `target` (tagged with its tag).
    pub async fn push(&self, source: &Path, target: &Reference) -> Result<PushReport> {
        let image = open(source, target).await?;
        self.push_image(&image, target).await
    }

    /// Pushes an opened local image.
    pub async fn push_image(&self, image: &LocalImage, target: &Reference) -> Result<PushReport> {
        let repo = target.repository();
        let mut seen = std::collections::HashSet::new();
        let blobs: Vec<&(Descriptor, String)> = image
            .blobs
            .iter()
            .filter(|(d, _)| seen.insert(d.digest.clone()))
            .collect();
        let progress = &self
            .progress
            .with_total(blobs.iter().map(|(d, _)| d.size).sum());
        let uploaded: Vec<bool> = futures::stream::iter(blobs)
            .map(|(d, name)| async move {
                if self.registry.resolve_blob(repo, &d.digest).await.is_ok() {
                    progress.skipped(d);
                    return Ok::<bool, Error>(false);
                }
                let bar = Arc::new(progress.blob(d));
                let counted = Arc::clone(&bar);
                // Read from `at` on when resuming an upload.
                let open: crate::resume::OpenFrom<'_> = Box::new(move |at| {
                    let counted = Arc::clone(&counted);
                    let stream = image.local.stream(name).map(|s| {
                        crate::resume::skip(s, at)
                            .inspect(move |chunk| {
                                if let Ok(b) = chunk {
                                    counted.advance(b.len() as u64);
                                }
                            })
                            .boxed()
                    });
                    Box::pin(async move { stream })
                });
                let host = target.registry();
                crate::resume::upload(self.registry.as_ref(), host, repo, d, open).await?;
                bar.finish();
                Ok(true)
            })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;
        for child in &image.children {
            self.registry.push_manifest(repo, child, &[]).await?;
        }
        let tags: Vec<_> = target.tag().cloned().into_iter().collect();
        let digest = self.registry.push_manifest(repo, &image.top, &tags).await?;
        let copied = uploaded.iter().filter(|u| **u).count();
        Ok(PushReport {
            digest,
            copied,
            skipped: uploaded.len() - copied,
        })
    }
}

fn invalid(source: &Path, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::ManifestInvalid,
        format!("{}: {why}", source.display()),
    )
}

/// Opens `source` as an OCI layout (directory or tar) or a docker
/// tarball; an index or a layout with several images is narrowed to the
/// one `target`'s tag names.
pub async fn open(source: &Path, target: &Reference) -> Result<LocalImage> {
    let local = Local::open(source)?;
    if local.size("oci-layout").is_some() {
        open_layout(source, local, target)
    } else if local.size("manifest.json").is_some() {
        open_docker(source, local, target).await
    } else {
        Err(Error::new(
            ErrorCode::Unsupported,
            format!(
                "{} is neither an OCI layout (no oci-layout) nor a docker save tarball (no manifest.json)",
                source.display()
            ),
        ))
    }
}

fn read_manifest(source: &Path, local: &Local, d: &Descriptor) -> Result<Manifest> {
    let name = crate::archive::oci::blob_path(d);
    let bytes = local
        .read(&name)?
        .ok_or_else(|| invalid(source, format!("{name} is missing")))?;
    d.digest.verify(&bytes)?;
    let media_type = if d.media_type.is_empty() {
        Manifest::from_json(bytes.clone())?.media_type().to_owned()
    } else {
        d.media_type.clone()
    };
    Ok(Manifest::new(media_type, bytes))
}

fn open_layout(source: &Path, local: Local, target: &Reference) -> Result<LocalImage> {
    let index_bytes = local
        .read("index.json")?
        .ok_or_else(|| invalid(source, "index.json is missing"))?;
    let index: ImageIndex = serde_json::from_slice(&index_bytes)
        .map_err(|e| invalid(source, format!("index.json: {e}")))?;
    let entry = match index.manifests.as_slice() {
        [one] => one,
        [] => return Err(invalid(source, "index.json lists no image")),
        many => {
            let names: Vec<&str> = many
                .iter()
                .filter_map(|d| d.annotations.as_ref()?.get(crate::archive::oci::REF_NAME))
                .map(String::as_str)
                .collect();
            let want = target.tag().map(ToString::to_string);
            many.iter()
                .find(|d| {
                    d.annotations
                        .as_ref()
                        .and_then(|a| a.get(crate::archive::oci::REF_NAME))
                        == want.as_ref()
                })
                .ok_or_else(|| {
                    invalid(
                        source,
                        format!(
                            "the layout holds several images ({}); tag the target as one of them",
                            names.join(", ")
                        ),
                    )
                })?
        }
    };
    let top = read_manifest(source, &local, entry)?;
    let mut children = Vec::new();
    let mut blobs = Vec::new();
    let mut add_blobs = |m: &Manifest| -> Result<()> {
        for d in m.parse()?.blobs() {
            let name = crate::archive::oci::blob_path(d);
            if local.size(&name) != Some(d.size) {
                return Err(invalid(
                    source,
                    format!("blob {} is missing or of the wrong size", d.digest),
                ));
            }
            blobs.push((d.clone(), name));
        }
        Ok(())
    };
    match top.parse()? {
        ParsedManifest::Image(_) => add_blobs(&top)?,
        ParsedManifest::Index(index) => {
            for child in &index.manifests {
                let m = read_manifest(source, &local, child)?;
                if let ParsedManifest::Index(_) = m.parse()? {
                    return Err(Error::new(
                        ErrorCode::Unsupported,
                        format!("nested index {} is not pushed", child.digest),
                    ));
                }
                add_blobs(&m)?;
                children.push(m);
            }
        }
    }
    Ok(LocalImage {
        local,
        children,
        top,
        blobs,
    })
}

/// One image of a docker tarball's `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

async fn open_docker(source: &Path, local: Local, target: &Reference) -> Result<LocalImage> {
    let saved: Vec<SavedImage> = serde_json::from_slice(
        &local
            .read("manifest.json")?
            .ok_or_else(|| invalid(source, "manifest.json is missing"))?,
    )
    .map_err(|e| invalid(source, format!("manifest.json: {e}")))?;
    let image = match saved.as_slice() {
        [one] => one,
        [] => return Err(invalid(source, "manifest.json lists no image")),
        many => {
            let tag = target.tag().map(|t| format!(":{t}"));
            many.iter()
                .find(|s| {
                    tag.as_ref().is_some_and(|t| {
                        s.repo_tags
                            .iter()
                            .flatten()
                            .any(|rt| rt.ends_with(t.as_str()))
                    })
                })
                .ok_or_else(|| {
                    invalid(
                        source,
                        "the tarball holds several images; tag the target as one of them",
                    )
                })?
        }
    };
    let config_bytes = local
        .read(&image.config)?
        .ok_or_else(|| invalid(source, format!("{} is missing", image.config)))?;
    let config = Descriptor::of(media::DOCKER_CONFIG, &config_bytes);
    let mut blobs = vec![(config.clone(), image.config.clone())];
    let mut layers = Vec::new();
    for name in &image.layers {
        let size = local
            .size(name)
            .ok_or_else(|| invalid(source, format!("{name} is missing")))?;
        let digest = local.digest(name).await?;
        let head = local.read_head(name)?;
        let mut d = Descriptor::of(layer_media_type(&head), b"");
        d.digest = digest;
        d.size = size;
        blobs.push((d.clone(), name.clone()));
        layers.push(d);
    }
    let top = match recorded(&local, &config, &layers)? {
        Some(m) => m,
        None => {
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media::DOCKER_MANIFEST,
                "config": config,
                "layers": layers,
            });
            Manifest::new(media::DOCKER_MANIFEST, manifest.to_string())
        }
    };
    // The recorded manifest may describe the blobs with its own media
    // types; they are pushed under those.
    let parsed = top.parse()?;
    let blobs = blobs
        .into_iter()
        .zip(parsed.blobs())
        .map(|((_, name), d)| (d.clone(), name))
        .collect();
    Ok(LocalImage {
        local,
        children: Vec::new(),
        top,
        blobs,
    })
}

/// The manifest `ocidist pull` recorded, if it describes exactly this
/// config and these layers.
fn recorded(local: &Local, config: &Descriptor, layers: &[Descriptor]) -> Result<Option<Manifest>> {
    let Some(bytes) = local.read(docker::MANIFEST_ENTRY)? else {
        return Ok(None);
    };
    let Ok(m) = Manifest::from_json(bytes) else {
        return Ok(None);
    };
    let Ok(ParsedManifest::Image(image)) = m.parse() else {
        return Ok(None);
    };
    let same = image.config.digest == config.digest
        && image.config.size == config.size
        && image.layers.len() == layers.len()
        && image
            .layers
            .iter()
            .zip(layers)
            .all(|(a, b)| a.digest == b.digest && a.size == b.size);
    Ok(same.then_some(m))
}

/// A docker layer's media type from its first bytes.
fn layer_media_type(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        media::DOCKER_LAYER_GZIP
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        media::OCI_LAYER_ZSTD
    } else {
        "application/vnd.docker.image.rootfs.diff.tar"
    }
}
