//! [`Puller`]: the library face of `ocidist pull` — resolve a reference to
//! one platform's image and write it as a `docker save` tarball, an OCI
//! layout, or loose blobs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use oci_core::media::ManifestKind;
use oci_core::registry::{get_manifest_ref, resolve_manifest_ref};
use oci_core::{
    Descriptor, Error, ErrorCode, ImageManifest, Manifest, ParsedManifest, Platform, Reference,
    Registry, Result,
};

use crate::archive::write::{self, BlobSource, Shape};
use crate::archive::{docker, oci};
use crate::connect::{ConnectOptions, Connector};
use crate::progress::Progress;

/// The largest image config read into memory.
const MAX_CONFIG_SIZE: u64 = 32 << 20;

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A `docker save` tarball.
    Docker,
    /// A `docker save` tarball with uncompressed layers named by diff_id.
    DockerSave,
    /// An OCI image layout as a tar file.
    Oci,
    /// An OCI image layout as a directory.
    OciDir,
}

/// Which manifest to return for a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestChoice {
    /// The index (an error for a single-platform image).
    List,
    /// The image manifest, resolved to a platform if the reference is an index.
    Image,
}

/// A reference resolved to one image.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The index the image was chosen from, if the reference named one.
    pub index: Option<Manifest>,
    /// The image manifest, as served.
    pub manifest: Manifest,
    /// Its parsed view.
    pub image: ImageManifest,
}

impl Resolved {
    /// The digest the reference itself resolved to (the index's if any).
    pub fn top_digest(&self) -> &oci_core::Digest {
        self.index.as_ref().unwrap_or(&self.manifest).digest()
    }
}

/// What a pull wrote.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The resolved image.
    pub resolved: Resolved,
    /// Where it was written.
    pub path: PathBuf,
    /// Layer bytes downloaded.
    pub bytes: u64,
}

/// Pulls images from one registry.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use ocidist::puller::Puller;
/// let registry = Arc::new(oci_mem::MemRegistry::new());
/// let puller = Puller::new(registry).concurrency(4);
/// let reference = "localhost:5000/app:v1".parse().unwrap();
/// let err = puller.manifest(&reference).await.unwrap_err();
/// assert!(err.is_not_found());
/// # }
/// ```
#[derive(Clone)]
pub struct Puller {
    registry: Arc<dyn Registry>,
    concurrency: usize,
    progress: Progress,
    ranged_above: Option<u64>,
    platform_required: bool,
    target: Option<(Reference, PullOptions)>,
}

/// What [`Puller::from_reference`] connects with and pulls.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// How to reach the registry.
    pub connect: ConnectOptions,
    /// The platform to pull (an index's image; a single image must match
    /// it); `None`: the host's from an index, any single image.
    pub platform: Option<Platform>,
}

impl Puller {
    /// A puller over a connected registry.
    pub fn new(registry: Arc<dyn Registry>) -> Puller {
        Puller {
            registry,
            concurrency: 8,
            progress: Progress::hidden(),
            ranged_above: None,
            platform_required: false,
            target: None,
        }
    }

    /// A puller for `reference`, connected as `options` say: the one-line
    /// start of the library face (`pull_to` then pulls it).
    ///
    /// ```
    /// use ocidist::puller::{PullOptions, Puller};
    /// let options = PullOptions {
    ///     platform: Some("linux/arm64".parse().unwrap()),
    ///     ..PullOptions::default()
    /// };
    /// let puller = Puller::from_reference("localhost:5000/demo/hello", options).unwrap();
    /// assert_eq!(puller.reference().unwrap().to_string(), "localhost:5000/demo/hello:latest");
    /// assert_eq!(puller.options().unwrap().platform.as_ref().unwrap().to_string(), "linux/arm64");
    /// ```
    pub fn from_reference(reference: &str, options: PullOptions) -> Result<Puller> {
        let r: Reference = reference.parse()?;
        let registry = Connector::from_options(&options.connect)?.connect(r.registry())?;
        let mut puller = Puller::new(registry).platform_required(options.platform.is_some());
        puller.target = Some((r, options));
        Ok(puller)
    }

    /// The reference given to [`Puller::from_reference`].
    pub fn reference(&self) -> Option<&Reference> {
        self.target.as_ref().map(|t| &t.0)
    }

    /// The options given to [`Puller::from_reference`].
    pub fn options(&self) -> Option<&PullOptions> {
        self.target.as_ref().map(|t| &t.1)
    }

    /// Pulls the reference given to [`Puller::from_reference`] (for its
    /// platform, else the host's) and writes it to `out`.
    pub async fn pull_to(&self, format: Format, out: &Path, force: bool) -> Result<PullReport> {
        let (reference, options) = self.target.as_ref().ok_or_else(|| {
            Error::internal("pull_to needs a puller made by Puller::from_reference")
        })?;
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        self.pull(reference, &platform, format, out, force).await
    }

    /// Whether the platform asked for must match a single-platform image
    /// too (its config's os/architecture/variant); by default a
    /// single-platform image is taken whatever it runs on, as when no
    /// platform was chosen.
    pub fn platform_required(mut self, required: bool) -> Puller {
        self.platform_required = required;
        self
    }

    /// Fetch blobs of at least `min` bytes as parallel range requests
    /// (`None`, the default: every blob as one stream). Ranges help on
    /// links with high latency; on fast links one stream is faster and
    /// holds less memory.
    pub fn ranged_above(mut self, min: Option<u64>) -> Puller {
        self.ranged_above = min;
        self
    }

    /// How many blobs download at once.
    pub fn concurrency(mut self, n: usize) -> Puller {
        self.concurrency = n.max(1);
        self
    }

    /// Progress display for downloads.
    pub fn progress(mut self, progress: Progress) -> Puller {
        self.progress = progress;
        self
    }

    /// The registry pulled from.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    /// The descriptor of the referenced manifest (a HEAD request).
    pub async fn head_manifest(&self, reference: &Reference) -> Result<Descriptor> {
        match resolve_manifest_ref(
            self.registry.as_ref(),
            reference.repository(),
            &reference.manifest_ref(),
        )
        .await
        {
            Err(e) if e.is_not_found() => Err(self.missing(reference, e).await),
            r => r,
        }
    }

    /// A not-found error for `reference` that says what is missing: the
    /// repository, the tag (`latest` when implied; the tags there are
    /// listed), or the digest, and on which registry.
    pub async fn missing(&self, reference: &Reference, e: Error) -> Error {
        let repo = reference.repository();
        let place = format!("{}/{repo}", reference.registry());
        let tag = match reference.manifest_ref() {
            oci_core::ManifestRef::Digest(d) => {
                return Error::new(
                    ErrorCode::ManifestUnknown,
                    format!("manifest {d} not found in {place}"),
                );
            }
            oci_core::ManifestRef::Tag(t) => t,
        };
        let named = if reference.tag().is_some() {
            format!("tag {tag}")
        } else {
            format!("tag {tag} (implied: no tag given)")
        };
        let first = oci_core::ListOptions {
            last: None,
            n: Some(10),
        };
        let listed = oci_core::registry::collect_list(self.registry.tags(repo, &first)).await;
        match listed {
            Err(l) if l.is_not_found() => Error::new(
                ErrorCode::NameUnknown,
                format!("repository {repo} not found on {}", reference.registry()),
            ),
            Ok(tags) if tags.is_empty() => Error::new(
                ErrorCode::ManifestUnknown,
                format!("{named} not found in {place}, which has no tags"),
            ),
            Ok(tags) => {
                let tags: Vec<String> = tags.iter().map(ToString::to_string).collect();
                let more = if tags.len() >= 10 { ", …" } else { "" };
                Error::new(
                    ErrorCode::ManifestUnknown,
                    format!(
                        "{named} not found in {place} (it has: {}{more})",
                        tags.join(", ")
                    ),
                )
            }
            Err(_) => Error::new(
                e.code(),
                format!("{named} not found in {place}: {}", e.message()),
            ),
        }
    }

    /// The referenced manifest as the server chooses to serve it.
    pub async fn manifest(&self, reference: &Reference) -> Result<Manifest> {
        let m = match get_manifest_ref(
            self.registry.as_ref(),
            reference.repository(),
            &reference.manifest_ref(),
        )
        .await
        {
            Err(e) if e.is_not_found() => return Err(self.missing(reference, e).await),
            r => r?,
        };
        if let Some(d) = reference.digest()
            && m.digest() != d
        {
            return Err(Error::new(
                ErrorCode::DigestInvalid,
                format!("the registry served {} for {d}", m.digest()),
            ));
        }
        Ok(m)
    }

    /// The index or the platform's image manifest, as asked.
    pub async fn manifest_choice(
        &self,
        reference: &Reference,
        choice: ManifestChoice,
        platform: &Platform,
    ) -> Result<Manifest> {
        match choice {
            ManifestChoice::List => {
                let m = self.manifest(reference).await?;
                if m.parse()?.kind() != ManifestKind::Index {
                    return Err(Error::new(
                        ErrorCode::ManifestUnknown,
                        format!("{reference} is a single-platform image, not a manifest list"),
                    ));
                }
                Ok(m)
            }
            ManifestChoice::Image => Ok(self.resolve(reference, platform).await?.manifest),
        }
    }

    /// Resolves the reference to one image, choosing `platform` from an index.
    pub async fn resolve(&self, reference: &Reference, platform: &Platform) -> Result<Resolved> {
        let top = self.manifest(reference).await?;
        match top.parse()? {
            ParsedManifest::Image(image) => {
                let resolved = Resolved {
                    index: None,
                    manifest: top,
                    image,
                };
                if self.platform_required {
                    self.check_platform(reference, &resolved, platform).await?;
                }
                Ok(resolved)
            }
            ParsedManifest::Index(index) => {
                let child = index.select_platform(platform).ok_or_else(|| {
                    Error::new(
                        ErrorCode::ManifestUnknown,
                        format!(
                            "{reference} has no image for platform {platform} (it has: {})",
                            index.platforms().join(", ")
                        ),
                    )
                })?;
                let manifest = self
                    .registry
                    .get_manifest(reference.repository(), &child.digest)
                    .await?;
                let ParsedManifest::Image(image) = manifest.parse()? else {
                    return Err(Error::new(
                        ErrorCode::ManifestInvalid,
                        format!("the {platform} entry of {reference} is not an image manifest"),
                    ));
                };
                Ok(Resolved {
                    index: Some(top),
                    manifest,
                    image,
                })
            }
        }
    }

    /// Fails unless a single image's config runs on `platform` (an
    /// artifact's config, which names no platform, passes).
    pub(crate) async fn check_platform(
        &self,
        reference: &Reference,
        resolved: &Resolved,
        platform: &Platform,
    ) -> Result<()> {
        if !crate::summary::is_image_config(&resolved.image.config.media_type) {
            return Ok(());
        }
        let config = self.config(reference, resolved).await?;
        let Ok(found) = serde_json::from_slice::<Platform>(&config) else {
            return Ok(());
        };
        if platform.matches(&found) {
            return Ok(());
        }
        Err(Error::new(
            ErrorCode::ManifestUnknown,
            format!(
                "{reference} is a single-platform image for {found}, not {platform} (omit --platform to take it)"
            ),
        ))
    }

    /// The image config of a resolved image, verified.
    pub async fn config(&self, reference: &Reference, resolved: &Resolved) -> Result<Bytes> {
        let d = &resolved.image.config;
        if d.size > MAX_CONFIG_SIZE {
            return Err(Error::new(
                ErrorCode::SizeInvalid,
                format!("config {} of {} bytes is too large", d.digest, d.size),
            ));
        }
        let bytes = self
            .registry
            .get_blob(reference.repository(), &d.digest)
            .await?
            .bytes()
            .await?;
        let mut v = oci_core::Verifier::new(d.digest.clone(), Some(d.size));
        v.update(&bytes)?;
        v.finish()?;
        Ok(bytes)
    }

    /// Pulls the reference for `platform` and writes it to `out`.
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: &Platform,
        format: Format,
        out: &Path,
        force: bool,
    ) -> Result<PullReport> {
        let resolved = self.resolve(reference, platform).await?;
        let config_type = &resolved.image.config.media_type;
        if matches!(format, Format::Docker | Format::DockerSave)
            && !crate::summary::is_image_config(config_type)
        {
            return Err(Error::new(
                ErrorCode::Unsupported,
                format!(
                    "{reference} is an artifact (config {config_type}), not an image: a docker tarball cannot carry it; use --format oci or oci-dir"
                ),
            ));
        }
        let config = self.config(reference, &resolved).await?;
        let layers = &resolved.image.layers;
        let (plan, shape) = match format {
            Format::Docker => (
                docker::plan(
                    reference,
                    &resolved.manifest,
                    &resolved.image.config,
                    config,
                    layers,
                )?,
                Shape::Tar,
            ),
            Format::DockerSave => {
                let source = self.source(reference);
                let config_descriptor = &resolved.image.config;
                let bytes = crate::archive::docker_save::write(
                    reference,
                    config_descriptor,
                    config,
                    layers,
                    &source,
                    out,
                    force,
                )
                .await?;
                return Ok(PullReport {
                    resolved,
                    path: out.to_path_buf(),
                    bytes,
                });
            }
            Format::Oci | Format::OciDir => {
                let plan = oci::plan(
                    reference,
                    std::slice::from_ref(&resolved.manifest),
                    &[(resolved.image.config.clone(), config)],
                    layers,
                )?;
                (
                    plan,
                    if format == Format::Oci {
                        Shape::Tar
                    } else {
                        Shape::Dir
                    },
                )
            }
        };
        let bytes = write::write(&plan, &self.source(reference), out, shape, force).await?;
        Ok(PullReport {
            resolved,
            path: out.to_path_buf(),
            bytes,
        })
    }

    /// Downloads the config and layers of the platform's image into `dir`,
    /// one file per blob named by its digest hex.
    pub async fn pull_blobs(
        &self,
        reference: &Reference,
        platform: &Platform,
        dir: &Path,
        force: bool,
    ) -> Result<Vec<PathBuf>> {
        let resolved = self.resolve(reference, platform).await?;
        let mut plan = crate::archive::tar::Plan::new();
        let mut paths = Vec::new();
        for d in std::iter::once(&resolved.image.config).chain(&resolved.image.layers) {
            let name = d.digest.hex().to_owned();
            if !plan.contains(&name) {
                plan.push(
                    name.clone(),
                    crate::archive::tar::Source::Blob(Box::new(d.clone())),
                );
                paths.push(dir.join(name));
            }
        }
        write::write(&plan, &self.source(reference), dir, Shape::Dir, force).await?;
        Ok(paths)
    }

    fn source(&self, reference: &Reference) -> BlobSource {
        BlobSource {
            registry: Arc::clone(&self.registry),
            repo: reference.repository().clone(),
            concurrency: self.concurrency,
            progress: self.progress.clone(),
            ranged_above: self.ranged_above,
        }
    }
}
